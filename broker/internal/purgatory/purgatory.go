// Package purgatory holds delayed operations: requests that wait for an event
// (records appended, a high watermark advanced) or for their deadline,
// whichever comes first. It is the broker's answer to acks=all produces and
// long-poll fetches, named after Kafka's DelayedOperationPurgatory.
//
// A waiting request costs one heap entry and one map entry per watched key,
// never a goroutine: one timer goroutine (Start) expires operations, and
// events complete them on the goroutine that reports the event (Check).
//
// The core is deterministic. Without Start, nothing happens by itself: tests
// call Check and Expire with an injected time and observe completions.
package purgatory

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// Operation is a request waiting in a purgatory.
//
// TryComplete may be called concurrently from several goroutines (one per
// event) and must not block: it only inspects state, such as a partition's
// high watermark. OnComplete is called exactly once, either because
// TryComplete returned true (expired false) or because the deadline passed or
// the purgatory closed (expired true). OnComplete runs on the goroutine that
// observed the completion, outside every purgatory lock, so it may call back
// into the purgatory.
type Operation interface {
	TryComplete() bool
	OnComplete(expired bool)
}

// entry is an operation while it waits.
type entry[K comparable] struct {
	op       Operation
	deadline time.Time
	keys     []K
	done     atomic.Bool // set by whoever wins the right to call OnComplete
	index    int         // position in the deadline heap, -1 when out of it
	seq      uint64      // insertion order, breaks deadline ties
}

// Purgatory is a set of delayed operations keyed by watch keys of type K
// (for example a topic-partition). It is safe for concurrent use; the one
// mutex guards the watch lists and the deadline heap and is never held while
// an Operation's methods run.
type Purgatory[K comparable] struct {
	now func() time.Time

	mu       sync.Mutex
	watchers map[K]map[*entry[K]]struct{}
	deadline deadlineHeap[K]
	seq      uint64
	closed   bool

	wake chan struct{} // a new earliest deadline: the timer must re-arm
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New returns an empty purgatory. now is the clock used by the timer
// goroutine (time.Now when nil).
func New[K comparable](now func() time.Time) *Purgatory[K] {
	if now == nil {
		now = time.Now
	}
	return &Purgatory[K]{
		now:      now,
		watchers: make(map[K]map[*entry[K]]struct{}),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
}

// Watch tries op once and, if it cannot complete yet, parks it under keys
// until Check on one of them completes it or deadline passes. It returns true
// if op completed before Watch returned (OnComplete has then been called). A
// closed purgatory expires op at once.
func (p *Purgatory[K]) Watch(op Operation, deadline time.Time, keys ...K) bool {
	if op.TryComplete() {
		op.OnComplete(false)
		return true
	}
	e := &entry[K]{op: op, deadline: deadline, keys: keys, index: -1}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		op.OnComplete(true)
		return true
	}
	for _, k := range keys {
		w := p.watchers[k]
		if w == nil {
			w = make(map[*entry[K]]struct{})
			p.watchers[k] = w
		}
		w[e] = struct{}{}
	}
	p.seq++
	e.seq = p.seq
	heap.Push(&p.deadline, e)
	first := e.index == 0
	p.mu.Unlock()
	if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	// An event may have fired between the first try and the parking: try
	// again now that any later event will find the entry.
	if op.TryComplete() && p.finish(e) {
		op.OnComplete(false)
		return true
	}
	return false
}

// finish claims e for completion and removes it from the watch lists and the
// heap. It returns false if another goroutine claimed it first.
func (p *Purgatory[K]) finish(e *entry[K]) bool {
	if !e.done.CompareAndSwap(false, true) {
		return false
	}
	p.mu.Lock()
	p.removeLocked(e)
	p.mu.Unlock()
	return true
}

func (p *Purgatory[K]) removeLocked(e *entry[K]) {
	for _, k := range e.keys {
		if w := p.watchers[k]; w != nil {
			delete(w, e)
			if len(w) == 0 {
				delete(p.watchers, k)
			}
		}
	}
	if e.index >= 0 {
		heap.Remove(&p.deadline, e.index)
	}
}

// Check tries every operation watching key and completes those that can. It
// returns how many completed. Call it after the event the key stands for
// (an append, a high watermark move).
func (p *Purgatory[K]) Check(key K) int {
	p.mu.Lock()
	w := p.watchers[key]
	if len(w) == 0 {
		p.mu.Unlock()
		return 0
	}
	ops := make([]*entry[K], 0, len(w))
	for e := range w {
		ops = append(ops, e)
	}
	p.mu.Unlock()
	n := 0
	for _, e := range ops {
		if e.done.Load() || !e.op.TryComplete() {
			continue
		}
		if p.finish(e) {
			e.op.OnComplete(false)
			n++
		}
	}
	return n
}

// Expire completes, as expired, every operation whose deadline is not after
// now, in deadline order. It returns how many expired.
func (p *Purgatory[K]) Expire(now time.Time) int {
	var due []*entry[K]
	p.mu.Lock()
	for len(p.deadline) > 0 && !p.deadline[0].deadline.After(now) {
		e := p.deadline[0]
		if e.done.CompareAndSwap(false, true) {
			p.removeLocked(e)
			due = append(due, e)
		} else {
			// Claimed by a concurrent completion that has not removed it
			// yet; take it off the heap so the loop advances.
			heap.Remove(&p.deadline, 0)
		}
	}
	p.mu.Unlock()
	for _, e := range due {
		e.op.OnComplete(true)
	}
	return len(due)
}

// ExpireAll completes every waiting operation as expired, whatever its
// deadline, and returns how many there were. The purgatory stays open: a
// server draining for shutdown answers its parked requests with it.
func (p *Purgatory[K]) ExpireAll() int {
	var due []*entry[K]
	p.mu.Lock()
	for len(p.deadline) > 0 {
		e := heap.Pop(&p.deadline).(*entry[K])
		if e.done.CompareAndSwap(false, true) {
			p.removeLocked(e)
			due = append(due, e)
		}
	}
	p.mu.Unlock()
	for _, e := range due {
		e.op.OnComplete(true)
	}
	return len(due)
}

// NextDeadline returns the earliest deadline among waiting operations.
func (p *Purgatory[K]) NextDeadline() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.deadline) == 0 {
		return time.Time{}, false
	}
	return p.deadline[0].deadline, true
}

