package compat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsumerAcrossRestart keeps one kgo consumer running while the broker
// restarts. kgo fetches through an incremental fetch session (KIP-227),
// which the restart forgets along with the connection, so kgo must start a
// new session from the offsets it has reached. Every message, produced
// before and after the restart, must arrive exactly once and in order.
// (broker's TestFetchSessionEvictedUnderKgo covers a session lost while
// the connection stays up.)
func TestConsumerAcrossRestart(t *testing.T) {
	b := startBroker(t)
	requireProcess(t, b)
	topic := topicName("session-restart")
	createTopic(t, b.Addr(), topic, partitions)
	const half = 3000
	all := messagesFor("session", 2*half)

	offs := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		offs[p] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		got []record
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			// Errors while the broker is down are retried by kgo; what
			// counts is that every record arrives once.
			fs.EachRecord(func(r *kgo.Record) {
				mu.Lock()
				got = append(got, fromKgo(r))
				mu.Unlock()
			})
		}
	}()
	defer func() {
		cancel()
		<-done
		cl.Close()
	}()
	consumed := func(n int) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(got) < n {
				return fmt.Errorf("%d of %d records consumed", len(got), n)
			}
			return nil
		}
	}

	produceKgo(t, b.Addr(), topic, all[:half])
	waitUntil(t, opTimeout, "records before the restart", consumed(half))
	if err := b.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := b.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	produceKgo(t, b.Addr(), topic, all[half:])
	waitUntil(t, opTimeout, "records after the restart", consumed(len(all)))
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive with the next fetches
	mu.Lock()
	defer mu.Unlock()
	verify(t, "kgo across a restart", got, all)
}
