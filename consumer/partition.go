package consumer

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Headers added to a dead-lettered record, after its own headers.
const (
	HeaderDLQError     = "weir.dlq.error"
	HeaderDLQTopic     = "weir.dlq.topic"
	HeaderDLQPartition = "weir.dlq.partition"
	HeaderDLQOffset    = "weir.dlq.offset"
	HeaderDLQAttempts  = "weir.dlq.attempts"
)

// runPartition reads one partition until stopCtx is done and hands its
// records to the handler; workCtx is the handlers' context.
func (c *Consumer) runPartition(stopCtx, workCtx context.Context, fail context.CancelCauseFunc, tp TopicPartition, start int64) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.cfg.Brokers,
		Topic:          tp.Topic,
		Partition:      tp.Partition,
		Dialer:         c.cfg.Dialer,
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        c.cfg.MaxWait,
		ReadBackoffMin: 20 * time.Millisecond,
		ReadBackoffMax: 500 * time.Millisecond,
		IsolationLevel: c.cfg.IsolationLevel,
	})
	defer func() {
		if err := r.Close(); err != nil {
			c.cfg.Logger.Debug("consumer: close reader", "partition", tp, "err", err)
		}
	}()
	if err := r.SetOffset(start); err != nil {
		c.cfg.Logger.Warn("consumer: seek", "partition", tp, "offset", start, "err", err)
		return
	}
	if c.cfg.BatchHandler != nil {
		c.batchLoop(stopCtx, workCtx, fail, tp, r)
		return
	}
	c.keyLoop(stopCtx, workCtx, fail, tp, r)
}

// fetch reads the next record and registers it with the partition's tracker.
func (c *Consumer) fetch(ctx context.Context, tp TopicPartition, r *kafka.Reader) (kafka.Message, bool) {
	for {
		m, err := r.FetchMessage(ctx)
		if err == nil {
			c.mu.Lock()
			if tr := c.parts[tp]; tr != nil {
				tr.fetched(m.Offset, m.Time, m.HighWaterMark)
			}
			c.mu.Unlock()
			return m, true
		}
		if ctx.Err() != nil {
			return kafka.Message{}, false
		}
		c.cfg.Logger.Debug("consumer: fetch", "partition", tp, "err", err)
	}
}

func (c *Consumer) markDone(tp TopicPartition, offsets ...int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr := c.parts[tp]; tr != nil {
		for _, o := range offsets {
			tr.done(o)
		}
	}
}

// keyLoop spreads the partition's records over Concurrency workers by key.
func (c *Consumer) keyLoop(stopCtx, workCtx context.Context, fail context.CancelCauseFunc, tp TopicPartition, r *kafka.Reader) {
	workers := make([]chan kafka.Message, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		ch := make(chan kafka.Message, 16)
		workers[i] = ch
		wg.Go(func() {
			one := make([]kafka.Message, 1) // reused: no allocation per record
			for m := range ch {
				// Records already queued are handled even after stopCtx
				// ends: dropping one while a later record of another key
				// is done would make the next owner handle that one again.
				// After ShutdownTimeout workCtx ends and the rest is left
				// uncommitted, redelivered later.
				if workCtx.Err() != nil {
					continue
				}
				one[0] = m
				if c.handle(stopCtx, workCtx, fail, tp, one) {
					c.markDone(tp, m.Offset)
				}
			}
		})
	}
	defer func() {
		for _, ch := range workers {
			close(ch)
		}
		wg.Wait()
	}()
	for {
		m, ok := c.fetch(stopCtx, tp, r)
		if !ok {
			return
		}
		select {
		case workers[keyWorker(m.Key, len(workers))] <- m:
		case <-stopCtx.Done():
			return
		}
	}
}

// keyWorker maps a key to a worker; records without a key go to worker 0.
func keyWorker(key []byte, n int) int {
	if len(key) == 0 || n == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// batchLoop hands the partition's records to BatchHandler, one batch at a time.
func (c *Consumer) batchLoop(stopCtx, workCtx context.Context, fail context.CancelCauseFunc, tp TopicPartition, r *kafka.Reader) {
	for {
		m, ok := c.fetch(stopCtx, tp, r)
		if !ok {
			return
		}
		batch := []kafka.Message{m}
		wctx, cancel := context.WithTimeout(stopCtx, c.cfg.BatchWait)
		for len(batch) < c.cfg.BatchSize {
			m, ok := c.fetch(wctx, tp, r)
			if !ok {
				break
			}
			batch = append(batch, m)
		}
		cancel()
		if stopCtx.Err() != nil {
			return
		}
		if !c.handle(stopCtx, workCtx, fail, tp, batch) {
			return
		}
		offsets := make([]int64, len(batch))
		for i, m := range batch {
			offsets[i] = m.Offset
		}
		c.markDone(tp, offsets...)
	}
}

// handle calls the handler on batch (one record for Handler) with retries,
// then dead-letters it. It reports whether the records are done.
func (c *Consumer) handle(stopCtx, workCtx context.Context, fail context.CancelCauseFunc, tp TopicPartition, batch []kafka.Message) bool {
	for attempt := 1; ; attempt++ {
		var err error
		if c.cfg.BatchHandler != nil {
			err = c.cfg.BatchHandler(workCtx, tp, batch)
		} else {
			err = c.cfg.Handler(workCtx, batch[0])
		}
		if err == nil {
			return true
		}
		if workCtx.Err() != nil {
			return false
		}
		if attempt >= c.cfg.MaxAttempts {
			if c.dlq == nil {
				fail(&HandlerError{TopicPartition: tp, Offset: batch[0].Offset, Attempts: attempt, Err: err})
				return false
			}
			return c.deadLetter(stopCtx, workCtx, tp, batch, attempt, err)
		}
		if !c.wait(stopCtx, c.cfg.Backoff.Delay(attempt, rand.Float64())) {
			return false
		}
	}
}

// wait waits d or until ctx is done; it reports whether d elapsed.
func (c *Consumer) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deadLetter writes batch to the dead-letter topic, retrying until it
// succeeds or stopCtx is done.
func (c *Consumer) deadLetter(stopCtx, workCtx context.Context, tp TopicPartition, batch []kafka.Message, attempts int, cause error) bool {
	msgs := make([]kafka.Message, len(batch))
	for i, m := range batch {
		h := append(m.Headers[:len(m.Headers):len(m.Headers)],
			kafka.Header{Key: HeaderDLQError, Value: []byte(cause.Error())},
			kafka.Header{Key: HeaderDLQTopic, Value: []byte(tp.Topic)},
			kafka.Header{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(tp.Partition), 10)},
			kafka.Header{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
			kafka.Header{Key: HeaderDLQAttempts, Value: strconv.AppendInt(nil, int64(attempts), 10)},
		)
		msgs[i] = kafka.Message{Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
	}
	for try := 1; ; try++ {
		err := c.dlq.WriteMessages(workCtx, msgs...)
		if err == nil {
			c.cfg.Logger.Info("consumer: dead-lettered", "partition", tp, "offset", batch[0].Offset, "records", len(batch), "err", cause)
			return true
		}
		if errors.Is(err, context.Canceled) || !c.wait(stopCtx, c.cfg.Backoff.Delay(try, rand.Float64())) {
			return false
		}
		c.cfg.Logger.Warn("consumer: dead-letter write", "topic", c.cfg.DeadLetterTopic, "err", err)
	}
}
