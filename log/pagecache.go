package log

import (
	"os"

	"github.com/weir-broker/weir/log/vfs"
)

// cacheWindow keeps the newest PageCacheWindow bytes a partition wrote in
// the page cache and lets go of older ones: every step of appended bytes has
// its writeback started, and once more than the window's worth of started
// bytes is still cached, the oldest are dropped. Those pages go back to the
// kernel's free lists while still warm, where the next writes take them,
// instead of the page cache growing until memory runs short. On virtual
// machines whose freed memory is handed back to the hypervisor, writing into
// fresh pages costs several times the copy itself (docs/benchmarks.md).
//
// Consumers reading within the window of the newest data are served from
// the cache; older reads go to the device, as they would after eviction.
// Nothing here affects durability: writeback is what the kernel would do
// later anyway and only clean pages are dropped.
//
// All of it is the partition writer's state, under Partition.mu.
type cacheWindow struct {
	limit   int64        // bytes kept cached; 0: leave the cache to the kernel
	step    int64        // bytes appended between writeback starts
	seg     *segment     // the segment being written
	started int64        // bytes of seg from 0 whose writeback was started
	ranges  []cacheRange // writeback started, not yet dropped; oldest first
	cached  int64        // bytes in ranges
	redrop  []cacheRange // dropped lately, dropped again by the next steps
}

// cacheRange is a part of a segment's log file whose writeback was started.
type cacheRange struct {
	seg      *segment
	from, to int64
	tries    int // drops so far (redrop)
}

// redropTries is how often a range is dropped in all. A drop leaves the
// pages still under writeback (the device may lag the writes by more than
// the window), so each range is dropped again by the next steps; measured
// with fincore after 3 s of 1 KiB produce at 1 GB/s, a single drop left
// 14-28 MiB per partition cached beyond a 32 MiB window.
const redropTries = 3

// Smallest and largest writeback steps: at least a few pages per system
// call, and steps small enough that the window moves smoothly.
const (
	minCacheStep = 256 << 10
	maxCacheStep = 4 << 20
)

var pageSize = int64(os.Getpagesize())

// newCacheWindow returns the window for limit bytes (0: off).
func newCacheWindow(limit int64) cacheWindow {
	if limit <= 0 {
		return cacheWindow{}
	}
	return cacheWindow{limit: limit, step: min(max(limit/4, minCacheStep), maxCacheStep)}
}

// wrote records that s (the active segment) now ends at end.
func (w *cacheWindow) wrote(s *segment, end int64) {
	if w.limit == 0 {
		return
	}
	if s != w.seg {
		if w.seg != nil {
			// The previous segment was sealed (or replaced): the rest of it
			// is written, so its writeback can start.
			w.start(w.seg.size.Load())
		}
		w.seg, w.started = s, 0
		w.trim()
	}
	if end < w.started {
		w.started = end &^ (pageSize - 1) // truncated below what was started
	}
	if end-w.started < w.step {
		return
	}
	w.start(end &^ (pageSize - 1)) // the partial last page is still being written
	w.trim()
}

// start starts the writeback of w.seg from w.started to end and remembers
// the range as cached.
func (w *cacheWindow) start(end int64) {
	s, from := w.seg, w.started
	if end <= from {
		return
	}
	w.started = end
	if a, ok := s.log.(vfs.CacheAdviser); ok && s.acquire() {
		_ = a.StartWriteback(from, end-from) // advice: a failure costs only the cache
		s.release()
	}
	w.ranges = append(w.ranges, cacheRange{seg: s, from: from, to: end})
	w.cached += end - from
}

// trim drops the oldest started ranges until at most limit bytes are
// cached, after dropping again the ranges dropped by the last steps.
func (w *cacheWindow) trim() {
	if w.cached <= w.limit {
		return
	}
	kept := w.redrop[:0]
	for _, r := range w.redrop {
		drop(r.seg, r.from, r.to-r.from)
		if r.tries++; r.tries < redropTries {
			kept = append(kept, r)
		}
	}
	clear(w.redrop[len(kept):])
	w.redrop = kept
	for w.cached > w.limit && len(w.ranges) > 0 {
		r := &w.ranges[0]
		n := min(w.cached-w.limit, r.to-r.from)
		if n < r.to-r.from {
			n &^= pageSize - 1 // keep dropping whole pages
			if n == 0 {
				return
			}
		}
		drop(r.seg, r.from, n)
		w.redrop = append(w.redrop, cacheRange{seg: r.seg, from: r.from, to: r.from + n, tries: 1})
		r.from += n
		w.cached -= n
		if r.from == r.to {
			w.ranges[0] = cacheRange{}
			w.ranges = w.ranges[1:]
		}
	}
}

// drop drops the cached pages of [from, from+n) of s's log file.
func drop(s *segment, from, n int64) {
	if a, ok := s.log.(vfs.CacheAdviser); ok && s.acquire() {
		_ = a.DropCache(from, n) // advice: a failure costs only the cache
		s.release()
	}
}

// behindWindow reports whether the bytes of segment i of l from end on,
// with every later segment, are more than the cache window: a read ending at
// end then reads data the window has let go of, which Read reads with
// direct I/O (readMem, Region.Data) rather than through the page cache.
func (p *Partition) behindWindow(l *segList, i int, end int64) bool {
	w := p.cache.limit
	if w == 0 {
		return false
	}
	after := l.segs[i].size.Load() - end
	for _, s := range l.segs[i+1:] {
		if after > w {
			break
		}
		after += s.size.Load()
	}
	return after > w
}
