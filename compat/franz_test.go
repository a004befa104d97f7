package compat

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGo round-trips messages with franz-go at its defaults
// (idempotent producer, acks=all, snappy), creating the topic and checking
// its offsets with kadm.
func TestFranzGo(t *testing.T) {
	b := startBroker(t)
	topic := topicName("franz")
	createTopic(t, b.Addr(), topic, partitions)
	want := messagesFor("franz-go", messages)
	produceKgo(t, b.Addr(), topic, want)
	checkEndOffsets(t, b.Addr(), topic, messages)
	verify(t, "franz-go", consumeKgo(t, b.Addr(), topic, partitions, messages), want)
}

// produceKgo produces recs with kgo's defaults and a manual partitioner and
// checks that each was acknowledged at its expected partition and offset.
func produceKgo(t *testing.T, addr, topic string, recs []record, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx := timeout(t)
	var (
		mu   sync.Mutex
		errs []error
	)
	for _, r := range recs {
		kr := &kgo.Record{Partition: r.Partition, Key: []byte(r.Key), Value: []byte(r.Value)}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
		}
		cl.Produce(ctx, kr, func(got *kgo.Record, err error) {
			if err == nil && (got.Partition != r.Partition || got.Offset != r.Offset) {
				err = errors.New("acknowledged at " + record{Partition: got.Partition, Offset: got.Offset}.String())
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, errors.New(r.Key+": "+err.Error()))
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("kgo: flush: %v", err)
	}
	if len(errs) > 0 {
		t.Fatalf("kgo: %d of %d produces failed:\n%v", len(errs), len(recs), errorsJoin(errs, 10))
	}
}