// Len returns the number of waiting operations.
func (p *Purgatory[K]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.deadline)
}

// Watching returns the number of operations watching key.
func (p *Purgatory[K]) Watching(key K) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watchers[key])
}

// Start launches the one timer goroutine that expires operations at their
// deadlines, measured with the purgatory's clock. Close stops it.
func (p *Purgatory[K]) Start() {
	p.wg.Add(1)
	go p.run()
}

func (p *Purgatory[K]) run() {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.Expire(p.now())
		if next, ok := p.NextDeadline(); ok {
			t.Reset(max(next.Sub(p.now()), time.Millisecond))
		} else {
			t.Reset(time.Hour)
		}
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// Close stops the timer goroutine and completes every waiting operation as
// expired, so no request is left without an answer. Later Watch calls expire
// their operation at once. Close is idempotent.
func (p *Purgatory[K]) Close() {
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		var all []*entry[K]
		p.mu.Lock()
		p.closed = true
		for len(p.deadline) > 0 {
			e := heap.Pop(&p.deadline).(*entry[K])
			if e.done.CompareAndSwap(false, true) {
				all = append(all, e)
			}
		}
		clear(p.watchers)
		p.mu.Unlock()
		for _, e := range all {
			e.op.OnComplete(true)
		}
	})
}

// deadlineHeap orders entries by deadline, then by insertion.
type deadlineHeap[K comparable] []*entry[K]

// Len implements heap.Interface.
func (h deadlineHeap[K]) Len() int { return len(h) }

// Less implements heap.Interface.
func (h deadlineHeap[K]) Less(i, j int) bool {
	if !h[i].deadline.Equal(h[j].deadline) {
		return h[i].deadline.Before(h[j].deadline)
	}
	return h[i].seq < h[j].seq
}

// Swap implements heap.Interface and keeps each entry's index current.
func (h deadlineHeap[K]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

// Push implements heap.Interface.
func (h *deadlineHeap[K]) Push(x any) {
	e := x.(*entry[K])
	e.index = len(*h)
	*h = append(*h, e)
}

// Pop implements heap.Interface.
func (h *deadlineHeap[K]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
