package consumer

import (
	"testing"
	"time"
)

// FuzzTracker drives the tracker with ops decoded from bytes (even byte:
// fetch the next offset after a gap of b/2 % 4; odd byte: mark the
// (b/2)-th fetched record done) and checks it against the naive model.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 3, 5})
	f.Add([]byte{2, 4, 6, 5, 3, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tr := newTracker(10)
		var fetched []int64
		done := map[int64]bool{}
		next := int64(10)
		for _, op := range ops {
			if op%2 == 0 || len(fetched) == 0 {
				next += int64(op/2) % 4
				tr.fetched(next, time.Time{}, next+1)
				fetched = append(fetched, next)
				next++
			} else {
				o := fetched[int(op/2)%len(fetched)]
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
				t.Fatalf("committable = %d, want %d", got, want)
			}
			if records, _ := tr.lag(time.Time{}); records != next-want {
				t.Fatalf("lag = %d, want %d", records, next-want)
			}
		}
	})
}
