package purgatory

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testOp completes when ready is set; it records how it completed.
type testOp struct {
	name    string
	ready   atomic.Bool
	tries   atomic.Int32
	calls   atomic.Int32
	expired atomic.Bool
	onDone  func(*testOp)
}

func (o *testOp) TryComplete() bool { o.tries.Add(1); return o.ready.Load() }
func (o *testOp) OnComplete(expired bool) {
	o.calls.Add(1)
	o.expired.Store(expired)
	if o.onDone != nil {
		o.onDone(o)
	}
}

var t0 = time.Unix(1_700_000_000, 0)

func TestWatchCheckExpire(t *testing.T) {
	type step struct {
		do   string // "ready", "check", "expire"
		name string // op for ready, key for check
		at   time.Duration
	}
	type want struct {
		calls   int32
		expired bool
	}
	tests := []struct {
		name  string
		ready bool // op a ready before Watch
		keys  []string
		steps []step
		want  want
		left  int
	}{
		{"ready at watch", true, []string{"k"}, nil, want{1, false}, 0},
		{"completes on check", false, []string{"k"}, []step{{do: "ready"}, {do: "check", name: "k"}}, want{1, false}, 0},
		{"check of other key does nothing", false, []string{"k"}, []step{{do: "ready"}, {do: "check", name: "x"}}, want{0, false}, 1},
		{"check before ready does nothing", false, []string{"k"}, []step{{do: "check", name: "k"}}, want{0, false}, 1},
		{"expires at deadline", false, []string{"k"}, []step{{do: "expire", at: time.Second}}, want{1, true}, 0},
		{"not before deadline", false, []string{"k"}, []step{{do: "expire", at: time.Second - 1}}, want{0, false}, 1},
		{"second key completes", false, []string{"a", "b"}, []step{{do: "ready"}, {do: "check", name: "b"}, {do: "check", name: "a"}}, want{1, false}, 0},
		{"expire after completion is a no-op", false, []string{"k"}, []step{{do: "ready"}, {do: "check", name: "k"}, {do: "expire", at: time.Hour}}, want{1, false}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New[string](nil)
			op := &testOp{}
			op.ready.Store(tc.ready)
			p.Watch(op, t0.Add(time.Second), tc.keys...)
			for _, s := range tc.steps {
				switch s.do {
				case "ready":
					op.ready.Store(true)
				case "check":
					p.Check(s.name)
				case "expire":
					p.Expire(t0.Add(s.at))
				}
			}
			if got := op.calls.Load(); got != tc.want.calls {
				t.Fatalf("OnComplete called %d times, want %d", got, tc.want.calls)
			}
			if tc.want.calls == 1 && op.expired.Load() != tc.want.expired {
				t.Fatalf("expired = %v, want %v", op.expired.Load(), tc.want.expired)
			}
			if got := p.Len(); got != tc.left {
				t.Fatalf("Len = %d, want %d", got, tc.left)
			}
			for _, k := range tc.keys {
				if tc.left == 0 && p.Watching(k) != 0 {
					t.Fatalf("key %q still watched after completion", k)
				}
			}
		})
	}
}

func TestExpireInDeadlineOrder(t *testing.T) {
	p := New[int](nil)
	var order []string
	add := func(name string, d time.Duration) {
		p.Watch(&testOp{name: name, onDone: func(o *testOp) { order = append(order, o.name) }}, t0.Add(d), 1)
	}
	add("c", 3*time.Second)
	add("a", time.Second)
	add("b", 2*time.Second)
	add("a2", time.Second)
	if next, ok := p.NextDeadline(); !ok || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("NextDeadline = %v %v", next, ok)
	}
	if n := p.Expire(t0.Add(2 * time.Second)); n != 3 {
		t.Fatalf("expired %d, want 3", n)
	}
	want := []string{"a", "a2", "b"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want prefix %v", order, want)
		}
	}
	if p.Len() != 1 || p.Watching(1) != 1 {
		t.Fatalf("Len %d Watching %d, want 1 1", p.Len(), p.Watching(1))
	}
}

func TestCloseExpiresAll(t *testing.T) {
	p := New[string](nil)
	a, b := &testOp{}, &testOp{}
	p.Watch(a, t0.Add(time.Hour), "k")
	p.Watch(b, t0.Add(time.Hour), "j")
	p.Close()
	p.Close()
	for _, o := range []*testOp{a, b} {
		if o.calls.Load() != 1 || !o.expired.Load() {
			t.Fatalf("calls %d expired %v, want 1 true", o.calls.Load(), o.expired.Load())
		}
	}
	c := &testOp{}
	if !p.Watch(c, t0, "k") || !c.expired.Load() {
		t.Fatal("Watch after Close must expire the operation at once")
	}
}

func TestExpireAll(t *testing.T) {
	p := New[string](nil)
	a, b := &testOp{}, &testOp{}
	p.Watch(a, t0.Add(time.Hour), "k")
	p.Watch(b, t0.Add(24*time.Hour), "j", "k")
	if n := p.ExpireAll(); n != 2 {
		t.Fatalf("ExpireAll = %d, want 2", n)
	}
	for _, o := range []*testOp{a, b} {
		if o.calls.Load() != 1 || !o.expired.Load() {
			t.Fatalf("calls %d expired %v, want 1 true", o.calls.Load(), o.expired.Load())
		}
	}
	if p.Len() != 0 || p.Watching("k") != 0 {
		t.Fatalf("Len %d Watching %d after ExpireAll", p.Len(), p.Watching("k"))
	}
	c := &testOp{}
	if p.Watch(c, t0.Add(time.Hour), "k") {
		t.Fatal("purgatory closed by ExpireAll")
	}
	p.Close()
}

