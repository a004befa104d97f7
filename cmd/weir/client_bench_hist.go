package main

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits sets the histogram's precision: 2^(histSubBits-1) buckets per
// power of two, so a recorded value is reported at most 1/64 (1.6%) above
// its true value.
const histSubBits = 7

// histBuckets covers every uint64.
const histBuckets = (64-histSubBits+1)*(1<<(histSubBits-1)) + (1 << (histSubBits - 1))

// latencyHist is a log-linear histogram of durations (HDR-style): constant
// memory, bounded relative error, mergeable. Not safe for concurrent use.
type latencyHist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	max    uint64
}

// histIndex maps v to its bucket.
func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits
	return shift<<(histSubBits-1) + int(v>>shift)
}

// histUpper is the largest value in bucket i.
func histUpper(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	shift := i>>(histSubBits-1) - 1
	m := uint64(i - shift<<(histSubBits-1))
	return (m+1)<<shift - 1
}

// record adds one duration; negative durations count as zero.
func (h *latencyHist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
	h.max = max(h.max, v)
}

// merge adds o's samples to h.
func (h *latencyHist) merge(o *latencyHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// count is the number of samples.
func (h *latencyHist) count() uint64 { return h.n }

// quantile returns the q-quantile (0 < q <= 1): the smallest bucket bound
// at or above the ceil(q*n)-th smallest sample, capped at the maximum.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// mean is the average sample.
func (h *latencyHist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
