package fetchsession

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func part(topic string, p int32, offset int64) Part {
	return Part{Key: Key{topic, p}, Want: Want{FetchOffset: offset, LogStartOffset: -1, MaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}
}

func found(hw int64) Found { return Found{HighWatermark: hw, LastStableOffset: hw} }

// open runs a full fetch of parts that finds a high watermark of 10
// everywhere and returns the new session's id.
func open(t *testing.T, c *Cache, parts []Part, now time.Time) int32 {
	t.Helper()
	return reopen(t, c, 0, parts, now)
}

// reopen is open with SessionID id, which the full fetch closes.
func reopen(t *testing.T, c *Cache, id int32, parts []Part, now time.Time) int32 {
	t.Helper()
	x, err := c.Begin(id, InitialEpoch, parts, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	fs := make([]Found, len(parts))
	for i := range fs {
		fs[i] = found(10)
	}
	id, include := x.Finish(fs, now)
	for i, in := range include {
		if !in {
			t.Fatalf("full fetch left out partition %d", i)
		}
	}
	return id
}

func keys(parts []Part) []string {
	var out []string
	for _, p := range parts {
		out = append(out, fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.FetchOffset))
	}
	return out
}

func TestEpochs(t *testing.T) {
	c := NewCache(10, DefaultMaxPartitions, DefaultEvictAfter)
	parts := []Part{part("a", 0, 5), part("a", 1, 7)}

	x, err := c.Begin(0, FinalEpoch, parts, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := x.Finish([]Found{found(1), found(1)}, t0); id != 0 || c.Len() != 0 {
		t.Fatalf("sessionless fetch: id %d, %d sessions", id, c.Len())
	}

	id := open(t, c, parts, t0)
	if id <= 0 || c.Len() != 1 {
		t.Fatalf("full fetch opened id %d, %d sessions", id, c.Len())
	}
	if _, err := c.Begin(id, 2, nil, nil, t0); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("epoch 2 first: %v, want ErrInvalidEpoch", err)
	}
	if _, err := c.Begin(id+1, 1, nil, nil, t0); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("unknown id: %v, want ErrSessionNotFound", err)
	}
	if _, err := c.Begin(id, -2, nil, nil, t0); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("epoch -2: %v, want ErrInvalidEpoch", err)
	}
	x, err = c.Begin(id, 1, nil, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(x.Parts()); fmt.Sprint(got) != "[a/0@5 a/1@7]" {
		t.Fatalf("incremental parts %v", got)
	}
	if _, err := c.Begin(id, 1, nil, nil, t0); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("epoch 1 twice: %v, want ErrInvalidEpoch", err)
	}
	if _, err := c.Begin(id, 2, nil, nil, t0); err != nil {
		t.Fatalf("epoch 2: %v", err)
	}
	// A new full fetch on the same id closes it and opens another.
	id2 := reopen(t, c, id, parts, t0)
	if _, err := c.Begin(id, 3, nil, nil, t0); !errors.Is(err, ErrSessionNotFound) || c.Len() != 1 {
		t.Fatalf("old session after a new full fetch: %v, %d sessions", err, c.Len())
	}
	// The final epoch closes it.
	if _, err := c.Begin(id2, FinalEpoch, nil, nil, t0); err != nil || c.Len() != 0 {
		t.Fatalf("final epoch: %v, %d sessions", err, c.Len())
	}
}

func TestNextEpochWraps(t *testing.T) {
	if got := nextEpoch(1<<31 - 1); got != 1 {
		t.Fatalf("after the largest epoch: %d, want 1", got)
	}
	if got := nextEpoch(7); got != 8 {
		t.Fatalf("after 7: %d", got)
	}
}

