package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback implements CacheAdviser.
func (f osFile) StartWriteback(off, n int64) error {
	return f.control("sync_file_range", func(fd int) error {
		return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}

// DropCache implements CacheAdviser.
func (f osFile) DropCache(off, n int64) error {
	return f.control("fadvise", func(fd int) error {
		return unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
	})
}

// Preallocate implements Preallocator.
func (f osFile) Preallocate(off, n int64) error {
	return f.control("fallocate", func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
}

// OpenDirect implements DirectOpener: the file read-only with O_DIRECT.
// File systems without direct I/O (tmpfs) refuse it.
func (OS) OpenDirect(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// control runs call on the file descriptor, retrying EINTR.
func (f osFile) control(op string, call func(fd int) error) error {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = call(int(fd)); serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: op, Path: f.f.Name(), Err: serr}
	}
	return nil
}
