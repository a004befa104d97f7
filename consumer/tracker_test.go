package consumer

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestTrackerCommittableModel checks the tracker against a naive model: the
// committable offset is the smallest fetched offset not done, else one past
// the largest fetched.
func TestTrackerCommittableModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		start := rapid.Int64Range(0, 1000).Draw(t, "start")
		tr := newTracker(start)
		var fetched []int64
		done := map[int64]bool{}
		next := start
		steps := rapid.IntRange(1, 100).Draw(t, "steps")
		for range steps {
			if len(fetched) == 0 || rapid.Bool().Draw(t, "fetch") {
				next += rapid.Int64Range(0, 3).Draw(t, "gap") // compacted topics have gaps
				tr.fetched(next, time.Time{}, next+1)
				fetched = append(fetched, next)
				next++
			} else {
				o := rapid.SampledFrom(fetched).Draw(t, "done")
				tr.done(o)
				done[o] = true
			}
			want := next
			for _, o := range fetched {
				if !done[o] {
					want = o
					break
				}
			}
			if got := tr.committable(); got != want {
				t.Fatalf("committable = %d, want %d (fetched %v done %v)", got, want, fetched, done)
			}
		}
	})
}

func TestTrackerLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name    string
		fetch   []int64
		done    []int64
		hwm     int64
		records int64
		age     time.Duration
	}{
		{"nothing fetched", nil, nil, -1, 0, 0},
		{"one pending", []int64{5}, nil, 10, 5, 3 * time.Second},
		{"all done", []int64{5, 6}, []int64{5, 6}, 10, 3, 0},
		{"head done", []int64{5, 6}, []int64{5}, 7, 1, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(5)
			for _, o := range tc.fetch {
				tr.fetched(o, t0, tc.hwm)
			}
			for _, o := range tc.done {
				tr.done(o)
			}
			records, age := tr.lag(t0.Add(3 * time.Second))
			if records != tc.records || age != tc.age {
				t.Fatalf("lag = %d, %v; want %d, %v", records, age, tc.records, tc.age)
			}
		})
	}
}

// TestBackoffDelayBounds checks Delay never exceeds Max, never drops below
// (1-Jitter) of the undithered delay, and grows with the attempt number.
func TestBackoffDelayBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := Backoff{
			Initial:    time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(t, "initial")),
			Max:        time.Duration(rapid.Int64Range(1, int64(time.Minute)).Draw(t, "max")),
			Multiplier: rapid.Float64Range(1, 4).Draw(t, "mult"),
			Jitter:     rapid.Float64Range(0, 1).Draw(t, "jitter"),
		}
		n := rapid.IntRange(1, 80).Draw(t, "n")
		r := rapid.Float64Range(0, 0.999).Draw(t, "r")
		d := b.Delay(n, r)
		full := b.Delay(n, 0)
		if full > b.Max || d > full || float64(d) < float64(full)*(1-b.Jitter)-1 {
			t.Fatalf("Delay(%d, %v) = %v, full %v, backoff %+v", n, r, d, full, b)
		}
		if next := b.Delay(n+1, 0); next < full {
			t.Fatalf("Delay shrank: %v then %v", full, next)
		}
	})
}
