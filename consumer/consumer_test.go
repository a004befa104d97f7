package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// eachMode runs fn as a subtest per rebalance mode (kafka-go and franz-go
// backends).
func eachMode(t *testing.T, fn func(t *testing.T, mode consumer.Rebalance)) {
	for _, mode := range []consumer.Rebalance{consumer.Eager, consumer.CooperativeSticky} {
		t.Run(mode.String(), func(t *testing.T) { fn(t, mode) })
	}
}

// fastConfig is a Config with test-friendly timings.
func fastConfig(addr, group string, topics ...string) consumer.Config {
	return consumer.Config{
		Brokers: []string{addr}, GroupID: group, Topics: topics,
		CommitInterval: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second,
		MaxWait: 50 * time.Millisecond, Backoff: consumer.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		Logger: quiet,
	}
}

// runConsumer runs c in the background; the returned stop cancels it and
// returns Run's error.
func runConsumer(t *testing.T, c *consumer.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// recorder collects handled values per key, in handling order.
type recorder struct {
	mu      sync.Mutex
	byKey   map[string][]string
	n       int
	active  map[string]int // calls in progress per key
	overlap bool
}

func newRecorder() *recorder {
	return &recorder{byKey: map[string][]string{}, active: map[string]int{}}
}

func (r *recorder) handle(_ context.Context, m kafka.Message) error {
	k := string(m.Key)
	r.mu.Lock()
	r.active[k]++
	if r.active[k] > 1 {
		r.overlap = true
	}
	r.mu.Unlock()
	runtime.Gosched() // let a wrongly parallel call of the same key overlap
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active[k]--
	r.byKey[k] = append(r.byKey[k], string(m.Value))
	r.n++
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// checkOrder fails unless every key's values are key:0, key:1, ... key:n-1.
func (r *recorder) checkOrder(t *testing.T, perKey int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overlap {
		t.Error("two calls for one key ran at once")
	}
	for k, vs := range r.byKey {
		if len(vs) != perKey {
			t.Errorf("key %s handled %d times, want %d", k, len(vs), perKey)
		}
		for i, v := range vs {
			if want := fmt.Sprintf("%s:%d", k, i); v != want {
				t.Errorf("key %s call %d = %s, want %s", k, i, v, want)
				break
			}
		}
	}
}

func TestConsumerPerKeyOrderAndCommit(t *testing.T) {
	eachMode(t, func(t *testing.T, mode consumer.Rebalance) {
		e := newEnv(t)
		const topic, parts, keys, perKey = "orders", 3, 20, 15
		e.createTopic(t, topic, parts)
		e.produce(t, topic, keyed(keys*perKey, keys)...)

		rec := newRecorder()
		cfg := fastConfig(e.b.Addr(), "g-order", topic)
		cfg.Rebalance = mode
		cfg.Handler = rec.handle
		cfg.Concurrency = 4
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, c)
		waitFor(t, 30*time.Second, "every record handled", func() bool { return rec.count() >= keys*perKey })
		waitFor(t, 10*time.Second, "lag 0", func() bool {
			lag := c.Lag()
			for _, l := range lag {
				if l.Records != 0 {
					return false
				}
			}
			return len(lag) == parts
		})
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		rec.checkOrder(t, perKey)

		var total int64
		for p, off := range e.committed(t, "g-order", topic, parts) {
			if off < 0 {
				t.Errorf("partition %d not committed", p)
			}
			total += off
		}
		if total != keys*perKey {
			t.Errorf("committed offsets sum to %d, want %d", total, keys*perKey)
		}

		// A new member of the group starts after the committed offsets.
		rec2 := newRecorder()
		cfg.Handler = rec2.handle
		c2, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop2 := runConsumer(t, c2)
		e.produce(t, topic, kafka.Message{Key: []byte("late"), Value: []byte("late:0")})
		waitFor(t, 30*time.Second, "the late record", func() bool { return rec2.count() >= 1 })
		if err := stop2(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rec2.count() != 1 {
			t.Fatalf("second member handled %d records, want only the late one: %v", rec2.count(), rec2.byKey)
		}
	})
}

func TestConsumerRetryThenDeadLetter(t *testing.T) {
	eachMode(t, func(t *testing.T, mode consumer.Rebalance) {
		e := newEnv(t)
		const topic, dlq = "pay", "pay.dlq"
		e.createTopic(t, topic, 2)
		e.createTopic(t, dlq, 1)
		e.produce(t, topic,
			kafka.Message{Key: []byte("bad"), Value: []byte("bad:0"), Headers: []kafka.Header{{Key: "id", Value: []byte("x1")}}},
			kafka.Message{Key: []byte("flaky"), Value: []byte("flaky:0")},
			kafka.Message{Key: []byte("bad"), Value: []byte("bad:1")},
			kafka.Message{Key: []byte("ok"), Value: []byte("ok:0")},
		)
		var mu sync.Mutex
		attempts := map[string]int{}
		var handled []string
		cfg := fastConfig(e.b.Addr(), "g-dlq", topic)
		cfg.Rebalance = mode
		cfg.MaxAttempts = 3
		cfg.DeadLetterTopic = dlq
		cfg.Handler = func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			v := string(m.Value)
			attempts[v]++
			switch {
			case v == "bad:0":
				return errors.New("boom")
			case v == "flaky:0" && attempts[v] < 3:
				return errors.New("transient")
			}
			handled = append(handled, v)
			return nil
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, c)
		waitFor(t, 30*time.Second, "three records handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(handled) == 3
		})
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if attempts["bad:0"] != 3 || attempts["flaky:0"] != 3 || attempts["bad:1"] != 1 {
			t.Errorf("attempts = %v", attempts)
		}
		got := e.readAll(t, dlq, 1)
		if len(got) != 1 {
			t.Fatalf("dead-letter topic has %d records, want 1", len(got))
		}
		h := map[string]string{}
		for _, x := range got[0].Headers {
			h[x.Key] = string(x.Value)
		}
		if string(got[0].Value) != "bad:0" || h["id"] != "x1" || h[consumer.HeaderDLQError] != "boom" ||
			h[consumer.HeaderDLQTopic] != topic || h[consumer.HeaderDLQAttempts] != "3" || h[consumer.HeaderDLQOffset] == "" {
			t.Errorf("dead letter = %q headers %v", got[0].Value, h)
		}
	})
}

