package vfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of the first n bytes of f in the page cache.
func resident(t *testing.T, f *os.File, n int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (n+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	c := 0
	for _, v := range vec {
		c += int(v & 1)
	}
	return c
}

// TestOSCacheAdvice: after StartWriteback and a sync, DropCache really
// takes the file's pages out of the page cache, and the data is still
// there to read.
func TestOSCacheAdvice(t *testing.T) {
	const n = 4 << 20
	f, err := OS{}.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("weir"), n/4)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	of := f.(OSFiler).OSFile()
	if r := resident(t, of, n); r < n/os.Getpagesize()/2 {
		t.Fatalf("only %d pages cached right after writing", r)
	}
	a := f.(CacheAdviser)
	if err := a.StartWriteback(0, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // wait for the writeback the test needs finished
		t.Fatal(err)
	}
	if err := a.DropCache(0, n); err != nil {
		t.Fatal(err)
	}
	if r := resident(t, of, n); r > 16 {
		t.Fatalf("%d of %d pages still cached after DropCache", r, n/os.Getpagesize())
	}
	got := make([]byte, n)
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after dropping the cache: %v, equal %v", err, bytes.Equal(got, data))
	}
}

// TestOSOpenDirect: a direct handle reads the file's bytes with aligned
// offsets, lengths and buffers, and refuses unaligned ones as O_DIRECT does.
func TestOSOpenDirect(t *testing.T) {
	name := filepath.Join(t.TempDir(), "seg")
	data := make([]byte, 3*DirectAlignment+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OS{}.OpenDirect(name)
	if errors.Is(err, syscall.EINVAL) {
		// tmpfs has no direct I/O; the log then reads through the cache.
		t.Skipf("the test directory's file system refuses O_DIRECT: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw := make([]byte, 5*DirectAlignment)
	skip := (DirectAlignment - int(uintptr(unsafe.Pointer(&raw[0]))%DirectAlignment)) % DirectAlignment
	buf := raw[skip : skip+4*DirectAlignment]
	m, err := d.ReadAt(buf, DirectAlignment) // past the end: a short read
	if m != len(data)-DirectAlignment || !bytes.Equal(buf[:m], data[DirectAlignment:]) {
		t.Fatalf("direct ReadAt = %d, %v", m, err)
	}
	if _, err := d.ReadAt(buf[:DirectAlignment], 100); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("unaligned direct read: %v, want EINVAL", err)
	}
	if _, err := d.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("a direct handle must be read-only")
	}
}

// TestOSPreallocate: Preallocate reserves blocks past the end without
// changing the size or the data, and truncating to the same size gives the
// reservation back.
func TestOSPreallocate(t *testing.T) {
	name := filepath.Join(t.TempDir(), "seg")
	f, err := OS{}.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("weir"), 25)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	allocated := func() int64 {
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	const n = 8 << 20
	if err := f.(Preallocator).Preallocate(0, n); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("file system of %s has no fallocate: %v", name, err)
		}
		t.Fatal(err)
	}
	if got := allocated(); got < n {
		t.Fatalf("after Preallocate(0, %d): %d bytes allocated", n, got)
	}
	if size, err := f.Size(); err != nil || size != int64(len(data)) {
		t.Fatalf("size after Preallocate = %d, %v; want %d", size, err, len(data))
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got := allocated(); got >= n/2 {
		t.Fatalf("after truncating to the size: %d bytes still allocated", got)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data after Preallocate and Truncate = %q, %v", got, err)
	}
}
