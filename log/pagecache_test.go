package log

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"pgregory.net/rapid"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// adviceFS wraps a file system so that its files take cache advice and can
// be opened for direct I/O: advice is recorded, and direct handles refuse
// what O_DIRECT refuses (offsets, lengths or buffers not aligned to
// vfs.DirectAlignment) with EINVAL.
type adviceFS struct {
	vfs.FS
	mu       sync.Mutex
	advice   []advice
	noDirect bool // direct reads always fail, as on a device that refuses them
	// Direct reads that succeeded and that were refused, and the bytes the
	// successful ones asked for.
	directReads, directRefused, directBytes atomic.Int64
}

// advice is one recorded call: op is "writeback" or "drop".
type advice struct {
	name   string
	op     string
	off, n int64
}

type adviceFile struct {
	vfs.File
	fs *adviceFS
}

func (f adviceFile) record(op string, off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.advice = append(f.fs.advice, advice{f.Name(), op, off, n})
	return nil
}

func (f adviceFile) StartWriteback(off, n int64) error { return f.record("writeback", off, n) }
func (f adviceFile) DropCache(off, n int64) error      { return f.record("drop", off, n) }

func (fs *adviceFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return adviceFile{f, fs}, nil
}

func (fs *adviceFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return adviceFile{f, fs}, nil
}

func (fs *adviceFS) OpenDirect(name string) (vfs.File, error) {
	f, err := fs.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return directFile{f, fs}, nil
}

// directFile checks O_DIRECT's alignment rules on every read.
type directFile struct {
	vfs.File
	fs *adviceFS
}

func (f directFile) ReadAt(p []byte, off int64) (int, error) {
	const a = vfs.DirectAlignment
	if f.fs.noDirect || off%a != 0 || len(p)%a != 0 || (len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%a != 0) {
		f.fs.directRefused.Add(1)
		return 0, syscall.EINVAL
	}
	f.fs.directReads.Add(1)
	f.fs.directBytes.Add(int64(len(p)))
	return f.File.ReadAt(p, off)
}

// openWindowed opens a partition on an adviceFS with segments of
// segmentBytes and a page cache window of limit bytes.
func openWindowed(t tb, segmentBytes, limit int64, noDirect bool) (*Partition, *adviceFS) {
	fs := &adviceFS{FS: vfs.NewMem(), noDirect: noDirect}
	cfg := smallConfig()
	cfg.SegmentBytes = segmentBytes
	return openT(t, fs, cfg, Options{PageCacheWindow: limit}), fs
}

func (fs *adviceFS) take() []advice {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	a := fs.advice
	fs.advice = nil
	return a
}

// TestCacheWindowProperties appends batches of random sizes across segment
// rolls and checks every piece of advice the window gives against a model
// of the bytes written: a range is dropped only after its writeback was
// started, never within the newest limit bytes of the partition, drops and
// writeback starts run front to back through each file, and the bytes
// written but not dropped stay within the window plus one step.
func TestCacheWindowProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.Int64Range(64<<10, 2<<20).Draw(rt, "limit")
		p, fs := openWindowed(rt, rapid.Int64Range(32<<10, 3<<20).Draw(rt, "segmentBytes"), limit, false)
		defer closeT(rt, p)
		step := p.cache.step

		var files []string // in the order the segments were written
		size := map[string]int64{}
		started := map[string]int64{}
		dropped := map[string]int64{}
		redrops := map[advice]int{}
		appends := rapid.IntRange(1, 80).Draw(rt, "appends")
		for i := range appends {
			b := testBatch(rapid.IntRange(1, 4).Draw(rt, "records"), int64(i), rapid.IntRange(1, 40000).Draw(rt, "valSize"), byte(i))
			appendT(rt, p, b, AppendOptions{})
			for _, s := range p.segs.Load().segs {
				name := s.logPath()
				if _, ok := size[name]; !ok {
					files = append(files, name)
				}
				size[name] = s.size.Load()
			}
			// after returns the bytes written after position pos of file.
			after := func(file string, pos int64) int64 {
				n, seen := size[file]-pos, false
				for _, f := range files {
					if seen {
						n += size[f]
					}
					seen = seen || f == file
				}
				return n
			}
			for _, a := range fs.take() {
				switch a.op {
				case "writeback":
					if a.off != started[a.name] || a.n <= 0 || a.off+a.n > size[a.name] {
						rt.Fatalf("writeback %+v: started to %d, size %d", a, started[a.name], size[a.name])
					}
					started[a.name] = a.off + a.n
				case "drop":
					if a.off+a.n <= dropped[a.name] && a.n > 0 {
						redrops[a]++ // dropped again: pages under writeback stay the first time
						if redrops[a] >= redropTries {
							rt.Fatalf("%+v dropped %d times", a, redrops[a]+1)
						}
						continue
					}
					if a.off != dropped[a.name] || a.n <= 0 {
						rt.Fatalf("drop %+v out of order: dropped to %d", a, dropped[a.name])
					}
					if a.off+a.n > started[a.name] {
						rt.Fatalf("drop %+v before its writeback started (started to %d)", a, started[a.name])
					}
					if got := after(a.name, a.off+a.n); got < limit {
						rt.Fatalf("drop %+v within the newest %d bytes (%d after it)", a, limit, got)
					}
					dropped[a.name] = a.off + a.n
				}
			}
			var resident int64
			for _, f := range files {
				resident += size[f] - dropped[f]
			}
			if resident > limit+step+2*pageSize {
				rt.Fatalf("after append %d: %d bytes written and not dropped, window %d step %d", i, resident, limit, step)
			}
		}
		// Everything reads back, through the direct path where it applies.
		if got := readBatches(rt, p, 0); int64(len(got)) == 0 || got[len(got)-1].NextOffset() != p.LogEndOffset() {
			rt.Fatalf("read back %d batches, LEO %d", len(got), p.LogEndOffset())
		}
	})
}