func TestConsumerWithoutDeadLetterStops(t *testing.T) {
	eachMode(t, func(t *testing.T, mode consumer.Rebalance) {
		e := newEnv(t)
		const topic = "strict"
		e.createTopic(t, topic, 1)
		e.produce(t, topic, kafka.Message{Value: []byte("a")}, kafka.Message{Value: []byte("poison")}, kafka.Message{Value: []byte("c")})
		cfg := fastConfig(e.b.Addr(), "g-strict", topic)
		cfg.Rebalance = mode
		cfg.MaxAttempts = 2
		cfg.Handler = func(_ context.Context, m kafka.Message) error {
			if string(m.Value) == "poison" {
				return errors.New("cannot parse")
			}
			return nil
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = c.Run(ctx)
		herr, ok := errors.AsType[*consumer.HandlerError](err)
		if !ok || herr.Offset != 1 || herr.Attempts != 2 || !strings.Contains(err.Error(), "cannot parse") {
			t.Fatalf("Run = %v, want a HandlerError at offset 1 after 2 attempts", err)
		}
		if off := e.committed(t, "g-strict", topic, 1)[0]; off != 1 {
			t.Fatalf("committed %d, want 1 (the poison record stays uncommitted)", off)
		}
		if err := c.Run(ctx); !errors.Is(err, consumer.ErrClosed) {
			t.Fatalf("second Run = %v, want ErrClosed", err)
		}
	})
}

func TestConsumerBatchHandler(t *testing.T) {
	eachMode(t, func(t *testing.T, mode consumer.Rebalance) {
		e := newEnv(t)
		const topic = "batched"
		e.createTopic(t, topic, 2)
		e.produce(t, topic, keyed(200, 7)...)
		var mu sync.Mutex
		next := map[consumer.TopicPartition]int64{}
		var n, calls int
		cfg := fastConfig(e.b.Addr(), "g-batch", topic)
		cfg.Rebalance = mode
		cfg.BatchSize = 50
		cfg.BatchHandler = func(_ context.Context, tp consumer.TopicPartition, batch []kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if len(batch) == 0 || len(batch) > 50 {
				t.Errorf("batch of %d", len(batch))
			}
			for _, m := range batch {
				if m.Topic != tp.Topic || m.Partition != tp.Partition || m.Offset != next[tp] {
					t.Errorf("%s: got offset %d at %s/%d, want %d", tp, m.Offset, m.Topic, m.Partition, next[tp])
				}
				next[tp] = m.Offset + 1
			}
			n += len(batch)
			calls++
			return nil
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, c)
		waitFor(t, 30*time.Second, "200 records", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return n == 200
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if calls >= 200 {
			t.Errorf("%d calls for 200 records: no batching", calls)
		}
		committed := e.committed(t, "g-batch", topic, 2)
		for tp, off := range next {
			if committed[tp.Partition] != off {
				t.Errorf("%s committed %d, want %d", tp, committed[tp.Partition], off)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	h := func(context.Context, kafka.Message) error { return nil }
	bh := func(context.Context, consumer.TopicPartition, []kafka.Message) error { return nil }
	tests := []struct {
		name string
		cfg  consumer.Config
		ok   bool
	}{
		{"ok", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h}, true},
		{"no brokers", consumer.Config{GroupID: "g", Topics: []string{"t"}, Handler: h}, false},
		{"no group", consumer.Config{Brokers: []string{"a:1"}, Topics: []string{"t"}, Handler: h}, false},
		{"no topics", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Handler: h}, false},
		{"no handler", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}}, false},
		{"two handlers", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h, BatchHandler: bh}, false},
		{"dlq consumed", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t", "t.dlq"}, Handler: h, DeadLetterTopic: "t.dlq"}, false},
		{"bad start", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h, StartOffset: 7}, false},
		{"cooperative", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h, Rebalance: consumer.CooperativeSticky}, true},
		{"read committed", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h, IsolationLevel: kafka.ReadCommitted}, true},
		{"bad rebalance", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h, Rebalance: 2}, false},
		{"bad isolation", consumer.Config{Brokers: []string{"a:1"}, GroupID: "g", Topics: []string{"t"}, Handler: h, IsolationLevel: 3}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := consumer.New(tc.cfg)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, consumer.ErrInvalidConfig)) {
				t.Fatalf("New = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestConsumerSeekOverridesGroupOffsets starts a partition where Seek says,
// not at the group's committed offset (there is none: it would be 0).
func TestConsumerSeekOverridesGroupOffsets(t *testing.T) {
	eachMode(t, func(t *testing.T, mode consumer.Rebalance) {
		e := newEnv(t)
		const topic = "seek"
		e.createTopic(t, topic, 1)
		e.produce(t, topic, keyed(10, 1)...)
		first := make(chan int64, 1)
		cfg := fastConfig(e.b.Addr(), "g-seek", topic)
		cfg.Rebalance = mode
		cfg.Seek = func(_ context.Context, tps []consumer.TopicPartition) (map[consumer.TopicPartition]int64, error) {
			return map[consumer.TopicPartition]int64{tps[0]: 7}, nil
		}
		cfg.Handler = func(_ context.Context, m kafka.Message) error {
			select {
			case first <- m.Offset:
			default:
			}
			return nil
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, c)
		select {
		case off := <-first:
			if off != 7 {
				t.Fatalf("first record handled at offset %d, want 7", off)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no record handled")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
