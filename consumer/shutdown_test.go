package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// TestConsumerGracefulShutdownFinishesInFlight stops the consumer while a
// handler call is blocked: the call finishes with a live context, its
// offset is committed, and nothing after the committed offset was handled.
// Meanwhile Lag reports the blocked record in offsets and in seconds.
func TestConsumerGracefulShutdownFinishesInFlight(t *testing.T) {
	eachMode(t, func(t *testing.T, mode consumer.Rebalance) {
		e := newEnv(t)
		const topic = "drain"
		e.createTopic(t, topic, 1)
		e.produce(t, topic, keyed(5, 1)...)
		release := make(chan struct{})
		entered := make(chan struct{})
		var mu sync.Mutex
		var handled []int64
		var ctxErr error
		cfg := fastConfig(e.b.Addr(), "g-drain", topic)
		cfg.Rebalance = mode
		cfg.Concurrency = 1
		cfg.Handler = func(ctx context.Context, m kafka.Message) error {
			if m.Offset == 2 {
				close(entered)
				<-release
				mu.Lock()
				ctxErr = ctx.Err()
				mu.Unlock()
			}
			mu.Lock()
			handled = append(handled, m.Offset)
			mu.Unlock()
			return nil
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, c)
		<-entered
		waitFor(t, 10*time.Second, "lag of the blocked record", func() bool {
			lag := c.Lag()
			return len(lag) == 1 && lag[0].Committable == 2 && lag[0].Records == 3 && lag[0].Age > 0
		})
		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		select {
		case err := <-stopped:
			t.Fatalf("Run returned (%v) while a handler call was in flight", err)
		case <-time.After(100 * time.Millisecond): // not a wait for an event: checks Run is still draining
		}
		close(release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if ctxErr != nil {
			t.Fatalf("the in-flight call's context was cancelled: %v", ctxErr)
		}
		committed := e.committed(t, "g-drain", topic, 1)[0]
		if committed < 3 {
			t.Fatalf("committed %d, want at least 3 (the in-flight record is done)", committed)
		}
		for i, off := range handled {
			if off != int64(i) || off >= committed {
				t.Fatalf("handled %v with %d committed", handled, committed)
			}
		}
		if int64(len(handled)) != committed {
			t.Fatalf("handled %v but committed %d", handled, committed)
		}
	})
}
