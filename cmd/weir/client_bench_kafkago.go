package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafkaGoDriver runs the benchmark with segmentio/kafka-go, the client the
// CLI and SDKs use. kafka-go has no idempotent producer.
type kafkaGoDriver struct{}

func (kafkaGoDriver) produce(ctx context.Context, run *benchRun, stamp bool) error {
	bf := run.bf
	perBatch := min(max(bf.batchBytes/(bf.size+64), 1), 10000)
	t := &kafka.Transport{ClientID: "weir-bench"}
	defer t.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(run.addrs...),
		Topic:        bf.topic,
		Balancer:     &kafka.RoundRobin{},
		RequiredAcks: run.acks,
		Compression:  run.codec,
		BatchSize:    perBatch,
		BatchBytes:   int64(bf.batchBytes),
		BatchTimeout: max(bf.linger, time.Millisecond),
		Transport:    t,
		// With --rate, records go out one by one as they fall due.
		Async: bf.rate > 0,
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				run.fail(fmt.Errorf("produce: %w", err))
				return
			}
			now := time.Now()
			for i := range msgs {
				run.acked(now.Sub(msgs[i].Time), len(msgs[i].Value))
			}
		},
	}
	chunk := perBatch * run.parts
	if bf.rate > 0 {
		chunk = 1
	}
	var wg sync.WaitGroup
	errs := make(chan error, bf.concurrency)
	for range bf.concurrency {
		wg.Go(func() {
			msgs := make([]kafka.Message, 0, chunk)
			for ctx.Err() == nil {
				msgs = msgs[:0]
				for len(msgs) < chunk {
					_, due, ok := run.claim()
					if !ok || !pace(ctx, due) {
						break
					}
					v := run.payload
					if stamp {
						v = run.value(due)
					}
					msgs = append(msgs, kafka.Message{Value: v, Time: time.Now()})
				}
				if len(msgs) == 0 {
					return
				}
				if err := w.WriteMessages(ctx, msgs...); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("write: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("close writer: %w", err)
	}
	close(errs)
	return <-errs
}

func (kafkaGoDriver) consume(ctx context.Context, run *benchRun) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(run.start))
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, ClientID: "weir-bench"}
	for p, off := range run.start {
		if !run.e2e && off >= run.end[p] {
			continue
		}
		wg.Go(func() {
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers: run.addrs, Topic: run.bf.topic, Partition: p, Dialer: dialer,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond, QueueCapacity: 1000,
			})
			defer r.Close()
			if err := r.SetOffset(off); err != nil {
				errs <- fmt.Errorf("partition %d: %w", p, err)
				return
			}
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
						errs <- fmt.Errorf("partition %d: %w", p, err)
					}
					return
				}
				d := time.Duration(-1)
				if run.e2e {
					d = stampLatency(m.Value, time.Now())
				}
				if !run.observe(d, len(m.Value)) {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
