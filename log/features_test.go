package log

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// clock is a settable test clock.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time { return time.UnixMilli(c.ms.Load()) }

func TestRollTriggers(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		step  func(t *testing.T, p *Partition, c *clock)
		rolls bool
	}{
		{"segment.bytes", func(c *Config) { c.SegmentBytes = 300 }, func(t *testing.T, p *Partition, c *clock) {
			appendT(t, p, testBatch(1, 1000, 200, 'a'), AppendOptions{})
			appendT(t, p, testBatch(1, 1000, 200, 'b'), AppendOptions{})
		}, true},
		{"under segment.bytes", func(c *Config) {}, func(t *testing.T, p *Partition, c *clock) {
			appendT(t, p, testBatch(1, 1000, 200, 'a'), AppendOptions{})
			appendT(t, p, testBatch(1, 1000, 200, 'b'), AppendOptions{})
		}, false},
		{"segment.ms", func(c *Config) { c.SegmentMs = 100 }, func(t *testing.T, p *Partition, c *clock) {
			c.ms.Store(1000)
			appendT(t, p, testBatch(1, 1000, 10, 'a'), AppendOptions{})
			c.ms.Store(1101)
			appendT(t, p, testBatch(1, 1100, 10, 'b'), AppendOptions{})
		}, true},
		{"segment.jitter.ms", func(c *Config) { c.SegmentMs = 100; c.SegmentJitterMs = 100 }, func(t *testing.T, p *Partition, c *clock) {
			c.ms.Store(1000)
			appendT(t, p, testBatch(1, 1000, 10, 'a'), AppendOptions{})
			p.segs.Load().active().rollJitter = 50 // the draw, fixed
			c.ms.Store(1060)
			appendT(t, p, testBatch(1, 1060, 10, 'b'), AppendOptions{})
		}, true},
		{"segment.index.bytes", func(c *Config) { c.SegmentIndexBytes = 32; c.IndexIntervalBytes = 0 }, func(t *testing.T, p *Partition, c *clock) {
			for i := range 5 {
				appendT(t, p, testBatch(1, 1000, 10, byte(i)), AppendOptions{})
			}
		}, true},
		{"relative offset overflow", func(c *Config) {}, func(t *testing.T, p *Partition, c *clock) {
			appendT(t, p, testBatch(1, 1000, 10, 'a'), AppendOptions{})
			b := testBatch(1, 1000, 10, 'b')
			batch.Batch(b).SetBaseOffset(math.MaxInt32 + 10)
			appendT(t, p, b, AppendOptions{KeepOffsets: true})
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			c := &clock{}
			p := openT(t, vfs.NewMem(), cfg, Options{Now: c.now})
			defer closeT(t, p)
			tt.step(t, p, c)
			if got := len(p.segs.Load().segs) > 1; got != tt.rolls {
				t.Fatalf("rolled = %v, want %v", got, tt.rolls)
			}
			readBatches(t, p, 0)
		})
	}
}

