package wire

import (
	"math/bits"
	"sync"
)

// Frame buffers of large requests are recycled when the handler keeps
// nothing of them (ConnConfig.ReleaseFrame says so; the broker does for
// Produce, whose records are in the segment files when its handler
// returns), so a later large request reuses the buffer. Without this every
// produce request allocated, and the runtime zeroed, a buffer of its size
// (mallocgc and memclr were about 7% of the broker's CPU while producing
// 1 KiB records, docs/benchmarks.md).
const (
	// minPooledFrame is the smallest frame taken from the pool; smaller
	// ones are cheap to allocate.
	minPooledFrame = 64 << 10
	// poolClasses is the number of power-of-two size classes, from
	// minPooledFrame up to 128 MiB, above the 100 MiB frame limit.
	poolClasses = 12
)

// framePool holds recycled frame buffers in power-of-two size classes.
// sync.Pool drops idle buffers at garbage collection, so the pool never
// holds memory that is not being reused.
type framePool struct {
	classes [poolClasses]sync.Pool
}

// frames is the process-wide pool shared by all connections.
var frames framePool

// poolClass returns the size class of an n-byte frame and whether frames of
// that size are pooled at all.
func poolClass(n int) (int, bool) {
	if n < minPooledFrame {
		return 0, false
	}
	c := bits.Len(uint((n - 1) / minPooledFrame))
	return c, c < poolClasses
}

// get returns a buffer of length n, recycled when one of its class is
// available. Its contents are not zeroed: the caller overwrites all n bytes.
func (p *framePool) get(n int) []byte {
	c, ok := poolClass(n)
	if !ok {
		return make([]byte, n)
	}
	if b, _ := p.classes[c].Get().(*[]byte); b != nil {
		return (*b)[:n]
	}
	return make([]byte, n, minPooledFrame<<c)
}

// put gives back a buffer returned by get. Nothing may use it afterwards.
func (p *framePool) put(b []byte) {
	c, ok := poolClass(cap(b))
	if !ok || cap(b) != minPooledFrame<<c {
		return // not one of ours (allocated below the minimum or exactly sized)
	}
	bp := new([]byte) // allocated only here, not for every put
	*bp = b[:0]
	p.classes[c].Put(bp)
}
