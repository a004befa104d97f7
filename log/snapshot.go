package log

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/weir-broker/weir/log/vfs"
)

// writeProducerSnapshot stores the producer ledger as <offset>.snapshot: the
// state after every batch below offset.
func (p *Partition) writeProducerSnapshot(offset int64) error {
	data := p.producers.marshal()
	return writeFileAtomic(p.fs, p.dir, filepath.Base(fileName(p.dir, offset, snapshotSuffix)), data)
}

// removeSnapshots deletes producer snapshots matching drop, durably.
func (p *Partition) removeSnapshots(drop func(off int64) bool) error {
	names, err := p.fs.List(p.dir)
	if err != nil {
		return fmt.Errorf("log: list %s: %w", p.dir, err)
	}
	removed := false
	for _, name := range names {
		off, ok := parseFileName(name, snapshotSuffix)
		if !ok || !drop(off) {
			continue
		}
		if err := p.fs.Remove(filepath.Join(p.dir, name)); err != nil && !errors.Is(err, vfs.ErrNotExist) {
			return fmt.Errorf("log: remove snapshot %s: %w", name, err)
		}
		removed = true
	}
	if removed {
		// A snapshot that comes back after a crash would resurrect state.
		if err := p.fs.SyncDir(p.dir); err != nil {
			return fmt.Errorf("log: sync dir after removing snapshots: %w", err)
		}
	}
	return nil
}