func TestRetentionMs(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionMs = 1000
	c := &clock{}
	c.ms.Store(10_000)
	p := openT(t, vfs.NewMem(), cfg, Options{Now: c.now})
	defer closeT(t, p)
	for i := range 40 {
		appendT(t, p, testBatch(2, int64(10_000+i*100), 100, byte(i)), AppendOptions{})
	}
	c.ms.Store(10_000 + 2500)
	res, err := p.EnforceRetention()
	if err != nil {
		t.Fatal(err)
	}
	if res.SegmentsDeleted == 0 || res.LogStartOffset == 0 {
		t.Fatalf("nothing expired: %+v", res)
	}
	for _, s := range p.segs.Load().segs[:len(p.segs.Load().segs)-1] {
		if c.ms.Load()-s.maxTs.Load() > cfg.RetentionMs {
			t.Fatalf("segment %d kept with max timestamp %d", s.base, s.maxTs.Load())
		}
	}
	c.ms.Store(1 << 40)
	res, err = p.EnforceRetention()
	if err != nil {
		t.Fatal(err)
	}
	if p.LogStartOffset() != p.LogEndOffset() || p.Size() != 0 {
		t.Fatalf("everything expired, still [%d, %d) %d bytes", p.LogStartOffset(), p.LogEndOffset(), p.Size())
	}
	if r := appendT(t, p, testBatch(1, 1<<40, 1, 'z'), AppendOptions{}); r.FirstOffset != 80 {
		t.Fatalf("append after full expiry at %d", r.FirstOffset)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	p := openT(t, vfs.NewMem(), smallConfig(), Options{})
	defer closeT(t, p)
	for i := range 30 { // batch i: offsets 3i..3i+2, timestamps 100i..100i+2
		appendT(t, p, testBatch(3, int64(100*i), 50, byte(i)), AppendOptions{})
	}
	tests := []struct {
		ts, wantOff, wantTs int64
		wantErr             error
	}{
		{0, 0, 0, nil},
		{-5, 0, 0, nil},
		{100, 3, 100, nil},
		{101, 4, 101, nil},
		{150, 6, 200, nil},
		{2902, 89, 2902, nil},
		{2903, 0, 0, ErrNotFound},
	}
	for _, tt := range tests {
		off, ts, err := p.OffsetForTimestamp(tt.ts)
		if !errors.Is(err, tt.wantErr) || err == nil && (off != tt.wantOff || ts != tt.wantTs) {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", tt.ts, off, ts, err, tt.wantOff, tt.wantTs, tt.wantErr)
		}
	}
}

func TestEpochCache(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	for _, e := range []struct {
		epoch int32
		n     int
	}{{1, 3}, {1, 2}, {4, 2}, {7, 1}} {
		appendT(t, p, testBatch(e.n, 1, 10, 'e'), AppendOptions{LeaderEpoch: e.epoch})
	}
	check := func(p *Partition) {
		t.Helper()
		tests := []struct {
			epoch, wantEpoch int32
			wantEnd          int64
		}{
			{0, -1, -1}, {1, 1, 5}, {3, 1, 5}, {4, 4, 7}, {7, 7, 8}, {9, 7, 8},
		}
		for _, tt := range tests {
			if e, end := p.EndOffsetForEpoch(tt.epoch); e != tt.wantEpoch || end != tt.wantEnd {
				t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tt.epoch, e, end, tt.wantEpoch, tt.wantEnd)
			}
		}
	}
	check(p)
	closeT(t, p)
	p = openT(t, fs, smallConfig(), Options{})
	check(p)
	if err := p.Truncate(7); err != nil {
		t.Fatal(err)
	}
	if e, end := p.EndOffsetForEpoch(7); e != 4 || end != 7 {
		t.Fatalf("after truncation: EndOffsetForEpoch(7) = %d, %d; want 4, 7", e, end)
	}
	closeT(t, p)
}

func TestDeleteRecordsPersists(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	for i := range 30 {
		appendT(t, p, testBatch(2, 1, 100, byte(i)), AppendOptions{})
	}
	if _, err := p.DeleteRecordsBefore(61); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	got, err := p.DeleteRecordsBefore(33)
	if err != nil || got != 33 {
		t.Fatalf("DeleteRecordsBefore(33) = %d, %v", got, err)
	}
	if _, err := p.Read(32, ReadOptions{}); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	if p.segs.Load().segs[0].base > 33 || p.segs.Load().segs[0].next.Load() <= 33 {
		t.Fatalf("first segment [%d, %d) does not hold the start", p.segs.Load().segs[0].base, p.segs.Load().segs[0].next.Load())
	}
	abandon(p) // the start offset checkpoint is durable without Close
	fs.Crash()
	p = openT(t, fs, smallConfig(), Options{})
	defer closeT(t, p)
	if p.LogStartOffset() != 33 {
		t.Fatalf("start after crash = %d", p.LogStartOffset())
	}
	if got := readBatches(t, p, 33); len(got) == 0 || got[0].BaseOffset() != 32 {
		t.Fatalf("read from the start returns the batch holding it")
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		to, wantLEO, wantStart int64
	}{
		{60, 60, 0}, {100, 60, 0}, {40, 40, 0}, {41, 40, 0}, {1, 0, 0}, {0, 0, 0},
	}
	for _, tt := range tests {
		p := openT(t, vfs.NewMem(), smallConfig(), Options{})
		for i := range 30 {
			appendT(t, p, testBatch(2, 1, 100, byte(i)), AppendOptions{})
		}
		if err := p.Truncate(tt.to); err != nil {
			t.Fatal(err)
		}
		if p.LogEndOffset() != tt.wantLEO || p.LogStartOffset() != tt.wantStart {
			t.Errorf("Truncate(%d): [%d, %d), want [%d, %d)", tt.to, p.LogStartOffset(), p.LogEndOffset(), tt.wantStart, tt.wantLEO)
		}
		if r := appendT(t, p, testBatch(1, 1, 1, 'x'), AppendOptions{}); r.FirstOffset != tt.wantLEO {
			t.Errorf("Truncate(%d): next append at %d", tt.to, r.FirstOffset)
		}
		if n := len(readBatches(t, p, p.LogStartOffset())); n != int(tt.wantLEO/2)+1 {
			t.Errorf("Truncate(%d): %d batches read back", tt.to, n)
		}
		closeT(t, p)
	}
}

