package group

// The coordinator's clock: a heap of group deadlines and the one goroutine
// that runs Tick when they pass, plus the periodic offset expiry.

import (
	"container/heap"
	"time"
)

// schedule sets e's next timer.
func (c *Coordinator) schedule(e *entry, next time.Time) {
	c.timerMu.Lock()
	if next.Equal(e.next) {
		c.timerMu.Unlock()
		return
	}
	e.next = next
	first := false
	if !next.IsZero() {
		heap.Push(&c.timers, timer{at: next, e: e})
		first = c.timers[0].e == e && c.timers[0].at.Equal(next)
	}
	c.timerMu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Tick runs the timeouts due at now on every group whose deadline has
// passed. The timer goroutine calls it; tests may call it directly.
func (c *Coordinator) Tick(now time.Time) {
	var due []*entry
	c.timerMu.Lock()
	for len(c.timers) > 0 && !c.timers[0].at.After(now) {
		t := heap.Pop(&c.timers).(timer)
		if t.e.next.Equal(t.at) {
			t.e.next = time.Time{}
			due = append(due, t.e)
		}
	}
	c.timerMu.Unlock()
	for _, e := range due {
		c.step(e, func(now time.Time) Effects { return e.g.Tick(now) })
	}
}

func (c *Coordinator) nextTimer() (time.Time, bool) {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

func (c *Coordinator) run() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	lastExpiry := c.cfg.Now()
	for {
		now := c.cfg.Now()
		c.Tick(now)
		if now.Sub(lastExpiry) >= c.cfg.RetentionCheckInterval {
			lastExpiry = now
			if n := c.ExpireOffsets(); n > 0 {
				c.cfg.Logger.Info("offsets expired", "count", n)
			}
		}
		wait := c.cfg.RetentionCheckInterval - c.cfg.Now().Sub(lastExpiry)
		if next, ok := c.nextTimer(); ok {
			wait = min(wait, next.Sub(c.cfg.Now()))
		}
		t.Reset(max(wait, time.Millisecond))
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

type timer struct {
	at time.Time
	e  *entry
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }

func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *timerHeap) Push(x any) { *h = append(*h, x.(timer)) }

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
