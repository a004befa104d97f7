package log

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Cleaner runs compaction passes in the background over the partitions
// added to it, one partition at a time, as Kafka's log cleaner thread does.
// Partitions whose cleanup.policy does not include compact cost a config
// check per round.
//
// Concurrency: all methods are safe for concurrent use. The cleaner owns
// one goroutine, started by Start and stopped (and waited for) by Close.
type Cleaner struct {
	interval time.Duration
	logger   *slog.Logger

	mu      sync.Mutex
	parts   map[*Partition]struct{}
	started bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// CleanerOptions configures a Cleaner.
type CleanerOptions struct {
	// Interval is the pause between rounds (Kafka's
	// log.cleaner.backoff.ms); 0 means 15 seconds.
	Interval time.Duration
	// Logger receives pass failures; nil discards them.
	Logger *slog.Logger
}

// NewCleaner returns a stopped cleaner.
func NewCleaner(o CleanerOptions) *Cleaner {
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cleaner{interval: o.Interval, logger: o.Logger, parts: map[*Partition]struct{}{}, stop: make(chan struct{})}
}

// Add makes p eligible for compaction.
func (c *Cleaner) Add(p *Partition) {
	c.mu.Lock()
	c.parts[p] = struct{}{}
	c.mu.Unlock()
}

// Remove stops compacting p. A pass already running on p finishes first
// (Compact holds p's clean lock), so call Remove before closing p.
func (c *Cleaner) Remove(p *Partition) {
	c.mu.Lock()
	delete(c.parts, p)
	c.mu.Unlock()
	p.cleanMu.Lock() // wait out a running pass
	p.cleanMu.Unlock()
}

// Start starts the background goroutine. It is a no-op after the first call.
func (c *Cleaner) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.RunOnce()
			}
		}
	}()
}

// RunOnce runs one compaction pass over every partition added, stopping
// early if the cleaner is closed, and returns what each pass did. Passes
// on closed partitions are skipped silently.
func (c *Cleaner) RunOnce() map[*Partition]CompactResult {
	c.mu.Lock()
	parts := make([]*Partition, 0, len(c.parts))
	for p := range c.parts {
		parts = append(parts, p)
	}
	c.mu.Unlock()
	out := make(map[*Partition]CompactResult, len(parts))
	for _, p := range parts {
		select {
		case <-c.stop:
			return out
		default:
		}
		res, err := p.Compact()
		switch {
		case errors.Is(err, ErrClosed):
		case err != nil:
			c.logger.Error("log: compaction pass failed", "dir", p.Dir(), "err", err)
		default:
			out[p] = res
		}
	}
	return out
}

// Close stops the background goroutine and waits for it, including a pass
// in progress. It is safe to call more than once.
func (c *Cleaner) Close() error {
	c.mu.Lock()
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}