// TestCacheWindowOff: without a window the log gives no advice and reads
// nothing past the cache.
func TestCacheWindowOff(t *testing.T) {
	p, fs := openWindowed(t, 1<<20, 0, false)
	defer closeT(t, p)
	for i := range 100 {
		appendT(t, p, testBatch(1, int64(i), 30000, byte(i)), AppendOptions{})
	}
	if a := fs.take(); len(a) != 0 {
		t.Fatalf("advice without a window: %v", a[0])
	}
	res, err := p.Read(0, ReadOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if res.Regions[0].Data != nil || fs.directReads.Load() != 0 {
		t.Fatal("a read past the cache without a window")
	}
}

// TestCacheWindowTruncate: a truncation below what was written back
// restarts the window from there; later advice stays behind the newest
// bytes.
func TestCacheWindowTruncate(t *testing.T) {
	const limit = 256 << 10
	p, fs := openWindowed(t, 64<<20, limit, false)
	defer closeT(t, p)
	for i := range 60 {
		appendT(t, p, testBatch(1, int64(i), 20000, byte(i)), AppendOptions{})
	}
	fs.take()
	if err := p.Truncate(10); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		appendT(t, p, testBatch(1, int64(i), 20000, byte(i)), AppendOptions{})
	}
	end := p.segs.Load().active().size.Load()
	var wb int
	for _, a := range fs.take() {
		if a.op == "writeback" {
			wb++
		}
		if a.op == "drop" && end-(a.off+a.n) < limit {
			t.Fatalf("drop %+v within the newest %d bytes of %d", a, limit, end)
		}
	}
	if wb == 0 {
		t.Fatal("no writeback started after the truncation")
	}
	if got := readBatches(t, p, 0); len(got) != 70 {
		t.Fatalf("read back %d batches, want 70", len(got))
	}
}

