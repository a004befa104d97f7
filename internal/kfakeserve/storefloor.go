package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/weir-broker/weir/log/batch"
)

// The store floor (-noop -store DIR) is the no-op server doing only the work
// that any broker storing what it acknowledges must do, and nothing else, so
// that `weir bench` can tell Weir's own overhead from the cost of storing on
// the machine at hand:
//   - a request of floorPieceMin bytes or more is read in floorPiece pieces,
//     each CRC-32C block-summed while it is in cache (batch.BlockSums), as
//     Weir reads large produce requests;
//   - every batch's CRC is checked, from those sums where they cover it;
//   - each partition's records are written with one pwrite at the end of
//     DIR/TOPIC-PARTITION;
//   - every floorStep bytes of a file have their writeback started, and the
//     pages floorWindow bytes behind are dropped (three times, as pages under
//     writeback survive a drop), as Weir's page cache window does; blocks are
//     reserved floorStep ahead.
//
// There is no index, no offset assignment, no producer state, no recovery
// and no fsync: the files are not a log anyone can read back as one.
const (
	floorPieceMin = 64 << 10
	floorPiece    = 256 << 10
	floorStep     = 4 << 20
	floorWindow   = 32 << 20
	floorDrops    = 3
)

// storeFloor writes acknowledged records to one file per partition. Safe
// for concurrent use: mu guards files, and each file's writes.
type storeFloor struct {
	dir   string
	mu    sync.Mutex
	files map[string]*floorFile
}

// floorFile is one partition's file and how far it is written, reserved,
// and started writing back.
type floorFile struct {
	f        *os.File
	end      int64 // bytes written
	reserved int64 // blocks reserved up to here
	started  int64 // writeback started up to here
}

func newStoreFloor(dir string) (*storeFloor, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store floor: %w", err)
	}
	return &storeFloor{dir: dir, files: make(map[string]*floorFile)}, nil
}

// close closes every file.
func (s *storeFloor) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, f := range s.files {
		if err := f.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// store checks the CRC of every batch in records (one produce partition's
// records field) and appends them to topic-partition's file. A bad batch
// gets CORRUPT_MESSAGE and nothing is written.
func (s *storeFloor) store(topic string, partition int32, records []byte, sums *batch.BlockSums) error {
	if err := checkBatches(records, sums); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := fmt.Sprintf("%s-%d", topic, partition)
	f := s.files[name]
	if f == nil {
		fh, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("store floor: %w", err)
		}
		f = &floorFile{f: fh}
		s.files[name] = f
	}
	for f.end+int64(len(records)) > f.reserved {
		reserveBlocks(f.f, f.reserved, floorStep)
		f.reserved += floorStep
	}
	if _, err := f.f.WriteAt(records, f.end); err != nil {
		return fmt.Errorf("store floor: %w", err)
	}
	f.end += int64(len(records))
	for f.started+floorStep <= f.end {
		startWriteback(f.f, f.started, floorStep)
		f.started += floorStep
		for i := int64(0); i < floorDrops; i++ {
			if from := f.started - floorWindow - (i+1)*floorStep; from >= 0 {
				dropCache(f.f, from, floorStep)
			}
		}
	}
	return nil
}

// checkBatches checks that records is a sequence of whole v2 batches with
// correct CRCs (batch.ParseSummed, as Weir's append checks them), taking each
// CRC from sums where they cover the batch.
func checkBatches(records []byte, sums *batch.BlockSums) error {
	if len(records) == 0 {
		return kerr.CorruptMessage
	}
	for b := records; len(b) > 0; {
		bt, err := batch.ParseSummed(b, sums)
		if err != nil {
			return fmt.Errorf("%w: %w", kerr.CorruptMessage, err)
		}
		b = b[len(bt):]
	}
	return nil
}
