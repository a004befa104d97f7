package log

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// benchBatch is a 16 KiB batch of 1 KiB records.
func benchBatch() []byte {
	recs := make([]batch.Record, 15)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: bytes.Repeat([]byte{byte(i)}, 1024)}
	}
	return batch.MustBuild(batch.Options{}, recs...)
}

// BenchmarkAppend compares Append of 16 KiB batches (1 KiB records) with
// plain (*os.File).Write of the same bytes on the same file system.
func BenchmarkAppend(b *testing.B) {
	data := benchBatch()
	b.Run("log", func(b *testing.B) {
		p, err := Open(filepath.Join(b.TempDir(), "t-0"), DefaultConfig(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Append(data, AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// paired alternates the two in one loop, so both see the same machine
	// load, and reports their rates and ratio.
	b.Run("paired", func(b *testing.B) {
		p, err := Open(filepath.Join(b.TempDir(), "t-0"), DefaultConfig(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(2 * int64(len(data)))
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var tLog, tRaw, cLog, cRaw time.Duration
		for b.Loop() {
			c0, t0 := threadCPU(), time.Now()
			if _, err := p.Append(data, AppendOptions{}); err != nil {
				b.Fatal(err)
			}
			c1, t1 := threadCPU(), time.Now()
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
			tLog, tRaw = tLog+t1.Sub(t0), tRaw+time.Since(t1)
			cLog, cRaw = cLog+c1-c0, cRaw+threadCPU()-c1
		}
		reportPair(b, int64(len(data))*int64(b.N), tLog, tRaw, cLog, cRaw, "os.File.Write")
	})
	b.Run("os.File.Write", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRead reads a 64 MiB log from the start in 1 MiB fetches (copying
// each region with ReadAt, as a non-sendfile writer would) and compares with
// plain ReadAt of the same file in 1 MiB chunks.
func BenchmarkRead(b *testing.B) {
	data := benchBatch()
	dir := filepath.Join(b.TempDir(), "t-0")
	p, err := Open(dir, DefaultConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	const total = 64 << 20
	for n := 0; n < total; n += len(data) {
		if _, err := p.Append(data, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	// Reopen: the segment is trusted, so the first pass also CRC-checks.
	p, err = Open(dir, DefaultConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	size := p.Size()
	buf := make([]byte, 2<<20)
	b.Run("log", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for off := int64(0); off < p.LogEndOffset(); {
				res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				rg := res.Regions[0]
				if _, err := rg.File.ReadAt(buf[:rg.Size], rg.Pos); err != nil {
					b.Fatal(err)
				}
				// The last batch of the region tells where to continue.
				last := rg.Size - int64(len(data))
				off = batch.Batch(buf[last:rg.Size]).NextOffset()
				res.Release()
			}
		}
	})
	b.Run("paired", func(b *testing.B) {
		f, err := os.Open(fileName(dir, 0, logSuffix))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(2 * size)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var tLog, tRaw, cLog, cRaw time.Duration
		for b.Loop() {
			c0, t0 := threadCPU(), time.Now()
			for off := int64(0); off < p.LogEndOffset(); {
				res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				rg := res.Regions[0]
				if _, err := rg.File.ReadAt(buf[:rg.Size], rg.Pos); err != nil {
					b.Fatal(err)
				}
				off = batch.Batch(buf[rg.Size-int64(len(data)) : rg.Size]).NextOffset()
				res.Release()
			}
			c1, t1 := threadCPU(), time.Now()
			for pos := int64(0); pos < size; pos += 1 << 20 {
				n := min(1<<20, size-pos)
				if _, err := f.ReadAt(buf[:n], pos); err != nil {
					b.Fatal(err)
				}
			}
			tLog, tRaw = tLog+t1.Sub(t0), tRaw+time.Since(t1)
			cLog, cRaw = cLog+c1-c0, cRaw+threadCPU()-c1
		}
		reportPair(b, size*int64(b.N), tLog, tRaw, cLog, cRaw, "ReadAt")
	})
	// Cold: the file's pages are dropped from the page cache before every
	// pass, and the log is reopened so its first read CRC-checks the batches
	// (a restart's first consumer). The timer stops for both.
	evict := func(b *testing.B) {
		f, err := os.Open(fileName(dir, 0, logSuffix))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Skipf("fadvise: %v", err)
		}
	}
	b.Run("paired-cold", func(b *testing.B) {
		f, err := os.Open(fileName(dir, 0, logSuffix))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(2 * size)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var tLog, tRaw, cLog, cRaw time.Duration
		for b.Loop() {
			if err := p.Close(); err != nil {
				b.Fatal(err)
			}
			evict(b)
			if p, err = Open(dir, DefaultConfig(), Options{}); err != nil {
				b.Fatal(err)
			}
			c0, t0 := threadCPU(), time.Now()
			for off := int64(0); off < p.LogEndOffset(); {
				res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				rg := res.Regions[0]
				if _, err := rg.File.ReadAt(buf[:rg.Size], rg.Pos); err != nil {
					b.Fatal(err)
				}
				off = batch.Batch(buf[rg.Size-int64(len(data)) : rg.Size]).NextOffset()
				res.Release()
			}
			c1, t1 := threadCPU(), time.Now()
			evict(b)
			c2, t2 := threadCPU(), time.Now()
			for pos := int64(0); pos < size; pos += 1 << 20 {
				n := min(1<<20, size-pos)
				if _, err := f.ReadAt(buf[:n], pos); err != nil {
					b.Fatal(err)
				}
			}
			tLog, tRaw = tLog+t1.Sub(t0), tRaw+time.Since(t2)
			cLog, cRaw = cLog+c1-c0, cRaw+threadCPU()-c2
		}
		reportPair(b, size*int64(b.N), tLog, tRaw, cLog, cRaw, "ReadAt")
	})
	b.Run("log-cold", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if err := p.Close(); err != nil {
				b.Fatal(err)
			}
			evict(b)
			if p, err = Open(dir, DefaultConfig(), Options{}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for off := int64(0); off < p.LogEndOffset(); {
				res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				rg := res.Regions[0]
				if _, err := rg.File.ReadAt(buf[:rg.Size], rg.Pos); err != nil {
					b.Fatal(err)
				}
				off = batch.Batch(buf[rg.Size-int64(len(data)) : rg.Size]).NextOffset()
				res.Release()
			}
		}
	})
	b.Run("ReadAt-cold", func(b *testing.B) {
		f, err := os.Open(fileName(dir, 0, logSuffix))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			evict(b)
			b.StartTimer()
			for pos := int64(0); pos < size; pos += 1 << 20 {
				n := min(1<<20, size-pos)
				if _, err := f.ReadAt(buf[:n], pos); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ReadAt", func(b *testing.B) {
		f, err := os.Open(fileName(dir, 0, logSuffix))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for pos := int64(0); pos < size; pos += 1 << 20 {
				n := min(1<<20, size-pos)
				if _, err := f.ReadAt(buf[:n], pos); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkAppendFsyncAlways runs 8 concurrent appenders with FsyncAlways
// (group commit) against one fdatasync per append, serialised.
func BenchmarkAppendFsyncAlways(b *testing.B) {
	data := benchBatch()
	const writers = 8
	b.Run("group-commit", func(b *testing.B) {
		p, err := Open(filepath.Join(b.TempDir(), "t-0"), DefaultConfig(), Options{Fsync: FsyncAlways})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		work := make(chan struct{}, writers)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				own := bytes.Clone(data)
				for range work {
					if _, err := p.Append(own, AppendOptions{}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for b.Loop() {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		p.sync.mu.Lock()
		b.ReportMetric(float64(b.N)/float64(max(p.sync.syncs, 1)), "appends/fsync")
		p.sync.mu.Unlock()
	})
	// paired: each round, 8 appenders append once each to the log at the
	// same time, then 8 appends go to a plain file with one fdatasync each;
	// reports both rates and their ratio under the same disk load.
	small := batch.MustBuild(batch.Options{}, batch.Record{Timestamp: time.Now().UnixMilli(), Value: bytes.Repeat([]byte{'s'}, 1024)})
	for _, sz := range []struct {
		name string
		data []byte
	}{{"paired-16KiB", data}, {"paired-1KiB", small}} {
		b.Run(sz.name, func(b *testing.B) {
			data := sz.data
			p, err := Open(filepath.Join(b.TempDir(), "t-0"), DefaultConfig(), Options{Fsync: FsyncAlways})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			f, err := vfs.OS{}.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			bufs := make([][]byte, writers)
			for i := range bufs {
				bufs[i] = bytes.Clone(data)
			}
			var tLog, tRaw time.Duration
			var pos int64
			for b.Loop() {
				t0 := time.Now()
				var wg sync.WaitGroup
				for _, own := range bufs {
					wg.Go(func() {
						if _, err := p.Append(own, AppendOptions{}); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				t1 := time.Now()
				for range writers {
					if _, err := f.WriteAt(data, pos); err != nil {
						b.Fatal(err)
					}
					pos += int64(len(data))
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				tLog, tRaw = tLog+t1.Sub(t0), tRaw+time.Since(t1)
			}
			n := float64(writers * b.N)
			b.ReportMetric(n/tLog.Seconds(), "group-appends/s")
			b.ReportMetric(n/tRaw.Seconds(), "fdatasync-appends/s")
			b.ReportMetric(tRaw.Seconds()/tLog.Seconds(), "group/fdatasync")
			p.sync.mu.Lock()
			b.ReportMetric(n/float64(max(p.sync.syncs, 1)), "appends/fsync")
			p.sync.mu.Unlock()
		})
	}
	b.Run("fdatasync-per-append", func(b *testing.B) {
		f, err := vfs.OS{}.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(len(data)))
		var pos int64
		for b.Loop() {
			if _, err := f.WriteAt(data, pos); err != nil {
				b.Fatal(err)
			}
			pos += int64(len(data))
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCleanOpen opens a cleanly closed log of 1000 segments (1 MiB
// each, 1 GiB in all): no segment is rescanned.
func BenchmarkCleanOpen(b *testing.B) {
	data := benchBatch()
	dir := filepath.Join(b.TempDir(), "t-0")
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	p, err := Open(dir, cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; n < 1000*(1<<20); n += len(data) {
		if _, err := p.Append(data, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var used time.Duration
	for b.Loop() {
		start := cpu()
		p, err := Open(dir, cfg, Options{})
		used += cpu() - start
		if err != nil {
			b.Fatal(err)
		}
		if r := p.Recovery(); !r.Clean || r.SegmentsScanned != 0 {
			b.Fatalf("not a clean open: %+v", r)
		}
		b.ReportMetric(float64(len(p.segs.Load().segs)), "segments")
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// threadCPU returns the CPU time (user+system) of the calling OS thread;
// callers lock their goroutine to it. Unlike wall time it ignores the other
// processes sharing the machine.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPair reports the log's and the baseline's rates and their ratio.
func reportPair(b *testing.B, bytes int64, tLog, tBase, cLog, cBase time.Duration, base string) {
	mbs := func(d time.Duration) float64 { return float64(bytes) / 1e6 / max(d.Seconds(), 1e-9) }
	b.ReportMetric(mbs(tLog), "log-MB/s")
	b.ReportMetric(mbs(tBase), base+"-MB/s")
	b.ReportMetric(mbs(tLog)/mbs(tBase), "log/"+base)
	if cLog > 0 && cBase > 0 {
		b.ReportMetric(float64(cBase)/float64(cLog), "log/"+base+"-cpu")
	}
}