// TestReadBehindWindowFromMemory: a read of data older than the window
// comes back as bytes read with direct I/O (alignment enforced as O_DIRECT
// does), equal to the file's; a read of the newest bytes, or with a budget
// larger than the direct buffers, goes through the page cache; and a device
// that refuses direct reads falls back to the cache.
func TestReadBehindWindowFromMemory(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse=%v", refuse), func(t *testing.T) {
			p, fs := openWindowed(t, 1<<20, 128<<10, refuse)
			defer closeT(t, p)
			for i := range 200 {
				appendT(t, p, testBatch(3, int64(i), 997+i*13, byte(i)), AppendOptions{})
			}
			checkRegion := func(off int64, maxBytes int, wantMem bool) {
				t.Helper()
				res, err := p.Read(off, ReadOptions{MaxBytes: maxBytes})
				if err != nil {
					t.Fatal(err)
				}
				defer res.Release()
				if len(res.Regions) != 1 || (res.Regions[0].Data != nil) != wantMem {
					t.Fatalf("read at %d: %d regions, from memory %v; want memory %v", off, len(res.Regions), res.Regions[0].Data != nil, wantMem)
				}
				rg := res.Regions[0]
				want := make([]byte, rg.Size)
				if _, err := rg.File.ReadAt(want, rg.Pos); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if n, err := res.WriteTo(&got); err != nil || n != rg.Size || !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("read at %d: WriteTo = %d, %v; bytes equal %v", off, n, err, bytes.Equal(got.Bytes(), want))
				}
				bt, err := batch.Parse(got.Bytes())
				if err != nil || bt.BaseOffset() > off || bt.LastOffset() < off {
					t.Fatalf("read at %d: first batch %v", off, err)
				}
				if rg.Size > int64(max(maxBytes, len(bt))) {
					t.Fatalf("read at %d: %d bytes for a budget of %d", off, rg.Size, maxBytes)
				}
				if next := rg.Pos + rg.Size; next < p.segs.Load().active().size.Load() && rg.Size+int64(len(bt)) < int64(maxBytes)/2 {
					t.Fatalf("read at %d: only %d bytes for a budget of %d", off, rg.Size, maxBytes)
				}
			}
			checkRegion(1, 300<<10, !refuse)
			checkRegion(100, 64<<10, !refuse)
			checkRegion(100, 4<<20, false)                // larger than half a buffer
			checkRegion(p.LogEndOffset()-3, 1<<20, false) // the newest bytes
			if got := readBatches(t, p, 0); len(got) != 200 {
				t.Fatalf("read back %d batches, want 200", len(got))
			}
			reads, refused := fs.directReads.Load(), fs.directRefused.Load()
			if refuse && (reads != 0 || refused == 0) || !refuse && (reads == 0 || refused != 0) {
				t.Fatalf("%d direct reads, %d refused", reads, refused)
			}
		})
	}
}

// TestReadAheadServesNextFetch: a consumer reading old data front to back
// finds each fetch after the first already read ahead, with the fetch after
// it being read too (one direct read per fetch in all), gets the file's
// bytes, a truncation makes the read-aheads forgotten, and every buffer is
// returned.
func TestReadAheadServesNextFetch(t *testing.T) {
	chunks := directChunks.Load()
	p, fs := openWindowed(t, 16<<20, 64<<10, false)
	for i := range 300 {
		appendT(t, p, testBatch(2, int64(i), 9000+i, byte(i)), AppendOptions{})
	}
	fetches := 0
	for off := int64(0); off < 400; fetches++ {
		res, err := p.Read(off, ReadOptions{MaxBytes: 100 << 10})
		if err != nil {
			t.Fatal(err)
		}
		rg := res.Regions[0]
		if rg.Data == nil {
			t.Fatalf("read at %d not from memory", off)
		}
		want := make([]byte, rg.Size)
		if _, err := rg.File.ReadAt(want, rg.Pos); err != nil || !bytes.Equal(rg.Data, want) {
			t.Fatalf("read at %d: bytes differ from the file (%v)", off, err)
		}
		res.Release()
		off = lastNext(t, want)
		if off < 300 {
			// Both fetches predicted next are read (or being read) ahead,
			// the second started once the first landed.
			deadline := time.Now().Add(5 * time.Second)
			for p.aheadCount() < aheadDepth && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := p.aheadCount(); n != aheadDepth {
				t.Fatalf("after the fetch at %d: %d fetches read ahead, want %d", off, n, aheadDepth)
			}
		}
	}
	// Each read-ahead is one direct read; only the first fetch read for
	// itself, and the last ones read past the end of the consumer's reads.
	if got := fs.directReads.Load(); got > int64(fetches)+aheadDepth {
		t.Fatalf("%d direct reads for %d fetches", got, fetches)
	}
	if err := p.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if len(p.ahead) != 0 {
		t.Fatal("read-ahead kept across a truncation")
	}
	if got := readBatches(t, p, 0); len(got) != 50 {
		t.Fatalf("read back %d batches after truncating to 100, want 50", len(got))
	}
	closeT(t, p)
	time.Sleep(10 * time.Millisecond) // the last read-ahead's goroutine lets go after its read
	if got := directChunks.Load(); got != chunks {
		t.Fatalf("%d direct buffers held after Close, %d before", got, chunks)
	}
}

