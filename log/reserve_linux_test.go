package log

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weir-broker/weir/log/vfs"
)

// epoch is a clock stopped at the tests' small timestamps, so that
// segment.ms never rolls a segment and rolls come from segment.bytes.
func epoch() time.Time { return time.UnixMilli(0) }

// allocated returns the bytes the file system holds for each segment log
// file of dir, and each file's size, in base-offset order.
func allocated(t *testing.T, dir string) (alloc, size []int64) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Stat(n, &st); err != nil {
			t.Fatal(err)
		}
		alloc, size = append(alloc, st.Blocks*512), append(size, st.Size)
	}
	return alloc, size
}

// TestReserveAhead: on the real file system the active segment's blocks are
// reserved ahead of its appends without changing its size, a sealed segment
// and a closed partition give the rest back, and so does the first clean
// close after a crash left a reservation behind.
func TestReserveAhead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	probe, err := vfs.OS{}.Create(dir + ".probe")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := probe.(vfs.Preallocator).Preallocate(0, 1<<20); err != nil {
		t.Skipf("the file system of %s cannot reserve blocks: %v", dir, err)
	}
	cfg := DefaultConfig()
	cfg.SegmentBytes = 8 << 20
	open := func() *Partition {
		t.Helper()
		p, err := Open(dir, cfg, Options{FS: vfs.OS{}, Now: epoch})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	small := testBatch(10, 1, 1000, 'a') // about 10 KiB: reserves nothing
	appendT(t, p, small, AppendOptions{})
	alloc, size := allocated(t, dir)
	if len(alloc) != 1 || size[0] != int64(len(small)) {
		t.Fatalf("after one append: sizes %v, want [%d]", size, len(small))
	}
	if alloc[0] > size[0]+64<<10 {
		t.Fatalf("after a small append: %d bytes allocated for %d, want no reservation", alloc[0], size[0])
	}
	big := testBatch(1000, 1, 1000, 'b') // about 1 MiB: reserves 4 MiB ahead
	appendT(t, p, big, AppendOptions{})
	if alloc, size = allocated(t, dir); alloc[0] < size[0]+3<<20 {
		t.Fatalf("after a 1 MiB append: %d bytes allocated for %d, want about 4 MiB reserved ahead", alloc[0], size[0])
	}
	for p.segs.Load().active().base == 0 {
		appendT(t, p, testBatch(100, 1, 1000, 'c'), AppendOptions{}) // 100 KiB: 400 KiB ahead
	}
	alloc, size = allocated(t, dir)
	if alloc[0] > size[0]+64<<10 {
		t.Errorf("sealed segment: %d bytes allocated for %d", alloc[0], size[0])
	}
	if alloc[1] < size[1]+300<<10 {
		t.Errorf("new active segment: %d bytes allocated for %d, want a reservation ahead", alloc[1], size[1])
	}
	closeT(t, p)
	alloc, size = allocated(t, dir)
	if alloc[1] > size[1]+64<<10 {
		t.Errorf("after Close: %d bytes allocated for %d", alloc[1], size[1])
	}

	// A reservation left by a process that did not close (as after a
	// crash) is given back by the next clean close.
	var f vfs.File
	names, _ := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	f, err = vfs.OS{}.OpenReadWrite(names[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.(vfs.Preallocator).Preallocate(0, 6<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p = open()
	if alloc, size = allocated(t, dir); alloc[1] < 6<<20 {
		t.Fatalf("the earlier reservation is gone before the close: %d bytes allocated for %d", alloc[1], size[1])
	}
	closeT(t, p)
	if alloc, size = allocated(t, dir); alloc[1] > size[1]+64<<10 {
		t.Errorf("after a clean close: %d bytes allocated for %d", alloc[1], size[1])
	}
}

// TestReserveAcrossTruncate: a truncation of the active segment gives back
// the reservation past the cut, appends after it reserve again, and every
// batch reads back.
func TestReserveAcrossTruncate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 20
	p, err := Open(dir, cfg, Options{FS: vfs.OS{}, Now: epoch})
	if err != nil {
		t.Fatal(err)
	}
	defer closeT(t, p)
	if err := p.segs.Load().active().log.(vfs.Preallocator).Preallocate(0, 4096); err != nil {
		t.Skipf("the file system of %s cannot reserve blocks: %v", dir, err)
	}
	for i := range 100 {
		appendT(t, p, testBatch(2, int64(i), 40<<10, byte(i)), AppendOptions{})
	}
	if err := p.Truncate(100); err != nil { // 50 batches of 2
		t.Fatal(err)
	}
	alloc, size := allocated(t, dir)
	if alloc[0] > size[0]+64<<10 {
		t.Errorf("after truncating to %d bytes: %d allocated", size[0], alloc[0])
	}
	// 51 appends: the 51st starts a reservation of four appends ahead (the
	// ones before it used up those the earlier ones made).
	for i := range 51 {
		appendT(t, p, testBatch(2, int64(i), 40<<10, byte(100+i)), AppendOptions{})
	}
	alloc, size = allocated(t, dir)
	if alloc[0] < size[0]+200<<10 {
		t.Errorf("after appending again: %d bytes allocated for %d, want a reservation ahead", alloc[0], size[0])
	}
	got := readBatches(t, p, 0)
	if len(got) != 101 {
		t.Fatalf("read back %d batches, want 101", len(got))
	}
	for i, bt := range got {
		want := byte(i)
		if i >= 50 {
			want = byte(100 + i - 50)
		}
		it, err := bt.Records(1 << 20)
		if err != nil || !it.Next() || it.Record().Value[0] != want {
			t.Fatalf("batch %d: %v; want its first value to be of byte %d", i, err, want)
		}
	}
}
