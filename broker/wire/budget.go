package wire

import (
	"context"
	"sync"
)

// Budget bounds the bytes of requests in flight. Acquire blocks until the
// bytes are available; Release returns them. A request larger than the whole
// budget takes all of it, so it waits for every other request to finish but
// never deadlocks.
//
// A Budget is safe for concurrent use.
type Budget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	changed chan struct{} // closed and replaced by a Release when waited is set
	waited  bool          // an Acquire is waiting on changed
}

// NewBudget returns a budget of limit bytes; limit <= 0 means unbounded.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, changed: make(chan struct{})}
}

// clamp returns n limited to the budget's size.
func (b *Budget) clamp(n int64) int64 {
	if b.limit > 0 && n > b.limit {
		return b.limit
	}
	return n
}

// Acquire takes n bytes (clamped to the budget's size), waiting while they
// are in use. It returns the number of bytes taken, to be given back to
// Release, or ctx's error.
func (b *Budget) Acquire(ctx context.Context, n int64) (int64, error) {
	if b == nil || b.limit <= 0 {
		return 0, nil
	}
	n = b.clamp(n)
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		ch := b.changed
		b.waited = true
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Release gives back n bytes returned by Acquire.
func (b *Budget) Release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		panic("wire: budget released more than acquired")
	}
	if b.waited {
		// Wake the waiters; a Release with nobody waiting allocates
		// nothing (it runs three times per request).
		close(b.changed)
		b.changed = make(chan struct{})
		b.waited = false
	}
	b.mu.Unlock()
}

// Used returns the bytes currently taken.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