// TestIndexRebuild damages or removes index files of a cleanly closed log:
// Open rebuilds them and reads are unaffected.
func TestIndexRebuild(t *testing.T) {
	for _, damage := range []string{"remove-index", "remove-timeindex", "garbage-index", "odd-size-index"} {
		t.Run(damage, func(t *testing.T) {
			fs := vfs.NewMem()
			p := openT(t, fs, smallConfig(), Options{})
			for i := range 30 {
				appendT(t, p, testBatch(2, 1, 100, byte(i)), AppendOptions{})
			}
			want := len(readBatches(t, p, 0))
			closeT(t, p)
			idx := fileName("/p/t-0", 0, indexSuffix)
			switch damage {
			case "remove-index":
				fs.Remove(idx)
			case "remove-timeindex":
				fs.Remove(fileName("/p/t-0", 0, timeIndexSuffix))
			case "garbage-index":
				f, _ := fs.OpenReadWrite(idx)
				f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0)
				f.Close()
			case "odd-size-index":
				f, _ := fs.OpenReadWrite(idx)
				f.WriteAt([]byte{1, 2, 3}, 0)
				sz, _ := f.Size()
				f.Truncate(sz + 3)
				f.Close()
			}
			p = openT(t, fs, smallConfig(), Options{})
			defer closeT(t, p)
			if damage != "remove-timeindex" && p.Recovery().IndexesRebuilt == 0 && !strings.Contains(strings.Join(p.Recovery().Problems, ";"), "index") {
				t.Fatalf("damage not noticed: %+v", p.Recovery())
			}
			if got := len(readBatches(t, p, 0)); got != want {
				t.Fatalf("read %d batches, want %d", got, want)
			}
		})
	}
}

// TestAppendFailureLeavesLogUnchanged injects write and fsync failures.
func TestAppendFailureLeavesLogUnchanged(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	defer closeT(t, p)
	appendT(t, p, testBatch(1, 1, 10, 'a'), AppendOptions{})
	boom := errors.New("disk on fire")
	fs.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && filepath.Ext(name) == logSuffix {
			return boom
		}
		return nil
	})
	if _, err := p.Append(testBatch(1, 1, 10, 'b'), AppendOptions{}); !errors.Is(err, boom) {
		t.Fatalf("append with failing write: %v", err)
	}
	fs.SetInjector(nil)
	if p.LogEndOffset() != 1 {
		t.Fatalf("LEO moved to %d", p.LogEndOffset())
	}
	if r := appendT(t, p, testBatch(1, 1, 10, 'c'), AppendOptions{}); r.FirstOffset != 1 {
		t.Fatalf("next append at %d", r.FirstOffset)
	}
	if n := len(readBatches(t, p, 0)); n != 2 {
		t.Fatalf("%d batches", n)
	}
}

// TestGroupCommitDurable: with FsyncAlways every acknowledged append of
// concurrent writers survives a crash.
func TestGroupCommitDurable(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{Fsync: FsyncAlways})
	var acked atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := p.Append(testBatch(1, 1, 30, byte(w*20+i)), AppendOptions{}); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	wg.Wait()
	abandon(p)
	fs.Crash()
	p = openT(t, fs, smallConfig(), Options{})
	defer closeT(t, p)
	if p.LogEndOffset() != acked.Load() {
		t.Fatalf("after crash LEO %d, acknowledged %d", p.LogEndOffset(), acked.Load())
	}
}

