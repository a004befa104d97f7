package log

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-broker/weir/log/vfs"
)

// FsyncPolicy says when appended data is made durable.
type FsyncPolicy int

const (
	// FsyncNever relies on replication for durability, as Kafka does: data is
	// fsynced when a segment rolls and on Close, and whenever the topic's
	// flush.messages or flush.ms say so. It is the default.
	FsyncNever FsyncPolicy = iota
	// FsyncAlways makes Append return only after its data is durable.
	// Concurrent appends share one fdatasync (group commit).
	FsyncAlways
)

// String returns the policy's config name.
func (f FsyncPolicy) String() string {
	switch f {
	case FsyncNever:
		return "never"
	case FsyncAlways:
		return "always"
	}
	return fmt.Sprintf("fsync(%d)", int(f))
}

// Options carries a partition's dependencies.
type Options struct {
	FS     vfs.FS           // nil: vfs.OS{}
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: discard
	Fsync  FsyncPolicy
	// PageCacheWindow is how many of the newest written bytes of the
	// partition stay in the page cache; older written data has its
	// writeback started and is dropped from the cache, and Read reads data
	// behind the window with direct I/O into memory, reading ahead for the
	// next fetch (pagecache.go, direct.go). 0 leaves the page cache to the
	// kernel.
	PageCacheWindow int64
}

// Partition is one partition's log: a directory of segments with one writer
// and any number of readers.
//
// Concurrency: Append, Truncate, DeleteRecordsBefore, EnforceRetention,
// SetConfig, Flush and Close serialise on the writer lock (mu). Read,
// OffsetForTimestamp, LogStartOffset, LogEndOffset and Size never take it:
// they work on an atomically published snapshot of the segment list plus the
// published end of the active segment. Compact serialises on cleanMu and
// takes mu only to pick segments and to swap cleaned ones in. Lock order:
// cleanMu, then mu, then flushMu, then sync.mu, then epochs.mu.
type Partition struct {
	dir    string
	fs     vfs.FS
	now    func() time.Time
	logger *slog.Logger
	policy FsyncPolicy

	segs        atomic.Pointer[segList]
	startOffset atomic.Int64
	endOffset   atomic.Int64
	closed      atomic.Bool
	recovery    RecoveryReport

	mu          sync.Mutex // the writer lock
	cfg         Config
	failed      error // sticky: set when a write could not be undone
	producers   *producerLedger
	txns        txnState // open and aborted transactions (txn.go)
	idxBuf      []byte   // scratch for index flushes
	unflushed   int64    // messages appended since the last fsync
	oldestDirty time.Time
	cache       cacheWindow // the newest written bytes kept in the page cache

	cleanMu sync.Mutex // serialises Compact (cleaner.go)

	aheadMu  sync.Mutex    // guards ahead
	ahead    readAheads    // read-aheads for a catching-up reader (direct.go)
	aheadGen atomic.Uint64 // bumped (under aheadMu) when read-aheads may no longer match the files

	flushMu       sync.Mutex // serialises background flushes of sealed segments
	pendingSeal   []*segment
	pendingSnaps  []snapshotJob
	recoveryPoint int64 // under flushMu

	sync   groupSync
	epochs *epochCache

	bg       sync.WaitGroup // background flushes and the flush.ms ticker
	stop     chan struct{}
	tickerOn bool // under mu
}

