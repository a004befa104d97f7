package main

import (
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestHistIndexBounds(t *testing.T) {
	tests := []struct {
		name string
		v    uint64
	}{
		{"zero", 0},
		{"linear top", 127},
		{"first log bucket", 128},
		{"odd", 1000003},
		{"second", uint64(time.Second)},
		{"max", math.MaxUint64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := histIndex(tc.v)
			if i < 0 || i >= histBuckets {
				t.Fatalf("histIndex(%d) = %d, outside [0,%d)", tc.v, i, histBuckets)
			}
			if up := histUpper(i); up < tc.v || float64(up-tc.v) > float64(tc.v)/64 {
				t.Fatalf("histUpper(histIndex(%d)) = %d: not within 1/64 above", tc.v, up)
			}
			if i > 0 && histUpper(i-1) >= tc.v {
				t.Fatalf("bucket %d below also holds %d", i-1, tc.v)
			}
		})
	}
}

// TestHistQuantileMatchesSort checks the histogram against the naive
// reference: sort the samples and index the ceil(q*n)-th.
func TestHistQuantileMatchesSort(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		samples := rapid.SliceOfN(rapid.Int64Range(0, int64(10*time.Second)), 1, 500).Draw(t, "samples")
		q := rapid.Float64Range(0.001, 1).Draw(t, "q")
		var h latencyHist
		for _, s := range samples {
			h.record(time.Duration(s))
		}
		sorted := slices.Clone(samples)
		slices.Sort(sorted)
		rank := int(math.Ceil(q * float64(len(sorted))))
		want := sorted[min(max(rank, 1), len(sorted))-1]
		got := int64(h.quantile(q))
		if got < want || float64(got-want) > float64(want)/64 {
			t.Fatalf("quantile(%v) = %d, exact %d: outside [exact, exact*(1+1/64)]", q, got, want)
		}
		if h.count() != uint64(len(samples)) {
			t.Fatalf("count %d, want %d", h.count(), len(samples))
		}
	})
}

func TestHistMerge(t *testing.T) {
	var a, b, all latencyHist
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.record(d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	for _, q := range []float64{0.5, 0.99, 0.999, 1} {
		if a.quantile(q) != all.quantile(q) {
			t.Errorf("merged quantile(%v) = %v, want %v", q, a.quantile(q), all.quantile(q))
		}
	}
	if a.mean() != all.mean() {
		t.Errorf("merged mean %v, want %v", a.mean(), all.mean())
	}
}

func BenchmarkHistRecord(b *testing.B) {
	var h latencyHist
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		d += 997
		h.record(d)
	}
}
