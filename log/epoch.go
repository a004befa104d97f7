package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/weir-broker/weir/log/vfs"
)

// epochEntry is one leader epoch and the first offset written in it.
type epochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache maps leader epochs to their start offsets (KIP-101), persisted
// as leader-epoch-checkpoint. Safe for concurrent use.
type epochCache struct {
	mu      sync.Mutex
	entries []epochEntry // increasing in both fields
}

// latest returns the newest epoch, or -1.
func (c *epochCache) latest() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].Epoch
}

// assign records that epoch starts at off if it is newer than the latest
// epoch, and persists the cache. Called by the writer.
func (c *epochCache) assign(epoch int32, off int64, p *Partition) {
	c.mu.Lock()
	if n := len(c.entries); epoch < 0 || n > 0 && (c.entries[n-1].Epoch >= epoch || c.entries[n-1].StartOffset > off) {
		c.mu.Unlock()
		return
	}
	c.entries = append(c.entries, epochEntry{epoch, off})
	data := c.encodeLocked()
	c.mu.Unlock()
	if p != nil {
		if err := writeFileAtomic(p.fs, p.dir, leaderEpochCheckpoint, data); err != nil {
			p.logger.Warn("log: leader epoch checkpoint not written", "err", err)
		}
	}
}

// truncateFrom drops epochs that start at or after end (Truncate, recovery).
func (c *epochCache) truncateFrom(end int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset >= end })
	changed := i < len(c.entries)
	c.entries = c.entries[:i]
	return changed
}

// truncateBefore moves the first epoch's start up to start (log start
// offset advances), dropping epochs wholly below it.
func (c *epochCache) truncateBefore(start int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset > start })
	if i == 0 {
		return false
	}
	kept := c.entries[i-1:]
	if kept[0].StartOffset == start && i == 1 {
		return false
	}
	kept[0].StartOffset = start
	c.entries = append([]epochEntry(nil), kept...)
	return true
}

func (c *epochCache) encodeLocked() []byte {
	e := make([][2]int64, len(c.entries))
	for i, x := range c.entries {
		e[i] = [2]int64{int64(x.Epoch), x.StartOffset}
	}
	return encodeCheckpoint(e, false)
}

func (c *epochCache) save(p *Partition) error {
	c.mu.Lock()
	data := c.encodeLocked()
	c.mu.Unlock()
	return writeFileAtomic(p.fs, p.dir, leaderEpochCheckpoint, data)
}

// loadEpochCache reads leader-epoch-checkpoint; a missing file is an empty
// cache, a damaged one an error (the caller starts empty and reports it).
func loadEpochCache(fs vfs.FS, dir string) (*epochCache, error) {
	data, err := readFile(fs, filepath.Join(dir, leaderEpochCheckpoint))
	if errors.Is(err, vfs.ErrNotExist) {
		return &epochCache{}, nil
	}
	if err != nil {
		return &epochCache{}, fmt.Errorf("log: read %s: %w", leaderEpochCheckpoint, err)
	}
	e, err := decodeCheckpoint(data, 2)
	if err != nil {
		return &epochCache{}, fmt.Errorf("log: %s: %w", leaderEpochCheckpoint, err)
	}
	c := &epochCache{}
	for i, x := range e {
		if x[0] > 1<<31-1 || i > 0 && (int32(x[0]) <= c.entries[i-1].Epoch || x[1] < c.entries[i-1].StartOffset) {
			return &epochCache{}, fmt.Errorf("log: %s: %w: entries out of order", leaderEpochCheckpoint, errBadCheckpoint)
		}
		c.entries = append(c.entries, epochEntry{int32(x[0]), x[1]})
	}
	return c, nil
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101): for the newest
// epoch <= epoch it returns that epoch and the start offset of the next
// epoch (or the log end offset if it is the latest). If epoch is older than
// every epoch it returns (-1, -1) (UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET).
func (p *Partition) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	c := p.epochs
	c.mu.Lock()
	defer c.mu.Unlock()
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].Epoch > epoch })
	if i == 0 {
		return -1, -1
	}
	if i == len(c.entries) {
		return c.entries[i-1].Epoch, p.endOffset.Load()
	}
	return c.entries[i-1].Epoch, c.entries[i].StartOffset
}

// LatestEpoch returns the newest leader epoch in the log, or -1.
func (p *Partition) LatestEpoch() int32 { return p.epochs.latest() }
