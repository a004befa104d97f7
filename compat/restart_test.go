package compat

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// durableMessages is how many acknowledged messages the restart tests
// produce before stopping the broker.
const durableMessages = 100_000

// TestRestart checks that every acknowledged message survives a restart:
// after SIGTERM (clean shutdown, exit status 0) at the default fsync policy,
// and after kill -9 with --fsync always. After the restart the log must also
// continue at the right offsets.
//
// kill -9 ends the process but not the machine, so the page cache survives
// it: this case checks that an acknowledged append has left the process
// (no user-space buffering before the acknowledgement) and that recovery
// without the clean-shutdown marker keeps every acknowledged batch. It cannot
// tell an fsync from none; log's crashable-FS tests do that.
func TestRestart(t *testing.T) {
	tests := []struct {
		name string
		args []string
		stop func(*weirtest.Broker) error
	}{
		{"SIGTERM", nil, (*weirtest.Broker).Stop},
		{"kill -9 with fsync always", []string{"--fsync", "always"}, (*weirtest.Broker).Kill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBroker(t, weirtest.WithArgs(tt.args...))
			requireProcess(t, b)
			const client = "restart"
			topic := topicName("restart")
			createTopic(t, b.Addr(), topic, partitions)
			all := messagesFor(client, durableMessages+300)
			produceKgo(t, b.Addr(), topic, all[:durableMessages])

			if err := tt.stop(b); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if err := b.Restart(); err != nil {
				t.Fatalf("restart after %s: %v", tt.name, err)
			}
			checkEndOffsets(t, b.Addr(), topic, durableMessages)
			verify(t, "kgo after restart", consumeKgo(t, b.Addr(), topic, partitions, durableMessages), all[:durableMessages])

			produceKgo(t, b.Addr(), topic, all[durableMessages:])
			checkEndOffsets(t, b.Addr(), topic, len(all))
			verify(t, "kgo after restart and more produce", consumeKgo(t, b.Addr(), topic, partitions, len(all)), all)
		})
	}
}

// TestKillDuringIdempotentProduce kills the broker (kill -9, --fsync always)
// while an idempotent kgo producer has requests in flight, restarts it on
// the same port and lets the producer retry. Every message must then be in
// the log exactly once, at the offset it was acknowledged at: batches
// written before the kill but never acknowledged must be recognised as
// duplicates when retried, so the producer state (KIP-98 sequences) has to
// survive the crash.
func TestKillDuringIdempotentProduce(t *testing.T) {
	b := startBroker(t, weirtest.WithArgs("--fsync", "always"))
	requireProcess(t, b)
	const n = 30_000
	topic := topicName("kill-produce")
	createTopic(t, b.Addr(), topic, partitions)
	want := messagesFor("kill", n)

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr()),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(2_000), // keep requests in flight across the kill
	)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx := timeout(t)
	var (
		mu    sync.Mutex
		errs  []error
		acked atomic.Int64
	)
	halfway := make(chan struct{})
	go func() {
		defer close(halfway)
		for i, r := range want {
			if i == n/3 {
				halfway <- struct{}{} // the test kills the broker now
			}
			kr := &kgo.Record{Partition: r.Partition, Key: []byte(r.Key), Value: []byte(r.Value)}
			for _, h := range r.Headers {
				kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
			}
			cl.Produce(ctx, kr, func(got *kgo.Record, err error) {
				if err == nil && (got.Partition != r.Partition || got.Offset != r.Offset) {
					err = fmt.Errorf("acknowledged at %v", record{Partition: got.Partition, Offset: got.Offset})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", r.Key, err))
					mu.Unlock()
					return
				}
				acked.Add(1)
			})
		}
	}()
	<-halfway
	t.Logf("killing the broker with %d of %d messages acknowledged", acked.Load(), n)
	if err := b.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	<-halfway // closed once every record is handed to the client
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("kgo: flush after restart: %v", err)
	}
	mu.Lock()
	if len(errs) > 0 {
		t.Fatalf("kgo: %d of %d produces failed across the restart:\n%v", len(errs), n, errorsJoin(errs, 10))
	}
	mu.Unlock()
	checkEndOffsets(t, b.Addr(), topic, n)
	verify(t, "kgo after kill -9 during produce", consumeKgo(t, b.Addr(), topic, partitions, n), want)
}