// TestReadAheadReadsLittleTwice: a consumer catching up on batches just
// under its 1 MiB budget gets one batch per fetch, and the read-ahead for
// the next fetch starts where that batch ends, so whatever a read-ahead
// reads past the batch is read again. Each read-ahead asks for at most 15%
// more than a fetch is sent (with an eighth of slack it was 23% more, and
// the consume was slower: docs/benchmarks.md, "Session 5"). The first
// fetch reads for itself, a whole direct-read buffer, and is left out.
func TestReadAheadReadsLittleTwice(t *testing.T) {
	p, fs := openWindowed(t, 64<<20, 1<<20, false)
	defer closeT(t, p)
	const batches = 24
	for i := range batches {
		appendT(t, p, testBatch(1, int64(i), 960_000, byte(i)), AppendOptions{})
	}
	var sent, fetches int64
	for off := int64(0); off < batches-2; fetches++ { // the last ones are within the window
		res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		rg := res.Regions[0]
		if rg.Data == nil {
			t.Fatalf("read at %d not from memory", off)
		}
		sent += rg.Size
		off = lastNext(t, rg.Data)
		res.Release()
		deadline := time.Now().Add(5 * time.Second) // the next read-ahead has landed
		for p.aheadCount() < aheadDepth && off < batches-4 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond) // the last read-aheads finish
	perRead := float64(fs.directBytes.Load()-directChunk) / float64(fs.directReads.Load()-1)
	perFetch := float64(sent) / float64(fetches)
	if perRead > 1.15*perFetch {
		t.Fatalf("read-aheads ask for %.0f bytes each to send %.0f per fetch (%.2fx)", perRead, perFetch, perRead/perFetch)
	}
}

// TestReadMemConcurrent reads old data at random offsets from several
// goroutines while the writer appends and truncates (run with -race): every
// region starts with the batch holding its offset and holds whole batches.
func TestReadMemConcurrent(t *testing.T) {
	p, _ := openWindowed(t, 2<<20, 64<<10, false)
	defer closeT(t, p)
	for i := range 200 {
		appendT(t, p, testBatch(2, int64(i), 5000, byte(i)), AppendOptions{})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				off := int64((k*37 + g*101) % 350)
				res, err := p.Read(off, ReadOptions{MaxBytes: 50 << 10, MaxOffset: 350})
				if err != nil {
					errs <- err
					return
				}
				var buf bytes.Buffer
				_, err = res.WriteTo(&buf)
				res.Release()
				if err != nil {
					errs <- err
					return
				}
				for b, first := buf.Bytes(), true; len(b) > 0; first = false {
					bt, err := batch.Parse(b)
					if err != nil || first && (bt.BaseOffset() > off || bt.LastOffset() < off) {
						errs <- fmt.Errorf("read at %d: batch %d-%d: %v", off, bt.BaseOffset(), bt.LastOffset(), err)
						return
					}
					b = b[len(bt):]
				}
			}
		}()
	}
	for i := range 100 {
		appendT(t, p, testBatch(2, int64(i), 5000, byte(i)), AppendOptions{})
		if i%25 == 24 {
			if err := p.Truncate(p.LogEndOffset() - 20); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// aheadCount returns how many read-aheads the partition holds.
func (p *Partition) aheadCount() int {
	p.aheadMu.Lock()
	defer p.aheadMu.Unlock()
	return len(p.ahead)
}

// lastNext returns the offset after the last batch in b.
func lastNext(t *testing.T, b []byte) int64 {
	t.Helper()
	var next int64
	for len(b) > 0 {
		bt, err := batch.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		next = bt.NextOffset()
		b = b[len(bt):]
	}
	return next
}

// TestCacheWindowDropsAgain: every dropped range is dropped redropTries
// times over the following steps, since pages still under writeback
// survive a drop.
func TestCacheWindowDropsAgain(t *testing.T) {
	p, fs := openWindowed(t, 64<<20, 256<<10, false)
	defer closeT(t, p)
	for i := range 400 {
		appendT(t, p, testBatch(1, int64(i), 10000, byte(i)), AppendOptions{})
	}
	drops := map[advice]int{}
	for _, a := range fs.take() {
		if a.op == "drop" {
			drops[a]++
		}
	}
	full := 0
	for a, n := range drops {
		if n > redropTries {
			t.Fatalf("%+v dropped %d times", a, n)
		}
		if n == redropTries {
			full++
		}
	}
	if full < len(drops)/2 {
		t.Fatalf("%d of %d dropped ranges dropped %d times", full, len(drops), redropTries)
	}
}
