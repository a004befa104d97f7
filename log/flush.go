package log

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// maxGatherRounds bounds how many times a group-commit leader yields to let
// more writers join its fsync.
const maxGatherRounds = 8

// groupSync implements group commit: appenders that need durability wait for
// an offset; the first waiter to find no fsync running starts one covering
// everything written so far, and every waiter it covers returns together.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	durable int64  // offsets below are durable
	gen     uint64 // bumped by reset, so a sync racing a truncation is discarded
	running bool
	closed  bool
	failed  error // sticky: after a failed fsync the page cache cannot be trusted
	syncs   int64 // fsyncs run by syncTo, for benchmarks and tests
	// FsyncAlways appends that passed validation (entered) and that reached
	// syncTo or gave up (arrived). A new leader waits for the appends that
	// entered before it was elected, so one fsync covers every writer that
	// was already on its way instead of alternating big and small groups.
	entered, arrived int64
}

// enter counts an FsyncAlways append on its way to syncTo.
func (g *groupSync) enter() {
	g.mu.Lock()
	g.entered++
	g.mu.Unlock()
}

// arrive counts an append that entered and will not call syncTo.
func (g *groupSync) arrive() {
	g.mu.Lock()
	g.arrived++
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *groupSync) init() { g.cond = sync.NewCond(&g.mu) }

// advance records that offsets below off are durable.
func (g *groupSync) advance(off int64) {
	g.mu.Lock()
	if off > g.durable {
		g.durable = off
	}
	g.cond.Broadcast()
	g.mu.Unlock()
}

// reset lowers the durable mark after a truncation.
func (g *groupSync) reset(off int64) {
	g.mu.Lock()
	g.durable = min(g.durable, off)
	g.gen++
	g.mu.Unlock()
}

// setFailed records a sticky fsync error.
func (g *groupSync) setFailed(err error) {
	g.mu.Lock()
	if g.failed == nil {
		g.failed = err
	}
	g.cond.Broadcast()
	g.mu.Unlock()
}

// failure returns the sticky fsync error, if any.
func (g *groupSync) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

func (g *groupSync) close() {
	g.mu.Lock()
	g.closed = true
	g.cond.Broadcast()
	g.mu.Unlock()
}

// syncTo returns once offsets below target are durable. entered says the
// caller was counted by enter.
func (p *Partition) syncTo(target int64, entered bool) error {
	g := &p.sync
	g.mu.Lock()
	defer g.mu.Unlock()
	if entered {
		g.arrived++
		g.cond.Broadcast()
	}
	for g.durable < target {
		if g.closed {
			return ErrClosed
		}
		if g.failed != nil {
			return g.failed
		}
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.syncs++
		// Gather the writers on their way: yield so runnable ones (such as
		// those the previous fsync released) reach enter, then wait for every
		// entered one to finish its write; repeat while more keep coming
		// (bounded: an fsync costs far more than a few yields).
		for range maxGatherRounds {
			seen := g.entered
			g.mu.Unlock()
			runtime.Gosched()
			g.mu.Lock()
			for want := g.entered; g.arrived < want && !g.closed; {
				g.cond.Wait()
			}
			if g.entered == seen {
				break
			}
		}
		gen := g.gen
		g.mu.Unlock()
		upto, err := p.syncActive()
		g.mu.Lock()
		g.running = false
		g.cond.Broadcast()
		if err != nil {
			// Linux may drop the dirty pages of a failed fsync: never retry
			// it as if nothing happened (the partition must be reopened).
			if g.failed == nil && !errors.Is(err, ErrClosed) {
				g.failed = err
			}
			return err
		}
		if gen == g.gen && upto > g.durable {
			g.durable = upto
		}
	}
	return nil
}

// syncActive fdatasyncs the active segment and returns the log end offset
// that the sync covers. Sealed segments were synced when they rolled.
func (p *Partition) syncActive() (int64, error) {
	leo := p.endOffset.Load()
	l := p.segs.Load()
	if len(l.segs) == 0 {
		return 0, ErrClosed
	}
	act := l.active()
	if !act.acquire() {
		return 0, ErrClosed
	}
	defer act.release()
	if err := act.log.Sync(); err != nil {
		return 0, fmt.Errorf("log: fsync %s: %w", act.logPath(), err)
	}
	return leo, nil
}

// syncEachWrite reports whether rolls must fsync the old segment before the
// new one takes writes (fsync=always or a flush.messages limit).
func (p *Partition) syncEachWrite() bool {
	return p.policy == FsyncAlways || p.cfg.FlushMessages != math.MaxInt64
}