// Open opens (creating if needed) the partition directory dir and recovers
// it: a clean shutdown is trusted, an unclean one is rescanned from the
// recovery point. Recovery repairs what it can and reports it (Recovery); only
// I/O errors make Open fail.
func Open(dir string, cfg Config, o Options) (*Partition, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.FS == nil {
		o.FS = vfs.OS{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Partition{
		dir:    dir,
		fs:     o.FS,
		now:    o.Now,
		logger: o.Logger.With("dir", dir),
		policy: o.Fsync,
		cfg:    cfg,
		stop:   make(chan struct{}),
		cache:  newCacheWindow(o.PageCacheWindow),
	}
	p.sync.init()
	if err := p.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("log: create %s: %w", dir, err)
	}
	if err := p.recover(); err != nil {
		p.closeFiles()
		return nil, err
	}
	p.maybeStartTicker()
	return p, nil
}

// Recovery returns what the last Open found and did.
func (p *Partition) Recovery() RecoveryReport { return p.recovery }

// Dir returns the partition's directory.
func (p *Partition) Dir() string { return p.dir }

// LogStartOffset returns the first offset that may be read. Lock-free.
func (p *Partition) LogStartOffset() int64 { return p.startOffset.Load() }

// LogEndOffset returns the offset the next appended record gets. Lock-free.
func (p *Partition) LogEndOffset() int64 { return p.endOffset.Load() }

// Size returns the bytes held by the partition's segments. Lock-free.
func (p *Partition) Size() int64 {
	var n int64
	for _, s := range p.segs.Load().segs {
		n += s.size.Load()
	}
	return n
}

// Config returns the partition's current config.
func (p *Partition) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// SetConfig replaces the partition's config; it applies to the next append
// (rolls) and the next EnforceRetention.
func (p *Partition) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	p.cfg = cfg
	p.maybeStartTickerLocked()
	return nil
}

// Flush writes pending index entries, fsyncs the active segment and its
// indexes, and checkpoints the recovery point at the log end offset.
func (p *Partition) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	return p.flushLocked()
}

func (p *Partition) flushLocked() error {
	if err := p.waitSealedFlushed(); err != nil {
		return err
	}
	act := p.segs.Load().active()
	if err := p.flushIndexes(act); err != nil {
		return err
	}
	for _, f := range []vfs.File{act.log, act.offIdx, act.timeIdx} {
		if err := f.Sync(); err != nil {
			return p.fail(fmt.Errorf("log: fsync %s: %w", f.Name(), err))
		}
	}
	leo := p.endOffset.Load()
	p.sync.advance(leo)
	p.unflushed = 0
	return p.setRecoveryPoint(leo)
}

// fail records a sticky error after which the partition refuses writes.
func (p *Partition) fail(err error) error {
	if p.failed == nil {
		p.failed = err
		p.logger.Error("log: partition failed; reopen to recover", "err", err)
	}
	return err
}

// Close shuts the partition down cleanly: it flushes, writes the producer
// snapshot and checkpoints, and leaves the clean-shutdown marker so the next
// Open skips recovery. Readers holding ReadResults keep their files until
// they release them.
func (p *Partition) Close() error {
	p.mu.Lock()
	if p.closed.Swap(true) {
		p.mu.Unlock()
		return ErrClosed
	}
	close(p.stop)
	p.dropAhead()
	var err error
	if p.failed == nil && p.sync.failure() == nil {
		err = p.cleanShutdown()
	}
	p.mu.Unlock()
	p.bg.Wait()
	p.sync.close()
	p.closeFiles()
	return err
}

func (p *Partition) cleanShutdown() error {
	if err := p.flushLocked(); err != nil {
		return err
	}
	if l := p.segs.Load(); l != nil && len(l.segs) > 0 {
		releaseReserve(l.active())
	}
	if err := p.writeProducerSnapshot(p.endOffset.Load()); err != nil {
		return err
	}
	if err := p.writeOffsetCheckpoint(logStartCheckpoint, p.startOffset.Load()); err != nil {
		return err
	}
	if err := p.writeTxnCheckpoint(); err != nil {
		return err
	}
	return p.writeMarker()
}

// closeFiles drops the segment list's references.
func (p *Partition) closeFiles() {
	if l := p.segs.Swap(&segList{}); l != nil {
		for _, s := range l.segs {
			s.release()
		}
	}
}

// Delete closes the partition without checkpointing and removes its directory.
func (p *Partition) Delete() error {
	p.mu.Lock()
	if p.closed.Swap(true) {
		p.mu.Unlock()
		return ErrClosed
	}
	close(p.stop)
	p.mu.Unlock()
	p.bg.Wait()
	p.sync.close()
	p.closeFiles()
	if err := p.fs.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("log: delete %s: %w", p.dir, err)
	}
	return nil
}

// checkWritable returns why the partition cannot take a write, or nil.
// Called with mu held.
func (p *Partition) checkWritable() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if p.failed != nil {
		return fmt.Errorf("log: partition failed earlier: %w", p.failed)
	}
	if err := p.sync.failure(); err != nil {
		return fmt.Errorf("log: partition failed earlier: %w", err)
	}
	return nil
}
