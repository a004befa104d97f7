//go:build !linux

package vfs

import "os"

// datasync flushes a file's data; platforms without fdatasync use fsync.
func datasync(f *os.File) error { return f.Sync() }
