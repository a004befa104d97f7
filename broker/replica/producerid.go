package replica

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/weir-broker/weir/log/vfs"
)

// producerIDFile holds the first producer id of the next block; ids below it
// may have been handed out. The format is the decimal number and a newline.
const producerIDFile = "producer-id-block"

// producerIDBlock is how many ids one durable write reserves, as Kafka's
// controller hands out blocks of 1000.
const producerIDBlock = 1000

// ErrProducerIDsExhausted: the int64 id space is used up.
var ErrProducerIDsExhausted = errors.New("replica: producer ids exhausted")

// ErrCorruptProducerIDBlock: the producer id block file does not parse.
var ErrCorruptProducerIDBlock = errors.New("replica: corrupt producer id block")

// producerIDs hands out producer ids unique across restarts: before using an
// id from a new block it persists the block's end, so a restart starts at
// least there. Safe for concurrent use.
type producerIDs struct {
	fs   vfs.FS
	dir  string
	path string

	mu       sync.Mutex
	nextID   int64 // next id to hand out
	blockEnd int64 // first id not reserved on disk
}

func openProducerIDs(fs vfs.FS, dir string) (*producerIDs, error) {
	s := &producerIDs{fs: fs, dir: dir, path: path.Join(dir, producerIDFile)}
	b, err := readFile(fs, s.path)
	switch {
	case b == nil && err == nil:
	case err != nil:
		return nil, fmt.Errorf("replica: read producer id block: %w", err)
	default:
		n, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil || n < 0 {
			return nil, fmt.Errorf("%w: %s holds %q", ErrCorruptProducerIDBlock, s.path, b)
		}
		s.nextID, s.blockEnd = n, n
	}
	return s, nil
}

// readFile returns the contents of name, or nil and no error if it does not
// exist.
func readFile(fs vfs.FS, name string) ([]byte, error) {
	names, err := fs.List(path.Dir(name))
	if err != nil {
		return nil, err
	}
	found := false
	for _, n := range names {
		found = found || n == path.Base(name)
	}
	if !found {
		return nil, nil
	}
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > 64 {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrCorruptProducerIDBlock, name, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

func (s *producerIDs) next() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextID == s.blockEnd {
		if s.blockEnd > (1<<63-1)-producerIDBlock {
			return -1, ErrProducerIDsExhausted
		}
		if err := s.persist(s.blockEnd + producerIDBlock); err != nil {
			return -1, err
		}
		s.blockEnd += producerIDBlock
	}
	id := s.nextID
	s.nextID++
	return id, nil
}

// persist writes end durably: a temporary file, sync, rename, sync of the
// directory.
func (s *producerIDs) persist(end int64) error {
	tmp := s.path + ".tmp"
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("replica: persist producer id block: %w", err)
	}
	_, werr := f.WriteAt([]byte(strconv.FormatInt(end, 10)+"\n"), 0)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("replica: persist producer id block: %w", err)
	}
	if err := s.fs.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replica: persist producer id block: %w", err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("replica: persist producer id block: sync dir: %w", err)
	}
	return nil
}
