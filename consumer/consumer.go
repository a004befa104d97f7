package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// HandlerError is returned by Run when a record failed MaxAttempts times and
// there is no dead-letter topic. The record's offset was not committed.
type HandlerError struct {
	// TopicPartition and Offset name the record (the first of a batch).
	TopicPartition
	Offset int64
	// Attempts is the number of calls made.
	Attempts int
	// Err is the last error the handler returned.
	Err error
}

// Error implements error.
func (e *HandlerError) Error() string {
	return fmt.Sprintf("consumer: %s offset %d failed %d attempts: %v", e.TopicPartition, e.Offset, e.Attempts, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// PartitionLag is the lag of one assigned partition.
type PartitionLag struct {
	TopicPartition
	// Committable is the offset this member will commit next: every record
	// below it is handled.
	Committable int64
	// HighWatermark is the partition's high watermark at the last fetch.
	HighWatermark int64
	// Records is HighWatermark - Committable (0 before the first fetch).
	Records int64
	// Age is how long the oldest fetched record not yet handled has waited
	// since its timestamp; 0 when every fetched record is handled.
	Age time.Duration
}

// Consumer consumes topics in a consumer group; see the package doc. Run it
// once; Lag may be called from any goroutine meanwhile.
type Consumer struct {
	cfg       Config
	transport *kafka.Transport
	dlq       *kafka.Writer // nil without a dead-letter topic
	ran       atomic.Bool

	mu    sync.Mutex                  // guards parts and the trackers in it
	parts map[TopicPartition]*tracker // this generation's partitions
}

// New checks cfg and returns a Consumer. It connects to nothing until Run.
func New(cfg Config) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Consumer{cfg: cfg, parts: map[TopicPartition]*tracker{}}
	if cfg.DeadLetterTopic != "" {
		c.transport = &kafka.Transport{ClientID: cfg.Dialer.ClientID, DialTimeout: cfg.Dialer.Timeout}
		c.dlq = &kafka.Writer{
			Addr:                   kafka.TCP(cfg.Brokers...),
			Topic:                  cfg.DeadLetterTopic,
			Balancer:               &kafka.Hash{},
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
			BatchTimeout:           time.Millisecond,
			Transport:              c.transport,
		}
	}
	return c, nil
}

// Run joins the group and consumes until ctx is cancelled (then it finishes
// in-flight calls, commits, leaves the group and returns nil) or a record
// fails without a dead-letter topic (then it returns a *HandlerError).
func (c *Consumer) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer c.closeWriter()
	if c.cfg.usesFranz() {
		return c.runFranz(ctx)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                c.cfg.GroupID,
		Brokers:           c.cfg.Brokers,
		Dialer:            c.cfg.Dialer,
		Topics:            c.cfg.Topics,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		SessionTimeout:    c.cfg.SessionTimeout,
		RebalanceTimeout:  c.cfg.RebalanceTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		StartOffset:       c.cfg.StartOffset,
		Timeout:           c.cfg.Dialer.Timeout,
	})
	if err != nil {
		return fmt.Errorf("consumer: group %s: %w", c.cfg.GroupID, err)
	}
	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	for runCtx.Err() == nil {
		gen, err := cg.Next(runCtx)
		if err != nil {
			if runCtx.Err() == nil {
				c.cfg.Logger.Debug("consumer: join group", "group", c.cfg.GroupID, "err", err)
			}
			continue
		}
		c.runGeneration(runCtx, fail, gen)
	}
	if err := cg.Close(); err != nil {
		c.cfg.Logger.Debug("consumer: leave group", "group", c.cfg.GroupID, "err", err)
	}
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return nil
}

func (c *Consumer) closeWriter() {
	if c.dlq == nil {
		return
	}
	if err := c.dlq.Close(); err != nil {
		c.cfg.Logger.Debug("consumer: close dead-letter writer", "err", err)
	}
	c.transport.CloseIdleConnections()
}

