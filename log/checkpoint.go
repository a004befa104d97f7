package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weir-broker/weir/log/vfs"
)

// Checkpoint and marker file names inside a partition directory.
const (
	recoveryPointCheckpoint = "recovery-point-offset-checkpoint"
	logStartCheckpoint      = "log-start-offset-checkpoint"
	leaderEpochCheckpoint   = "leader-epoch-checkpoint"
	cleanShutdownMarker     = ".weir_cleanshutdown"
	checkpointVersion       = 0
)

// writeFileAtomic writes data to name through a temporary file, fsyncs it,
// renames it into place and fsyncs the directory.
func writeFileAtomic(fs vfs.FS, dir, name string, data []byte) error {
	final := filepath.Join(dir, name)
	tmp := final + tmpSuffix
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("log: write %s: %w", name, err)
	}
	_, werr := f.WriteAt(data, 0)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = fs.Rename(tmp, final)
	}
	if werr == nil {
		werr = fs.SyncDir(dir)
	}
	if werr != nil {
		return fmt.Errorf("log: write %s: %w", name, werr)
	}
	return nil
}

// readFile reads a whole small file.
func readFile(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); int64(n) < size {
		return nil, err
	}
	return buf, nil
}

// encodeCheckpoint writes Kafka's checkpoint text format: a version line, a
// count line, then one entry per line.
func encodeCheckpoint(entries [][2]int64, single bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", checkpointVersion, len(entries))
	for _, e := range entries {
		if single {
			fmt.Fprintf(&b, "%d\n", e[1])
		} else {
			fmt.Fprintf(&b, "%d %d\n", e[0], e[1])
		}
	}
	return b.Bytes()
}

var errBadCheckpoint = errors.New("log: malformed checkpoint")

// decodeCheckpoint parses encodeCheckpoint's format; fields is 1 or 2.
func decodeCheckpoint(data []byte, fields int) ([][2]int64, error) {
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 || lines[0] != strconv.Itoa(checkpointVersion) {
		return nil, fmt.Errorf("%w: bad version line", errBadCheckpoint)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 || n > len(lines)-2 {
		return nil, fmt.Errorf("%w: bad count line", errBadCheckpoint)
	}
	if len(lines) != n+3 || lines[n+2] != "" {
		return nil, fmt.Errorf("%w: %d entries announced, file has %d lines", errBadCheckpoint, n, len(lines))
	}
	out := make([][2]int64, n)
	for i := range n {
		parts := strings.Fields(lines[i+2])
		if len(parts) != fields {
			return nil, fmt.Errorf("%w: entry %d", errBadCheckpoint, i)
		}
		for j, s := range parts {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%w: entry %d", errBadCheckpoint, i)
			}
			out[i][2-fields+j] = v
		}
	}
	return out, nil
}

// writeOffsetCheckpoint stores a single offset under name.
func (p *Partition) writeOffsetCheckpoint(name string, off int64) error {
	return writeFileAtomic(p.fs, p.dir, name, encodeCheckpoint([][2]int64{{0, off}}, true))
}

// readOffsetCheckpoint reads a single-offset checkpoint; ok is false if the
// file is missing, err non-nil if it is damaged.
func readOffsetCheckpoint(fs vfs.FS, dir, name string) (off int64, ok bool, err error) {
	data, err := readFile(fs, filepath.Join(dir, name))
	if errors.Is(err, vfs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("log: read %s: %w", name, err)
	}
	e, err := decodeCheckpoint(data, 1)
	if err != nil || len(e) != 1 {
		return 0, false, fmt.Errorf("log: %s: %w", name, errBadCheckpoint)
	}
	return e[0][1], true, nil
}

// writeMarker leaves the clean-shutdown marker.
func (p *Partition) writeMarker() error {
	return writeFileAtomic(p.fs, p.dir, cleanShutdownMarker, nil)
}
