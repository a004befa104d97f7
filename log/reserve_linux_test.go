package log

import (
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/weir-broker/weir/log/vfs"
)

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
		p, err := Open(dir, cfg, Options{FS: vfs.OS{}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	b := testBatch(10, 1, 1000, 'a') // about 10 KiB
	appendT(t, p, b, AppendOptions{})
	alloc, size := allocated(t, dir)
	if len(alloc) != 1 || size[0] != int64(len(b)) {
		t.Fatalf("after one append: sizes %v, want [%d]", size, len(b))
	}
	if alloc[0] < reserveAhead {
		t.Fatalf("after one append: %d bytes allocated for %d, want a reservation of %d ahead", alloc[0], size[0], reserveAhead)
	}
	for p.segs.Load().active().base == 0 {
		appendT(t, p, testBatch(100, 1, 1000, 'b'), AppendOptions{})
	}
	alloc, size = allocated(t, dir)
	if alloc[0] > size[0]+64<<10 {
		t.Errorf("sealed segment: %d bytes allocated for %d", alloc[0], size[0])
	}
	if alloc[1] < size[1]+reserveAhead/2 {
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