// flushIndexes writes the active segment's pending index entries. Writer only.
func (p *Partition) flushIndexes(s *segment) error {
	m := s.mem.Load()
	if m != nil && m.len() > s.flushedIdx {
		b := p.idxBuf[:0]
		for i := s.flushedIdx; i < m.len(); i++ {
			b = appendOffsetEntry(b, m.at(i))
		}
		p.idxBuf = b
		if _, err := s.offIdx.WriteAt(b, s.flushedIdx*offsetEntrySize); err != nil {
			return p.fail(fmt.Errorf("log: write index %020d: %w", s.base, err))
		}
		s.flushedIdx = m.len()
		s.fileIdx.Store(s.flushedIdx)
	}
	if len(s.pendingTime) > 0 {
		n := int64(len(s.pendingTime) / timeEntrySize)
		if _, err := s.timeIdx.WriteAt(s.pendingTime, (s.timeEntries-n)*timeEntrySize); err != nil {
			return p.fail(fmt.Errorf("log: write time index %020d: %w", s.base, err))
		}
		s.pendingTime = s.pendingTime[:0]
	}
	return nil
}

// snapshotJob is a producer snapshot taken at a roll, written in the
// background.
type snapshotJob struct {
	off  int64
	data []byte
}

// flushSealedAsync queues a just-sealed segment for a background fsync after
// which the recovery point moves to its end, and the producer snapshot taken
// at the roll for writing. Every path that removes snapshots or segments
// (Truncate, retention, Close) first drains this queue (waitSealedFlushed).
func (p *Partition) flushSealedAsync(s *segment, snap snapshotJob) {
	s.acquire()
	p.flushMu.Lock()
	p.pendingSeal = append(p.pendingSeal, s)
	p.pendingSnaps = append(p.pendingSnaps, snap)
	p.flushMu.Unlock()
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		p.flushMu.Lock()
		defer p.flushMu.Unlock()
		if err := p.flushSealedLocked(); err != nil {
			p.logger.Error("log: background flush of a sealed segment failed", "err", err)
		}
	}()
}

// waitSealedFlushed flushes every queued sealed segment now.
func (p *Partition) waitSealedFlushed() error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	return p.flushSealedLocked()
}

// flushSealedLocked fsyncs queued sealed segments in order and advances the
// recovery point past them. Called with flushMu held.
func (p *Partition) flushSealedLocked() error {
	if len(p.pendingSeal) == 0 {
		return nil
	}
	rp := p.recoveryPoint
	for len(p.pendingSeal) > 0 {
		s := p.pendingSeal[0]
		for _, f := range []interface{ Sync() error }{s.log, s.offIdx, s.timeIdx} {
			if err := f.Sync(); err != nil {
				err = fmt.Errorf("log: fsync sealed segment %020d: %w", s.base, err)
				p.sync.setFailed(err)
				return err
			}
		}
		rp = max(rp, s.next.Load())
		p.pendingSeal[0] = nil
		p.pendingSeal = p.pendingSeal[1:]
		s.release()
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		return fmt.Errorf("log: sync dir: %w", err)
	}
	for _, j := range p.pendingSnaps {
		name := filepath.Base(fileName(p.dir, j.off, snapshotSuffix))
		if err := writeFileAtomic(p.fs, p.dir, name, j.data); err != nil {
			p.logger.Warn("log: producer snapshot at roll not written", "err", err)
		}
	}
	p.pendingSnaps = p.pendingSnaps[:0]
	return p.writeRecoveryPointLocked(rp)
}

// setRecoveryPoint checkpoints the recovery point.
func (p *Partition) setRecoveryPoint(off int64) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	return p.writeRecoveryPointLocked(off)
}

func (p *Partition) writeRecoveryPointLocked(off int64) error {
	if err := p.writeOffsetCheckpoint(recoveryPointCheckpoint, off); err != nil {
		return err
	}
	p.recoveryPoint = off
	return nil
}

// maybeStartTicker starts the flush.ms goroutine if the config asks for it.
func (p *Partition) maybeStartTicker() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maybeStartTickerLocked()
}

func (p *Partition) maybeStartTickerLocked() {
	if p.tickerOn || p.cfg.FlushMs == math.MaxInt64 {
		return
	}
	p.tickerOn = true
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		p.flushTicker()
	}()
}

// flushTicker fsyncs data older than flush.ms until the partition closes.
func (p *Partition) flushTicker() {
	p.mu.Lock()
	every := time.Duration(min(max(p.cfg.FlushMs/2, 5), 1000)) * time.Millisecond
	p.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.checkWritable() == nil && p.unflushed > 0 && p.cfg.FlushMs != math.MaxInt64 &&
			p.now().Sub(p.oldestDirty).Milliseconds() >= p.cfg.FlushMs {
			if err := p.flushLocked(); err != nil {
				p.logger.Error("log: flush.ms flush failed", "err", err)
			}
		}
		p.mu.Unlock()
	}
}
