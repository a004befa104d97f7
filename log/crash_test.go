package log

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// buildLog appends n batches, flushes, and returns the batches as written.
func buildLog(t *testing.T, fs vfs.FS, cfg Config, n int) [][]byte {
	t.Helper()
	p := openT(t, fs, cfg, Options{})
	var out [][]byte
	for i := range n {
		b := testBatch(1+i%3, int64(i), 40+i, byte(i))
		appendT(t, p, b, AppendOptions{})
		out = append(out, b)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	abandon(p)
	return out
}

// expectPrefix checks that the reopened log holds exactly want's batches.
func expectPrefix(t *testing.T, p *Partition, want [][]byte) {
	t.Helper()
	got := readBatches(t, p, p.LogStartOffset())
	if len(got) != len(want) {
		t.Fatalf("log holds %d batches, want %d (recovery %+v)", len(got), len(want), p.Recovery())
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}

// TestCrashTornTail cuts the active segment at every byte of its last batch:
// the reopened log holds exactly the batches before it and takes appends.
func TestCrashTornTail(t *testing.T) {
	cfg := smallConfig()
	base := vfs.NewMem()
	batches := buildLog(t, base, cfg, 20)
	last := batches[len(batches)-1]
	names, _ := base.List("/p/t-0")
	var active string
	for _, n := range names {
		if filepath.Ext(n) == ".log" {
			active = n
		}
	}
	for cut := 0; cut <= len(last); cut++ {
		fs := vfs.NewMem()
		buildLog(t, fs, cfg, 20)
		f, err := fs.OpenReadWrite(filepath.Join("/p/t-0", active))
		if err != nil {
			t.Fatal(err)
		}
		size, _ := f.Size()
		if err := f.Truncate(size - int64(len(last)) + int64(cut)); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		f.Close()
		p := openT(t, fs, cfg, Options{})
		want := batches
		if cut < len(last) {
			want = batches[:len(batches)-1]
		}
		expectPrefix(t, p, want)
		r := p.Recovery()
		wantCut := int64(cut)
		if cut == len(last) {
			wantCut = 0
		}
		if r.Clean || r.BytesTruncated != wantCut {
			t.Fatalf("cut %d: report %+v", cut, r)
		}
		res := appendT(t, p, testBatch(1, 0, 1, 'n'), AppendOptions{})
		if res.FirstOffset != p.LogEndOffset()-1 {
			t.Fatalf("cut %d: append after recovery at %d", cut, res.FirstOffset)
		}
		closeT(t, p)
	}
}

// TestCrashFlippedBytes flips one byte in the CRC-covered part, length or
// magic of a batch in the active or a sealed segment. The active segment is
// rescanned and cut before the damaged batch. A sealed segment below the
// recovery point is trusted at open; reads CRC-check its batches before
// serving them, so the damaged batch and the rest of that segment are never
// returned (Read stops before it or fails with ErrCorrupt).
func TestCrashFlippedBytes(t *testing.T) {
	cfg := smallConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 60 {
		fs := vfs.NewMem()
		batches := buildLog(t, fs, cfg, 30)
		names, _ := fs.List("/p/t-0")
		var logs []string
		for _, n := range names {
			if filepath.Ext(n) == ".log" {
				logs = append(logs, n)
			}
		}
		sealed := trial%2 == 0 && len(logs) > 1
		name := logs[len(logs)-1]
		if sealed {
			name = logs[rng.IntN(len(logs)-1)]
		}
		f, _ := fs.OpenReadWrite(filepath.Join("/p/t-0", name))
		size, _ := f.Size()
		buf := make([]byte, size)
		f.ReadAt(buf, 0)
		// Pick a batch and a byte in it outside baseOffset and leader epoch.
		var starts []int64
		for pos := int64(0); pos < size; {
			starts = append(starts, pos)
			n, _ := batch.Size(buf[pos:])
			pos += int64(n)
		}
		bi := rng.IntN(len(starts))
		end := size
		if bi+1 < len(starts) {
			end = starts[bi+1]
		}
		var at int64
		for {
			at = starts[bi] + rng.Int64N(end-starts[bi])
			if rel := at - starts[bi]; rel >= 8 && (rel < 12 || rel >= 16) {
				break
			}
		}
		f.WriteAt([]byte{buf[at] ^ byte(1+rng.IntN(255))}, at)
		f.Sync()
		f.Close()
		damagedBase := int64(0)
		{
			bt := batch.Batch(buf[starts[bi]:end])
			damagedBase = bt.BaseOffset()
		}

		p := openT(t, fs, cfg, Options{})
		// Read everything: never a bad batch, never the damaged one.
		var got int
		for off := p.LogStartOffset(); off < p.LogEndOffset(); {
			res, err := p.Read(off, ReadOptions{MaxBytes: 500})
			if errors.Is(err, ErrCorrupt) {
				if !sealed {
					t.Fatalf("trial %d: corrupt data served after recovery of the active segment: %v", trial, err)
				}
				break
			}
			if err != nil {
				t.Fatalf("trial %d: read %d: %v", trial, off, err)
			}
			var out bytes.Buffer
			res.WriteTo(&out)
			res.Release()
			if out.Len() == 0 {
				break
			}
			for data := out.Bytes(); len(data) > 0; {
				bt, err := batch.Parse(data)
				if err != nil {
					t.Fatalf("trial %d: read returned a bad batch: %v", trial, err)
				}
				// The damaged batch differs from what was written, so
				// this also proves it is never served.
				if got >= len(batches) || !bytes.Equal(bt, batches[got]) {
					t.Fatalf("trial %d: batch %d differs from what was written", trial, got)
				}
				got++
				data = data[len(bt):]
				off = bt.NextOffset()
			}
		}
		if !sealed && p.LogEndOffset() != damagedBase {
			t.Fatalf("trial %d: active segment damage at offset %d, log end %d (%+v)", trial, damagedBase, p.LogEndOffset(), p.Recovery())
		}
		if want := countBefore(batches, damagedBase); got != want {
			t.Fatalf("trial %d: read %d batches, want the %d before the damage", trial, got, want)
		}
		closeT(t, p)
	}
}

// countBefore returns how many batches start below off.
func countBefore(batches [][]byte, off int64) int {
	n := 0
	for _, b := range batches {
		if batch.Batch(b).BaseOffset() < off {
			n++
		}
	}
	return n
}

// TestReopenAfterKillOS writes on the real file system without Close (the
// process "dies"), then reopens: every appended batch is there.
func TestReopenAfterKillOS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	cfg := smallConfig()
	p, err := Open(dir, cfg, Options{FS: vfs.OS{}})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range 40 {
		b := testBatch(2, int64(i), 100, byte(i))
		appendT(t, p, b, AppendOptions{LeaderEpoch: 2})
		want = append(want, b)
	}
	abandon(p) // no Close: no marker, no final checkpoints
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownMarker)); !os.IsNotExist(err) {
		t.Fatalf("marker present after kill: %v", err)
	}
	p, err = Open(dir, cfg, Options{FS: vfs.OS{}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeT(t, p)
	if p.Recovery().Clean {
		t.Fatal("recovery after kill claims a clean shutdown")
	}
	expectPrefix(t, p, want)
	if e, off := p.EndOffsetForEpoch(2); e != 2 || off != 80 {
		t.Fatalf("EndOffsetForEpoch(2) = %d, %d", e, off)
	}
}