func TestIncrementalPartitions(t *testing.T) {
	c := NewCache(10, DefaultMaxPartitions, DefaultEvictAfter)
	id := open(t, c, []Part{part("a", 0, 5), part("a", 1, 7), part("b", 0, 0)}, t0)
	// The request moves a/1, adds c/3 and forgets b/0.
	x, err := c.Begin(id, 1, []Part{part("a", 1, 9), part("c", 3, 2)}, []Key{{"b", 0}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(keys(x.Parts())); got != "[a/0@5 a/1@9 c/3@2]" {
		t.Fatalf("parts %s", got)
	}
	// Nothing changed but the new partition, which the client was never
	// told about.
	_, include := x.Finish([]Found{found(10), found(10), found(4)}, t0)
	if fmt.Sprint(include) != "[false false true]" {
		t.Fatalf("include %v", include)
	}
	// Forgetting what the session does not hold is no error.
	if _, err := c.Begin(id, 2, nil, []Key{{"zz", 9}}, t0); err != nil {
		t.Fatal(err)
	}
}

func TestIncludeRules(t *testing.T) {
	tests := []struct {
		name string
		f    Found
		want bool
	}{
		{"unchanged", found(10), false},
		{"records", Found{HighWatermark: 10, LastStableOffset: 10, Records: true}, true},
		{"high watermark", found(11), true},
		{"last stable offset", Found{HighWatermark: 10, LastStableOffset: 9}, true},
		{"log start offset", Found{HighWatermark: 10, LastStableOffset: 10, LogStartOffset: 3}, true},
		{"error", Found{HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, Failed: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCache(10, DefaultMaxPartitions, DefaultEvictAfter)
			id := open(t, c, []Part{part("a", 0, 0)}, t0)
			x, _ := c.Begin(id, 1, nil, nil, t0)
			if _, include := x.Finish([]Found{tt.f}, t0); include[0] != tt.want {
				t.Fatalf("included %v, want %v", include[0], tt.want)
			}
			// Told once; the same state again is news only after an error.
			x, _ = c.Begin(id, 2, nil, nil, t0)
			if _, include := x.Finish([]Found{tt.f}, t0); include[0] != (tt.f.Failed || tt.f.Records) {
				t.Fatalf("second time included %v", include[0])
			}
			x, _ = c.Begin(id, 3, nil, nil, t0)
			if _, include := x.Finish([]Found{found(10)}, t0); include[0] != (tt.want && tt.name != "records") {
				t.Fatalf("back to the start included %v", include[0])
			}
		})
	}
}

func TestServedPartitionsGoLast(t *testing.T) {
	c := NewCache(10, DefaultMaxPartitions, DefaultEvictAfter)
	id := open(t, c, []Part{part("a", 0, 0), part("a", 1, 0), part("a", 2, 0)}, t0)
	x, _ := c.Begin(id, 1, nil, nil, t0)
	x.Finish([]Found{{HighWatermark: 10, LastStableOffset: 10, Records: true}, found(10), found(10)}, t0)
	x, _ = c.Begin(id, 2, nil, nil, t0)
	if got := fmt.Sprint(keys(x.Parts())); got != "[a/1@0 a/2@0 a/0@0]" {
		t.Fatalf("order after a/0 was served: %s", got)
	}
}

func TestFullCache(t *testing.T) {
	c := NewCache(1, DefaultMaxPartitions, time.Minute)
	first := open(t, c, []Part{part("a", 0, 0)}, t0)
	if id := open(t, c, []Part{part("b", 0, 0)}, t0.Add(59*time.Second)); id != 0 {
		t.Fatalf("full cache opened %d before the first session was idle a minute", id)
	}
	if _, err := c.Begin(first, 1, nil, nil, t0.Add(30*time.Second)); err != nil {
		t.Fatalf("first session: %v", err)
	}
	// Used at +30s, so still not evictable at +89s, evictable at +90s.
	if id := open(t, c, []Part{part("b", 0, 0)}, t0.Add(89*time.Second)); id != 0 {
		t.Fatalf("evicted a session idle 59s: %d", id)
	}
	second := open(t, c, []Part{part("b", 0, 0)}, t0.Add(90*time.Second))
	if second == 0 || c.Len() != 1 {
		t.Fatalf("no session after the first was idle a minute: %d, %d sessions", second, c.Len())
	}
	if _, err := c.Begin(first, 2, nil, nil, t0.Add(91*time.Second)); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("evicted session: %v", err)
	}
	if id := open(t, NewCache(0, DefaultMaxPartitions, time.Minute), []Part{part("a", 0, 0)}, t0); id != 0 {
		t.Fatalf("a cache of 0 slots opened %d", id)
	}
}

func TestEvictedWhileWaiting(t *testing.T) {
	c := NewCache(1, DefaultMaxPartitions, time.Second)
	id := open(t, c, []Part{part("a", 0, 0)}, t0)
	x, _ := c.Begin(id, 1, nil, nil, t0)
	open(t, c, []Part{part("b", 0, 0)}, t0.Add(time.Hour)) // evicts id
	got, include := x.Finish([]Found{found(10)}, t0.Add(time.Hour))
	if got != id || !include[0] {
		t.Fatalf("answer of an evicted session: id %d, include %v", got, include)
	}
}

// TestClientSeesWhatIsFound checks, for random histories, that a client
// applying only the partitions it is sent ends up knowing every
// partition's latest offsets, and that a partition is left out only when
// the client already knows what it would say.
func TestClientSeesWhatIsFound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := NewCache(4, DefaultMaxPartitions, time.Minute)
		n := rapid.IntRange(1, 6).Draw(t, "partitions")
		var parts []Part
		for i := range n {
			parts = append(parts, part("t", int32(i), 0))
		}
		x, err := c.Begin(0, InitialEpoch, parts, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		client := make(map[Key]Found)
		drawFound := func(label string) []Found {
			fs := make([]Found, n)
			for i := range fs {
				hw := rapid.Int64Range(0, 3).Draw(t, label+"hw")
				fs[i] = Found{
					HighWatermark: hw, LastStableOffset: hw - rapid.Int64Range(0, 1).Draw(t, label+"lag"),
					Records: rapid.Bool().Draw(t, label+"records"),
					Failed:  rapid.IntRange(0, 9).Draw(t, label+"failed") == 0,
				}
			}
			return fs
		}
		fs := drawFound("full")
		id, _ := x.Finish(fs, t0)
		for i, p := range parts {
			client[p.Key] = fs[i]
		}
		for epoch := int32(1); epoch <= 20; epoch++ {
			x, err := c.Begin(id, epoch, nil, nil, t0)
			if err != nil {
				t.Fatalf("epoch %d: %v", epoch, err)
			}
			fs := drawFound(fmt.Sprint(epoch))
			_, include := x.Finish(fs, t0)
			for i, p := range x.Parts() {
				f := fs[i]
				known := client[p.Key]
				news := f.Records || f.Failed || known.Failed ||
					known.HighWatermark != f.HighWatermark || known.LastStableOffset != f.LastStableOffset || known.LogStartOffset != f.LogStartOffset
				if news && !include[i] {
					t.Fatalf("epoch %d: %v left out: client knows %+v, found %+v", epoch, p.Key, known, f)
				}
				if !news && include[i] {
					t.Fatalf("epoch %d: %v sent without news: %+v", epoch, p.Key, f)
				}
				if include[i] {
					client[p.Key] = f
				}
			}
		}
	})
}

