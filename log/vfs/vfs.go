// Package vfs is the file-system seam of the Weir log: every byte the log
// reads or writes goes through an FS, so storage code runs unchanged on real
// files (OS) and on an in-memory file system (Mem) that can simulate a crash
// and inject I/O errors, which lets crash tests run in-process.
//
// Files are addressed by position only (ReadAt, WriteAt): the log never uses
// a file's current offset, so callers that hand an OS file to sendfile must
// pass an explicit offset (pread-style) and never share the file offset
// between concurrent readers.
package vfs

import (
	"errors"
	"io"
	"os"
)

// ErrNotExist is returned (wrapped) when a named file or directory does not
// exist. It is fs.ErrNotExist, so os.IsNotExist and errors.Is both work.
var ErrNotExist = os.ErrNotExist

// ErrExist is returned (wrapped) when creating a file that must not exist.
var ErrExist = os.ErrExist

// ErrClosed is returned by operations on a closed file, or on a file of a Mem
// file system that crashed after the file was opened.
var ErrClosed = errors.New("vfs: file closed")

// File is an open file. ReadAt and WriteAt may be called concurrently with
// each other on the same File; Truncate, Sync and Close must not race with
// writes to the same range. Implementations never use a shared file offset.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data and size durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Size returns the current size of the file.
	Size() (int64, error)
	// Name returns the name the file was opened with.
	Name() string
}

// OSFiler is implemented by files backed by an operating-system file. The
// broker uses it to sendfile a region without copying it through user space.
type OSFiler interface {
	OSFile() *os.File
}

// FS is a file system. Names are slash-separated paths as given by the caller;
// implementations do not interpret them beyond directory boundaries.
type FS interface {
	// Create creates the named file read-write, truncating it if it exists.
	Create(name string) (File, error)
	// OpenReadWrite opens an existing file read-write without truncating it.
	OpenReadWrite(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory. Open handles stay usable.
	Remove(name string) error
	// RemoveAll removes a directory and everything below it.
	RemoveAll(name string) error
	// Rename atomically renames a file, replacing the target if it exists.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries of a directory, sorted.
	List(dir string) ([]string, error)
	// Stat returns the size of a file.
	Stat(name string) (size int64, err error)
	// SyncDir makes the directory's entries (creates, removes, renames) durable.
	SyncDir(dir string) error
}