// TestFlushMessagesAndMs: flush.messages fsyncs in the append path,
// flush.ms from the background ticker.
func TestFlushMessagesAndMs(t *testing.T) {
	t.Run("flush.messages", func(t *testing.T) {
		fs := vfs.NewMem()
		cfg := smallConfig()
		cfg.FlushMessages = 3
		p := openT(t, fs, cfg, Options{})
		for i := range 4 {
			appendT(t, p, testBatch(1, 1, 10, byte(i)), AppendOptions{})
		}
		abandon(p)
		fs.Crash()
		p = openT(t, fs, cfg, Options{})
		defer closeT(t, p)
		if p.LogEndOffset() < 3 {
			t.Fatalf("LEO %d after crash, flush.messages=3 made 3 durable", p.LogEndOffset())
		}
	})
	t.Run("flush.ms", func(t *testing.T) {
		fs := vfs.NewMem()
		synced := make(chan struct{}, 1)
		fs.SetInjector(func(op vfs.Op, name string) error {
			if op == vfs.OpSync && filepath.Ext(name) == logSuffix {
				select {
				case synced <- struct{}{}:
				default:
				}
			}
			return nil
		})
		cfg := smallConfig()
		cfg.FlushMs = 10
		p := openT(t, fs, cfg, Options{Now: time.Now})
		defer closeT(t, p)
		appendT(t, p, testBatch(1, time.Now().UnixMilli(), 10, 'a'), AppendOptions{})
		select {
		case <-synced:
		case <-time.After(10 * time.Second):
			t.Fatal("flush.ms never fsynced the segment")
		}
	})
}

