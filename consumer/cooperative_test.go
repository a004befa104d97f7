package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// loadProducer writes unique keyed records to topic every few milliseconds
// until stopped, or until max records or a minute.
type loadProducer struct {
	stop chan struct{}
	done chan struct{}
	n    int // records written; read after done
	err  error
}

func startLoad(t *testing.T, e *testEnv, topic string, max int) *loadProducer {
	t.Helper()
	lp := &loadProducer{stop: make(chan struct{}), done: make(chan struct{})}
	w := &kafka.Writer{Addr: kafka.TCP(e.b.Addr()), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: e.transport}
	go func() {
		defer close(lp.done)
		defer w.Close()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(time.Minute)
		for lp.n < max {
			select {
			case <-lp.stop:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
			msgs := make([]kafka.Message, 24)
			for i := range msgs {
				v := fmt.Sprintf("v%d", lp.n+i)
				msgs[i] = kafka.Message{Key: []byte(v), Value: []byte(v)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := w.WriteMessages(ctx, msgs...)
			cancel()
			if err != nil {
				lp.err = err
				return
			}
			lp.n += len(msgs)
		}
	}()
	t.Cleanup(lp.finish)
	return lp
}

// finish stops the producer and waits for it.
func (lp *loadProducer) finish() {
	select {
	case <-lp.stop:
	default:
		close(lp.stop)
	}
	<-lp.done
}

// TestCooperativeRebalanceUnderLoad runs members a, b and c of a
// cooperative-sticky group while a producer writes: b joins, c joins, a
// leaves. Every record is handled exactly once, a partition is never in
// two members' hands, and the partitions a keeps when b joins are never
// revoked from it and keep flowing while b joins: b's assignment hook waits
// until a has handled a record of a kept partition since b started.
func TestCooperativeRebalanceUnderLoad(t *testing.T) {
	testRebalanceUnderLoad(t, consumer.CooperativeSticky)
}

// TestEagerRebalanceUnderLoad is the same run in eager mode, without the
// checks on kept partitions (eager mode revokes them all): every record
// handled exactly once and no shared ownership.
func TestEagerRebalanceUnderLoad(t *testing.T) {
	testRebalanceUnderLoad(t, consumer.Eager)
}

func testRebalanceUnderLoad(t *testing.T, mode consumer.Rebalance) {
	e := newEnv(t)
	const parts = 6
	topic := "load-" + mode.String()
	coop := mode == consumer.CooperativeSticky
	e.createTopic(t, topic, parts)

	var mu sync.Mutex
	seen := map[string]int{}
	owner := map[consumer.TopicPartition]string{}
	revoked := map[string][]consumer.TopicPartition{}
	assigned := map[string][]consumer.TopicPartition{}
	lastHandled := map[string]map[consumer.TopicPartition]time.Time{}
	var violations []string
	var bStarted time.Time
	keptFlowed := false

	// aFlowedSince reports whether a handled a record of a partition it
	// owns now after since. The caller holds mu.
	aFlowedSince := func(since time.Time) bool {
		for tp, at := range lastHandled["a"] {
			if owner[tp] == "a" && at.After(since) {
				return true
			}
		}
		return false
	}
	member := func(name string) *consumer.Consumer {
		cfg := fastConfig(e.b.Addr(), "g-"+topic, topic)
		cfg.Rebalance = mode
		cfg.Handler = func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			tp := consumer.TopicPartition{Topic: m.Topic, Partition: m.Partition}
			if owner[tp] != name {
				violations = append(violations, name+" handled "+tp.String()+" owned by "+owner[tp])
			}
			seen[string(m.Value)]++
			if lastHandled[name] == nil {
				lastHandled[name] = map[consumer.TopicPartition]time.Time{}
			}
			lastHandled[name][tp] = time.Now()
			return nil
		}
		cfg.OnAssigned = func(_ context.Context, tps []consumer.TopicPartition) {
			mu.Lock()
			first := coop && name == "b" && len(assigned["b"]) == 0
			for _, tp := range tps {
				if o := owner[tp]; o != "" {
					violations = append(violations, name+" assigned "+tp.String()+" still owned by "+o)
				}
				owner[tp] = name
			}
			assigned[name] = append(assigned[name], tps...)
			since := bStarted
			mu.Unlock()
			if !first {
				return
			}
			deadline := time.Now().Add(20 * time.Second)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				mu.Lock()
				ok := aFlowedSince(since)
				keptFlowed = keptFlowed || ok
				mu.Unlock()
				if ok {
					return
				}
				<-tick.C
			}
		}
		cfg.OnRevoked = func(_ context.Context, tps []consumer.TopicPartition) {
			mu.Lock()
			defer mu.Unlock()
			for _, tp := range tps {
				delete(owner, tp)
			}
			revoked[name] = append(revoked[name], tps...)
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	owned := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range owner {
			if o == name {
				n++
			}
		}
		return n
	}

	load := startLoad(t, e, topic, 50000)
	stopA := runConsumer(t, member("a"))
	waitFor(t, 30*time.Second, "a owns every partition and handles records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(owner) == parts && len(seen) > 0
	})
	mu.Lock()
	bStarted = time.Now()
	mu.Unlock()
	stopB := runConsumer(t, member("b"))
	waitFor(t, 30*time.Second, "b joins", func() bool { return owned("b") > 0 && owned("a")+owned("b") == parts })
	mu.Lock()
	var kept []consumer.TopicPartition
	for tp, o := range owner {
		if o == "a" {
			kept = append(kept, tp)
		}
	}
	for _, tp := range kept {
		if !coop {
			break
		}
		if slices.Contains(revoked["a"], tp) {
			t.Errorf("a kept %s but it was revoked from a first", tp)
		}
		if n := countTP(assigned["a"], tp); n != 1 {
			t.Errorf("a kept %s but was assigned it %d times", tp, n)
		}
	}
	if coop && !keptFlowed {
		t.Errorf("a handled no record of its kept partitions %v while b joined", kept)
	}
	mu.Unlock()

	stopC := runConsumer(t, member("c"))
	waitFor(t, 30*time.Second, "c joins", func() bool { return owned("c") > 0 && owned("a")+owned("b")+owned("c") == parts })
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "b and c take a's partitions", func() bool { return owned("b")+owned("c") == parts })
	load.finish()
	if load.err != nil {
		t.Fatalf("producer: %v", load.err)
	}
	waitFor(t, 30*time.Second, "every record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= load.n
	})
	for _, stop := range []func() error{stopB, stopC} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != load.n {
		t.Errorf("handled %d distinct records, produced %d", len(seen), load.n)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
	}
	if len(violations) > 0 {
		t.Errorf("ownership violations: %v", violations)
	}
	t.Logf("%d records; a revoked %v, b assigned %v, c assigned %v", load.n, revoked["a"], assigned["b"], assigned["c"])
}

func countTP(tps []consumer.TopicPartition, tp consumer.TopicPartition) int {
	n := 0
	for _, x := range tps {
		if x == tp {
			n++
		}
	}
	return n
}