// TestCompletionMayReenter checks that OnComplete runs outside the lock: a
// completion that watches a new operation must not deadlock.
func TestCompletionMayReenter(t *testing.T) {
	p := New[string](nil)
	inner := &testOp{}
	outer := &testOp{onDone: func(*testOp) { p.Watch(inner, t0.Add(time.Hour), "k") }}
	p.Watch(outer, t0.Add(time.Hour), "k")
	outer.ready.Store(true)
	if n := p.Check("k"); n != 1 {
		t.Fatalf("Check completed %d, want 1", n)
	}
	if p.Watching("k") != 1 {
		t.Fatal("inner operation not parked")
	}
}

// TestTimerGoroutineExpires runs the real timer goroutine and polls for the
// expiry; it asserts only that expiry happens, not when.
func TestTimerGoroutineExpires(t *testing.T) {
	p := New[string](nil)
	p.Start()
	defer p.Close()
	done := make(chan bool, 1)
	op := &testOp{onDone: func(o *testOp) { done <- o.expired.Load() }}
	// A far deadline first, then an earlier one that must wake the timer.
	p.Watch(&testOp{}, time.Now().Add(time.Hour), "k")
	p.Watch(op, time.Now().Add(5*time.Millisecond), "k")
	select {
	case expired := <-done:
		if !expired {
			t.Fatal("completed without expiring")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("operation never expired")
	}
}

// TestConcurrentChecksCompleteOnce races many Check calls on the keys of many
// operations; each must complete exactly once.
func TestConcurrentChecksCompleteOnce(t *testing.T) {
	p := New[int](nil)
	ops := make([]*testOp, 200)
	for i := range ops {
		ops[i] = &testOp{}
		p.Watch(ops[i], t0.Add(time.Hour), i%7, i%5)
	}
	for _, o := range ops {
		o.ready.Store(true)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 7 {
				p.Check((k + g) % 7)
			}
		}()
	}
	wg.Wait()
	for i, o := range ops {
		if o.calls.Load() != 1 {
			t.Fatalf("op %d completed %d times", i, o.calls.Load())
		}
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d after all completed", p.Len())
	}
}

// TestPurgatoryModel drives random Watch/ready/Check/Expire sequences and
// compares with a naive model: a list of pending operations scanned in full.
func TestPurgatoryModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := New[int](nil)
		type mop struct {
			op       *testOp
			keys     []int
			deadline time.Time
		}
		var pending []*mop
		var all []*mop
		now := t0
		t.Repeat(map[string]func(*rapid.T){
			"watch": func(t *rapid.T) {
				op := &testOp{}
				op.ready.Store(rapid.Bool().Draw(t, "ready"))
				keys := rapid.SliceOfNDistinct(rapid.IntRange(0, 4), 1, 3, rapid.ID[int]).Draw(t, "keys")
				d := now.Add(time.Duration(rapid.IntRange(0, 10).Draw(t, "ms")) * time.Millisecond)
				m := &mop{op, keys, d}
				all = append(all, m)
				if done := p.Watch(op, d, keys...); done != op.ready.Load() {
					t.Fatalf("Watch returned %v for ready=%v", done, op.ready.Load())
				}
				if !op.ready.Load() {
					pending = append(pending, m)
				}
			},
			"ready": func(t *rapid.T) {
				if len(pending) == 0 {
					t.Skip("nothing pending")
				}
				pending[rapid.IntRange(0, len(pending)-1).Draw(t, "i")].op.ready.Store(true)
			},
			"check": func(t *rapid.T) {
				k := rapid.IntRange(0, 4).Draw(t, "key")
				want := 0
				var keep []*mop
				for _, m := range pending {
					if m.op.ready.Load() && contains(m.keys, k) {
						want++
						continue
					}
					keep = append(keep, m)
				}
				pending = keep
				if got := p.Check(k); got != want {
					t.Fatalf("Check(%d) = %d, want %d", k, got, want)
				}
			},
			"advance": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "ms")) * time.Millisecond)
				want := 0
				var keep []*mop
				for _, m := range pending {
					if !m.deadline.After(now) {
						want++
						continue
					}
					keep = append(keep, m)
				}
				pending = keep
				if got := p.Expire(now); got != want {
					t.Fatalf("Expire = %d, want %d", got, want)
				}
			},
			"": func(t *rapid.T) {
				if p.Len() != len(pending) {
					t.Fatalf("Len = %d, model %d", p.Len(), len(pending))
				}
				for _, m := range all {
					if c := m.op.calls.Load(); c > 1 {
						t.Fatalf("completed %d times", c)
					}
				}
			},
		})
		p.Close()
		for _, m := range all {
			if m.op.calls.Load() != 1 {
				t.Fatalf("after Close an operation completed %d times", m.op.calls.Load())
			}
		}
	})
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func BenchmarkWatchCheck(b *testing.B) {
	p := New[int](nil)
	op := &testOp{}
	b.ReportAllocs()
	for b.Loop() {
		op.ready.Store(false)
		op.calls.Store(0)
		p.Watch(op, t0.Add(time.Second), 1)
		op.ready.Store(true)
		p.Check(1)
	}
}