func TestPartitionBound(t *testing.T) {
	c := NewCache(10, 3, time.Minute)
	a := open(t, c, []Part{part("a", 0, 0), part("a", 1, 0)}, t0)
	if id := open(t, c, []Part{part("b", 0, 0), part("b", 1, 0)}, t0); id != 0 {
		t.Fatalf("opened %d past the partition bound", id)
	}
	b := open(t, c, []Part{part("b", 0, 0)}, t0)
	if a == 0 || b == 0 {
		t.Fatalf("sessions within the bound: %d, %d", a, b)
	}
	// Forgetting one makes room for another; adding a second one past the
	// bound closes the session.
	if _, err := c.Begin(a, 1, []Part{part("a", 2, 0)}, []Key{{"a", 0}}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Begin(a, 2, []Part{part("a", 3, 0)}, nil, t0); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("growing past the bound: %v", err)
	}
	if c.Len() != 1 || c.parts != 1 {
		t.Fatalf("%d sessions holding %d partitions, want 1 and 1", c.Len(), c.parts)
	}
	x, _ := c.Begin(b, FinalEpoch, nil, nil, t0)
	x.Finish(nil, t0)
	if c.Len() != 0 || c.parts != 0 {
		t.Fatalf("%d sessions holding %d partitions after closing all", c.Len(), c.parts)
	}
}

// BenchmarkIncremental is one incremental fetch of a 600-partition session
// in which two partitions moved and one returned records.
func BenchmarkIncremental(b *testing.B) {
	c := NewCache(10, DefaultMaxPartitions, DefaultEvictAfter)
	const n = 600
	parts := make([]Part, n)
	fs := make([]Found, n)
	for i := range parts {
		parts[i] = part("t", int32(i), 0)
		fs[i] = found(10)
	}
	x, _ := c.Begin(0, InitialEpoch, parts, nil, t0)
	id, _ := x.Finish(fs, t0)
	moved := []Part{part("t", 7, 10), part("t", 300, 10)}
	b.ReportAllocs()
	epoch := int32(1)
	for b.Loop() {
		x, err := c.Begin(id, epoch, moved, nil, t0)
		if err != nil {
			b.Fatal(err)
		}
		fs[42].Records = true
		fs[42].HighWatermark++
		x.Finish(fs, t0)
		epoch = nextEpoch(epoch)
	}
}