// TestKeepOffsetsFarAhead: a replicated batch far past an empty log moves
// the empty active segment instead of overflowing its relative offsets.
func TestKeepOffsetsFarAhead(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	b := testBatch(2, 1, 10, 'f')
	batch.Batch(b).SetBaseOffset(5_000_000_000)
	if _, err := p.Append(b, AppendOptions{KeepOffsets: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.segs.Load().segs); n != 1 || p.segs.Load().segs[0].base != 5_000_000_000 || p.LogStartOffset() != 5_000_000_000 {
		t.Fatalf("%d segments, first at %d, start %d", n, p.segs.Load().segs[0].base, p.LogStartOffset())
	}
	closeT(t, p)
	p = openT(t, fs, smallConfig(), Options{})
	defer closeT(t, p)
	if p.LogStartOffset() != 5_000_000_000 || p.LogEndOffset() != 5_000_000_002 {
		t.Fatalf("log [%d, %d)", p.LogStartOffset(), p.LogEndOffset())
	}
	bad := testBatch(1, 1, 10, 'g')
	batch.Batch(bad).SetBaseOffset(5)
	if _, err := p.Append(bad, AppendOptions{KeepOffsets: true}); !errors.Is(err, ErrInvalidOffset) {
		t.Fatalf("batch below the log end: %v", err)
	}
}

// TestRetentionKeepsHeldRegions: a region handed to a reader stays readable
// on the OS file system after retention deleted its segment, and the file is
// closed once the reader releases it. Retention below a limit keeps the rest.
func TestRetentionKeepsHeldRegions(t *testing.T) {
	cfg := smallConfig()
	p, err := Open(filepath.Join(t.TempDir(), "t-0"), cfg, Options{FS: vfs.OS{}, Now: func() time.Time { return time.UnixMilli(0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeT(t, p)
	for i := range 40 {
		appendT(t, p, testBatch(2, 1, 100, byte(i)), AppendOptions{})
	}
	res, err := p.Read(0, ReadOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := readBatches(t, p, 0)[0]
	c := p.Config()
	c.RetentionBytes = 0
	if err := p.SetConfig(c); err != nil {
		t.Fatal(err)
	}
	if r, err := p.EnforceRetentionBelow(30); err != nil || r.LogStartOffset > 30 || r.SegmentsDeleted == 0 {
		t.Fatalf("retention below 30: %+v %v", r, err)
	}
	if r, err := p.EnforceRetention(); err != nil || r.LogStartOffset != 80 {
		t.Fatalf("retention: %+v %v", r, err)
	}
	f := res.Regions[0].File.(vfs.OSFiler).OSFile()
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Fatalf("segment file still in the directory: %v", err)
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, res.Regions[0].Pos); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("held region unreadable after deletion: %v", err)
	}
	res.Release()
	if _, err := f.ReadAt(got, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file not closed after the last release: %v", err)
	}
}

// TestGarbageIndexInTrustedSegment: an index whose first and last entries
// look right but whose middle is garbage never makes a read return a partial
// or wrong batch.
func TestGarbageIndexInTrustedSegment(t *testing.T) {
	fs := vfs.NewMem()
	cfg := smallConfig()
	cfg.IndexIntervalBytes = 0
	p := openT(t, fs, cfg, Options{})
	for i := range 80 {
		appendT(t, p, testBatch(2, 1, 60, byte(i)), AppendOptions{})
	}
	if len(p.segs.Load().segs) < 3 {
		t.Fatal("segment 0 must be sealed")
	}
	want := readBatches(t, p, 0)
	closeT(t, p)
	f, _ := fs.OpenReadWrite(fileName("/p/t-0", 0, indexSuffix))
	size, _ := f.Size()
	for off := int64(offsetEntrySize); off < size-offsetEntrySize; off += offsetEntrySize {
		f.WriteAt([]byte{0, 0, 0, byte(off / 8), 0, 0, byte(off), 7}, off) // plausible order, wrong places
	}
	f.Close()
	p = openT(t, fs, cfg, Options{})
	defer closeT(t, p)
	// Read twice: the first read CRC-checks, the second trusts the verified prefix.
	for range 2 {
		for off := int64(0); off < p.LogEndOffset(); off++ {
			res, err := p.Read(off, ReadOptions{MaxBytes: 700})
			if err != nil {
				t.Fatalf("read %d: %v", off, err)
			}
			var buf bytes.Buffer
			res.WriteTo(&buf)
			res.Release()
			for d := buf.Bytes(); len(d) > 0; {
				bt, err := batch.Parse(d)
				if err != nil {
					t.Fatalf("read %d: bad batch: %v", off, err)
				}
				if i := bt.BaseOffset() / 2; !bytes.Equal(bt, want[i]) {
					t.Fatalf("read %d: batch %d differs", off, i)
				}
				d = d[len(bt):]
			}
		}
	}
	if _, _, err := p.OffsetForTimestamp(1); err != nil {
		t.Fatalf("OffsetForTimestamp with a damaged index: %v", err)
	}
	if err := p.Truncate(41); err != nil || p.LogEndOffset() != 40 {
		t.Fatalf("Truncate(41) with a damaged index: LEO %d, %v", p.LogEndOffset(), err)
	}
}

// TestFsyncFailureIsSticky: after a failed fdatasync (FsyncAlways) the
// partition refuses writes until it is reopened, and a clean shutdown is not
// claimed.
func TestFsyncFailureIsSticky(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{Fsync: FsyncAlways})
	appendT(t, p, testBatch(1, 1, 10, 'a'), AppendOptions{})
	boom := errors.New("EIO")
	fs.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && filepath.Ext(name) == logSuffix {
			return boom
		}
		return nil
	})
	if _, err := p.Append(testBatch(1, 1, 10, 'b'), AppendOptions{}); !errors.Is(err, boom) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	fs.SetInjector(nil)
	if _, err := p.Append(testBatch(1, 1, 10, 'c'), AppendOptions{}); !errors.Is(err, boom) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	p.Close()
	p = openT(t, fs, smallConfig(), Options{Fsync: FsyncAlways})
	defer closeT(t, p)
	if p.Recovery().Clean {
		t.Fatal("clean shutdown claimed after a failed fsync")
	}
	appendT(t, p, testBatch(1, 1, 10, 'd'), AppendOptions{})
}

// TestReadBoundsTrusted: after a clean reopen every byte is trusted, so the
// first reads take the CRC-checking path; budgets and MaxOffset hold there too.
func TestReadBoundsTrusted(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	for i := range 5 {
		appendT(t, p, testBatch(2, int64(i), 10, 'a'), AppendOptions{})
	}
	size := int(p.Size() / 5)
	closeT(t, p)
	tests := []struct {
		offset, maxOffset int64
		maxBytes          int
		wantFirst         int64
		wantBatches       int
	}{
		{0, 0, 1, 0, 1},          // first batch whole despite the budget
		{0, 0, 2 * size, 0, 2},   // budget of two batches
		{3, 0, 1 << 20, 2, 4},    // from inside a batch to the end
		{0, 6, 1 << 20, 0, 3},    // MaxOffset stops before the batch holding 6
		{4, 5, 1 << 20, 0, 0},    // the batch holding 4 reaches MaxOffset
		{8, 0, 2*size - 1, 8, 1}, // budget short of two batches
	}
	for _, tt := range tests {
		p := openT(t, fs, smallConfig(), Options{}) // fresh: nothing verified yet
		res, err := p.Read(tt.offset, ReadOptions{MaxBytes: tt.maxBytes, MaxOffset: tt.maxOffset})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		res.WriteTo(&buf)
		res.Release()
		var got []batch.Batch
		for d := buf.Bytes(); len(d) > 0; {
			bt, err := batch.Parse(d)
			if err != nil {
				t.Fatalf("%+v: bad batch: %v", tt, err)
			}
			got = append(got, bt)
			d = d[len(bt):]
		}
		if len(got) != tt.wantBatches || len(got) > 0 && got[0].BaseOffset() != tt.wantFirst {
			t.Errorf("%+v: %d batches", tt, len(got))
		}
		closeT(t, p)
	}
}