// Lag returns the lag of each partition assigned to this member, sorted.
func (c *Consumer) Lag() []PartitionLag {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PartitionLag, 0, len(c.parts))
	for tp, tr := range c.parts {
		records, age := tr.lag(now)
		out = append(out, PartitionLag{TopicPartition: tp, Committable: tr.committable(), HighWatermark: tr.hwm, Records: records, Age: age})
	}
	slices.SortFunc(out, func(a, b PartitionLag) int { return compareTP(a.TopicPartition, b.TopicPartition) })
	return out
}

func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return a.Partition - b.Partition
}

// runGeneration consumes the partitions of one generation until it ends or
// runCtx is done, then drains, commits and calls OnRevoked.
func (c *Consumer) runGeneration(runCtx context.Context, fail context.CancelCauseFunc, gen *kafka.Generation) {
	start := map[TopicPartition]int64{}
	var assigned []TopicPartition
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			tp := TopicPartition{topic, p.ID}
			assigned = append(assigned, tp)
			start[tp] = p.Offset
		}
	}
	slices.SortFunc(assigned, compareTP)
	finished := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(finished)
		stopCtx, stop := context.WithCancel(runCtx)
		defer stop()
		unhook := context.AfterFunc(genCtx, stop)
		defer unhook()
		workCtx, cancelWork := context.WithCancel(context.WithoutCancel(runCtx))
		defer cancelWork()
		var timer atomic.Pointer[time.Timer]
		unwatch := context.AfterFunc(stopCtx, func() { timer.Store(time.AfterFunc(c.cfg.ShutdownTimeout, cancelWork)) })
		defer func() {
			unwatch()
			if t := timer.Load(); t != nil {
				t.Stop()
			}
		}()
		if c.cfg.Seek != nil {
			seek, err := c.cfg.Seek(workCtx, slices.Clone(assigned))
			if err != nil {
				c.cfg.Logger.Warn("consumer: seek", "group", c.cfg.GroupID, "err", err)
				c.wait(stopCtx, c.cfg.Backoff.Max) // then end the generation: the group rejoins
				return
			}
			for tp, off := range seek {
				if _, ok := start[tp]; ok {
					start[tp] = off
				}
			}
		}
		if c.cfg.OnAssigned != nil {
			c.cfg.OnAssigned(workCtx, slices.Clone(assigned))
		}
		c.mu.Lock()
		c.parts = make(map[TopicPartition]*tracker, len(assigned))
		for _, tp := range assigned {
			c.parts[tp] = newTracker(start[tp])
		}
		c.mu.Unlock()

		var wg sync.WaitGroup
		for _, tp := range assigned {
			wg.Go(func() { c.runPartition(stopCtx, workCtx, fail, tp, start[tp]) })
		}
		committed := map[TopicPartition]int64{}
		tick := time.NewTicker(c.cfg.CommitInterval)
	loop:
		for {
			select {
			case <-stopCtx.Done():
				break loop
			case <-tick.C:
				c.commit(gen, committed)
			}
		}
		tick.Stop()
		wg.Wait()
		c.commit(gen, committed)
		c.mu.Lock()
		c.parts = map[TopicPartition]*tracker{}
		c.mu.Unlock()
		if c.cfg.OnRevoked != nil {
			c.cfg.OnRevoked(workCtx, slices.Clone(assigned))
		}
	})
	<-finished
}

// commit commits every partition whose committable offset moved past the
// last one committed.
func (c *Consumer) commit(gen *kafka.Generation, committed map[TopicPartition]int64) {
	offsets := map[string]map[int]int64{}
	moved := map[TopicPartition]int64{}
	c.mu.Lock()
	for tp, tr := range c.parts {
		off := tr.committable()
		if last, ok := committed[tp]; off < 0 || (ok && off <= last) {
			continue
		}
		if offsets[tp.Topic] == nil {
			offsets[tp.Topic] = map[int]int64{}
		}
		offsets[tp.Topic][tp.Partition] = off
		moved[tp] = off
	}
	c.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	if err := gen.CommitOffsets(offsets); err != nil {
		c.cfg.Logger.Warn("consumer: commit offsets", "group", c.cfg.GroupID, "generation", gen.ID, "err", err)
		return
	}
	for tp, off := range moved {
		committed[tp] = off
	}
}
