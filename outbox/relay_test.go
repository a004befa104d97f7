package outbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memSource is an in-memory Source.
type memSource struct {
	mu   sync.Mutex
	rows []Row // seq order
	wake chan struct{}
}

func (s *memSource) add(key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		seq := int64(len(s.rows)+1) + 1_000_000*int64(len(key))
		if len(s.rows) > 0 {
			seq = s.rows[len(s.rows)-1].Seq + 1
		}
		s.rows = append(s.rows, Row{Seq: seq, ID: NewID(), AggregateType: "t", AggregateID: key, Timestamp: time.Now(), Payload: []byte(fmt.Sprint(seq))})
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memSource) Fetch(_ context.Context, limit int) ([]Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parked := map[string]bool{}
	for _, r := range s.rows {
		if r.Attempts < 0 {
			parked[r.AggregateID] = true
		}
	}
	var out []Row
	for _, r := range s.rows {
		if !parked[r.AggregateID] && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *memSource) Delete(_ context.Context, seqs []int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = slices.DeleteFunc(s.rows, func(r Row) bool { return slices.Contains(seqs, r.Seq) })
	return nil
}

// Reject marks a parked row with negative Attempts.
func (s *memSource) Reject(_ context.Context, seq int64, _ string, park bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.rows {
		if s.rows[i].Seq == seq {
			s.rows[i].Attempts++
			if park {
				s.rows[i].Attempts = -s.rows[i].Attempts
			}
		}
	}
	return nil
}

func (s *memSource) Wake() <-chan struct{} { return s.wake }

func (s *memSource) Stats(context.Context) (int64, time.Time, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.rows)), time.Time{}, 0, nil
}

func (s *memSource) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// memPublisher records what it publishes and checks the per-key barrier.
type memPublisher struct {
	mu        sync.Mutex
	inFlight  map[string]bool
	maxPar    int
	cur       int
	got       map[string][]string // key -> values in publish order
	poison    map[string]bool     // values always rejected
	failUntil int                 // transient failures before the first success
	calls     int
	violation error
}

func (p *memPublisher) Publish(ctx context.Context, recs []Record) error {
	key := string(recs[0].Key)
	p.mu.Lock()
	p.calls++
	if p.inFlight[key] {
		p.violation = fmt.Errorf("two publishes in flight for key %s", key)
	}
	if p.calls <= p.failUntil {
		p.mu.Unlock()
		return errors.New("broker down")
	}
	p.inFlight[key] = true
	p.cur++
	p.maxPar = max(p.maxPar, p.cur)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight[key] = false
		p.cur--
		p.mu.Unlock()
	}()
	for _, r := range recs {
		if p.poison[string(r.Value)] {
			return &RejectedError{ID: r.ID, Err: errors.New("message too large")}
		}
	}
	for range 200 { // stay in flight a while, so an overlap on this key would show
		runtime.Gosched()
	}
	p.mu.Lock()
	for _, r := range recs {
		p.got[key] = append(p.got[key], string(r.Value))
	}
	p.mu.Unlock()
	return nil
}

func (p *memPublisher) Close() error { return nil }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runRelay(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	r, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestRelayOrderPerKeyParallelKeys(t *testing.T) {
	src := &memSource{wake: make(chan struct{}, 1)}
	pub := &memPublisher{inFlight: map[string]bool{}, got: map[string][]string{}, failUntil: 7}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	want := map[string][]string{}
	stop := runRelay(t, Config{Source: src, Publisher: pub, BatchSize: 7, Parallelism: 4, PollInterval: 10 * time.Millisecond,
		BreakerThreshold: 3, Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}})
	for round := range 5 {
		for _, k := range keys {
			src.add(k, round+1)
		}
	}
	src.mu.Lock()
	for _, r := range src.rows {
		want[r.AggregateID] = append(want[r.AggregateID], string(r.Payload))
	}
	src.mu.Unlock()
	waitFor(t, "all rows published", func() bool { return src.pending() == 0 })
	stop()
	if pub.violation != nil {
		t.Fatal(pub.violation)
	}
	for _, k := range keys {
		if !slices.Equal(pub.got[k], want[k]) {
			t.Errorf("key %s: published %v, want %v", k, pub.got[k], want[k])
		}
	}
	if pub.maxPar < 2 {
		t.Errorf("at most %d keys in flight at once, want parallel keys", pub.maxPar)
	}
}

