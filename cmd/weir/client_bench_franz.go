package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzDriver runs the benchmark with franz-go's kgo client, the client
// used to compare brokers.
type franzDriver struct{}

func franzCodec(c kafka.Compression) kgo.CompressionCodec {
	switch c {
	case kafka.Gzip:
		return kgo.GzipCompression()
	case kafka.Snappy:
		return kgo.SnappyCompression()
	case kafka.Lz4:
		return kgo.Lz4Compression()
	case kafka.Zstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func franzAcks(a kafka.RequiredAcks) kgo.Acks {
	switch a {
	case kafka.RequireOne:
		return kgo.LeaderAck()
	case kafka.RequireNone:
		return kgo.NoAck()
	}
	return kgo.AllISRAcks()
}

func (franzDriver) produce(ctx context.Context, run *benchRun, stamp bool) error {
	bf := run.bf
	opts := []kgo.Opt{
		kgo.SeedBrokers(run.addrs...),
		kgo.ClientID("weir-bench"),
		kgo.DefaultProduceTopic(bf.topic),
		kgo.RequiredAcks(franzAcks(run.acks)),
		kgo.ProducerLinger(bf.linger),
		kgo.ProducerBatchMaxBytes(int32(bf.batchBytes)),
		kgo.ProducerBatchCompression(franzCodec(run.codec)),
	}
	if !bf.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			run.fail(fmt.Errorf("produce: %w", err))
			return
		}
		run.acked(time.Since(r.Timestamp), len(r.Value))
	}
	var wg sync.WaitGroup
	errs := make(chan error, bf.concurrency)
	for range bf.concurrency {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("kgo client: %w", err)
		}
		wg.Go(func() {
			defer cl.Close()
			for ctx.Err() == nil {
				_, due, ok := run.claim()
				if !ok || !pace(ctx, due) {
					break
				}
				now := time.Now()
				v := run.payload
				if stamp {
					v = run.value(due)
				}
				cl.Produce(ctx, &kgo.Record{Value: v, Timestamp: now}, promise)
			}
			if err := cl.Flush(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("flush: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (franzDriver) consume(ctx context.Context, run *benchRun) error {
	offsets := make(map[int32]kgo.Offset, len(run.start))
	for p, o := range run.start {
		offsets[int32(p)] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(run.addrs...),
		kgo.ClientID("weir-bench"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{run.bf.topic: offsets}),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("kgo client: %w", err)
	}
	defer cl.Close()
	stamped := run.e2e
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			d := time.Duration(-1)
			if stamped {
				d = stampLatency(r.Value, now)
			}
			run.observe(d, len(r.Value))
		})
	}
}
