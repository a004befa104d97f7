//go:build !unix

package broker

import (
	"errors"
	"os"
)

// ErrDataDirLocked is returned by Start when another process holds the data
// directory.
var ErrDataDirLocked = errors.New("broker: data directory is in use by another process")

// lockDataDir is a no-op where flock is not available.
func lockDataDir(string) (*os.File, error) { return nil, nil }