func TestRelayParksPoisonKeyOthersFlow(t *testing.T) {
	src := &memSource{wake: make(chan struct{}, 1)}
	src.add("bad", 3)
	src.add("good", 3)
	src.mu.Lock()
	poison := string(src.rows[1].Payload) // the second row of "bad"
	src.mu.Unlock()
	pub := &memPublisher{inFlight: map[string]bool{}, got: map[string][]string{}, poison: map[string]bool{poison: true}}
	stop := runRelay(t, Config{Source: src, Publisher: pub, ParkAfter: 3, PollInterval: 10 * time.Millisecond})
	waitFor(t, "good key published and bad key parked", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.rows) == 2 && src.rows[0].Attempts == -3
	})
	stop()
	if len(pub.got["good"]) != 3 || len(pub.got["bad"]) != 1 {
		t.Fatalf("published %v", pub.got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.rows[0].Payload == nil || string(src.rows[0].Payload) != poison || src.rows[1].AggregateID != "bad" {
		t.Fatalf("left %+v", src.rows)
	}
}

// failingDelete fails the first Delete, as a crash between the broker's
// acknowledgment and the delete would leave things.
type failingDelete struct {
	*memSource
	failed bool
}

func (s *failingDelete) Delete(ctx context.Context, seqs []int64) error {
	if !s.failed {
		s.failed = true
		return errors.New("connection lost")
	}
	return s.memSource.Delete(ctx, seqs)
}

// TestRelayRepublishesWhenDeleteFails: a row acknowledged but not deleted
// is published again (at-least-once), with the same id header, so
// consumers deduplicate it.
func TestRelayRepublishesWhenDeleteFails(t *testing.T) {
	mem := &memSource{wake: make(chan struct{}, 1)}
	mem.add("k", 2)
	src := &failingDelete{memSource: mem}
	var mu sync.Mutex
	var ids []string
	pub := publishFunc(func(_ context.Context, recs []Record) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			ids = append(ids, string(r.Headers[0].Value))
		}
		return nil
	})
	stop := runRelay(t, Config{Source: src, Publisher: pub, PollInterval: 10 * time.Millisecond,
		Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}})
	waitFor(t, "rows deleted", func() bool { return mem.pending() == 0 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 4 || ids[0] != ids[2] || ids[1] != ids[3] || ids[0] == ids[1] {
		t.Fatalf("published ids %v, want both rows twice in order", ids)
	}
}

// publishFunc adapts a function to Publisher.
type publishFunc func(context.Context, []Record) error

func (f publishFunc) Publish(ctx context.Context, recs []Record) error { return f(ctx, recs) }
func (f publishFunc) Close() error                                     { return nil }

func TestCallSize(t *testing.T) {
	row := func(payload int) Row { return Row{Payload: make([]byte, payload)} }
	rows := func(n, payload int) []Row {
		out := make([]Row, n)
		for i := range out {
			out[i] = row(payload)
		}
		return out
	}
	tests := []struct {
		name string
		rows []Row
		want int
	}{
		{"one huge row still goes", rows(3, 2<<20), 1},
		{"few small rows in one call", rows(10, 10), 10},
		{"row cap", rows(maxCallRows+10, 1), maxCallRows},
		{"byte cap", rows(100, 100<<10), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := callSize(tt.rows); got != tt.want {
				t.Fatalf("callSize = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestRelayShutdownFinishesRound: cancelling Run while a publish is in
// flight lets that publish complete and its rows be deleted; nothing
// claimed is dropped or left half-done.
func TestRelayShutdownFinishesRound(t *testing.T) {
	src := &memSource{wake: make(chan struct{}, 1)}
	src.add("k", 3)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var published int
	pub := publishFunc(func(ctx context.Context, recs []Record) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err() // the round's context must outlive Run's
		}
		published += len(recs)
		return nil
	})
	r, err := NewRelay(Config{Source: src, Publisher: pub, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-entered
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if published != 3 || src.pending() != 0 {
		t.Fatalf("published %d, %d rows left", published, src.pending())
	}
}
