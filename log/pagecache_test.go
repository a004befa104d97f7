package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"pgregory.net/rapid"

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
	// Direct reads that succeeded and that were refused.
	directReads, directRefused atomic.Int64
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

// TestCacheWindowOff: without a window the log gives no advice and no
// region is handed out for direct reads.
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
	if res.Regions[0].Direct != nil {
		t.Fatal("direct region without a window")
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

// TestReadBehindWindowIsDirect: a read of data older than the window is
// handed out for direct I/O and copies the same bytes as the cached path,
// with alignment enforced as O_DIRECT does; a read of the newest bytes is
// not; and a device that refuses direct reads falls back to the cache.
func TestReadBehindWindowIsDirect(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("refuse=%v", refuse), func(t *testing.T) {
			p, fs := openWindowed(t, 1<<20, 128<<10, refuse)
			defer closeT(t, p)
			for i := range 200 {
				appendT(t, p, testBatch(3, int64(i), 997+i*13, byte(i)), AppendOptions{})
			}
			old, err := p.Read(1, ReadOptions{MaxBytes: 300 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer old.Release()
			if len(old.Regions) != 1 || old.Regions[0].Direct == nil {
				t.Fatalf("old read: %+v, want one direct region", old.Regions)
			}
			rg := old.Regions[0]
			want := make([]byte, rg.Size)
			if _, err := rg.File.ReadAt(want, rg.Pos); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if n, err := rg.CopyDirect(&got); err != nil || n != rg.Size || !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("CopyDirect = %d, %v; bytes equal %v", n, err, bytes.Equal(got.Bytes(), want))
			}
			newest, err := p.Read(p.LogEndOffset()-3, ReadOptions{MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer newest.Release()
			if len(newest.Regions) != 1 || newest.Regions[0].Direct != nil {
				t.Fatalf("newest read: %+v, want one cached region", newest.Regions)
			}
			// A whole read across segments, direct where it applies.
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

// TestDirectReaderStopsEarly: closing a DirectReader before its regions
// were copied, or after a failed write, leaves no goroutine behind (goleak
// in TestMain) and returns its buffers.
func TestDirectReaderStopsEarly(t *testing.T) {
	p, _ := openWindowed(t, 8<<20, 64<<10, false)
	defer closeT(t, p)
	for i := range 100 {
		appendT(t, p, testBatch(1, int64(i), 50000, byte(i)), AppendOptions{})
	}
	var regions []Region
	var results []*ReadResult
	for off := int64(0); off < 60; off += 20 {
		res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
		regions = append(regions, res.Regions...)
	}
	defer func() {
		for _, r := range results {
			r.Release()
		}
	}()
	for _, r := range regions {
		if r.Direct == nil {
			t.Fatalf("region %+v not direct", r)
		}
	}
	NewDirectReader(regions).Close() // nothing copied

	d := NewDirectReader(regions)
	if _, err := d.Copy(failingWriter{}, regions[0]); err == nil {
		t.Fatal("a failed write was not reported")
	}
	d.Close()

	d = NewDirectReader(regions)
	var buf bytes.Buffer
	if n, err := d.Copy(&buf, regions[0]); err != nil || n != regions[0].Size {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	d.Close() // with regions left
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

var _ io.Writer = failingWriter{}
