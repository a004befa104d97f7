//go:build !linux

package vfs

import (
	"errors"
	"os"
)

// StartWriteback implements CacheAdviser; without sync_file_range it leaves
// writeback to the operating system.
func (f osFile) StartWriteback(off, n int64) error { return nil }

// DropCache implements CacheAdviser; without fadvise it leaves the cache to
// the operating system.
func (f osFile) DropCache(off, n int64) error { return nil }

// Preallocate implements Preallocator; elsewhere the file system allocates
// blocks as writes arrive.
func (f osFile) Preallocate(off, n int64) error {
	return &os.PathError{Op: "fallocate", Path: f.f.Name(), Err: errors.ErrUnsupported}
}

// OpenDirect implements DirectOpener; direct I/O is only used on Linux.
func (OS) OpenDirect(name string) (File, error) {
	return nil, &os.PathError{Op: "open direct", Path: name, Err: errors.ErrUnsupported}
}
