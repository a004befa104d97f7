package metadata

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Store owns the current Image. The single-node FileStore and, later, the
// raft controller implement it.
type Store interface {
	// Image returns the current image; it never blocks.
	Image() *Image
	// Apply applies recs atomically (all or none), makes the result
	// durable, swaps it in and returns it.
	Apply(recs ...Record) (*Image, error)
}

// FileName is the name of the FileStore's file in the data directory.
const FileName = "weir-metadata.json"

// ErrCorrupt is returned when the metadata file cannot be decoded.
var ErrCorrupt = errors.New("metadata: corrupt metadata file")

// FileStore is a Store for one node that keeps the image in one JSON file,
// rewritten whole on every change (write a temporary file, fsync it, rename
// it over the old one, fsync the directory), so a crash leaves either the old
// or the new image. Image is lock-free; Apply calls are serialised.
type FileStore struct {
	dir string
	mu  sync.Mutex // serialises Apply
	cur atomic.Pointer[Image]
}

// OpenFileStore loads the image from dir, or creates a new cluster with a
// random cluster id and controller nodeID if dir has none.
func OpenFileStore(dir string, nodeID int32) (*FileStore, error) {
	s := &FileStore{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		im := NewImage(NewUUID().String(), nodeID)
		if err := s.write(im); err != nil {
			return nil, err
		}
		s.cur.Store(im)
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("metadata: read %s: %w", FileName, err)
	}
	im, err := decodeImage(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, FileName, err)
	}
	s.cur.Store(im)
	return s, nil
}

// Image returns the current image.
func (s *FileStore) Image() *Image { return s.cur.Load() }

// Apply applies recs, persists the result and swaps it in.
func (s *FileStore) Apply(recs ...Record) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.cur.Load().Apply(recs...)
	if err != nil {
		return nil, err
	}
	if err := s.write(next); err != nil {
		return nil, err
	}
	s.cur.Store(next)
	return next, nil
}

func (s *FileStore) write(im *Image) error {
	b, err := encodeImage(im)
	if err != nil {
		return fmt.Errorf("metadata: encode: %w", err)
	}
	path := filepath.Join(s.dir, FileName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("metadata: write: %w", err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("metadata: write %s: %w", FileName, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileFormat is the JSON layout of the metadata file.
type fileFormat struct {
	Format       int         `json:"format"`
	ClusterID    string      `json:"cluster_id"`
	ControllerID int32       `json:"controller_id"`
	Version      int64       `json:"metadata_version"`
	Brokers      []Broker    `json:"brokers"`
	Topics       []fileTopic `json:"topics"`
	// BrokerConfigs are the dynamic broker configs by resource ("" is the
	// cluster-wide default, a node id one broker). Files written before
	// they existed have none.
	BrokerConfigs map[string]map[string]string `json:"broker_configs,omitempty"`
}

type fileTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

func encodeImage(im *Image) ([]byte, error) {
	f := fileFormat{Format: 1, ClusterID: im.ClusterID, ControllerID: im.ControllerID, Version: im.Version, Brokers: im.brokers}
	if len(im.brokerConfigs) > 0 {
		f.BrokerConfigs = im.brokerConfigs
	}
	for _, t := range im.Topics() {
		f.Topics = append(f.Topics, fileTopic{Name: t.Name, ID: t.ID.String(), Partitions: t.Partitions, Configs: t.Configs})
	}
	return json.MarshalIndent(f, "", "  ")
}

func decodeImage(b []byte) (*Image, error) {
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Format != 1 {
		return nil, fmt.Errorf("format %d, want 1", f.Format)
	}
	im := NewImage(f.ClusterID, f.ControllerID)
	var recs []Record
	for _, b := range f.Brokers {
		recs = append(recs, RegisterBroker{Broker: b})
	}
	for _, t := range f.Topics {
		raw, err := base64.RawURLEncoding.DecodeString(t.ID)
		if err != nil || len(raw) != 16 {
			return nil, fmt.Errorf("topic %s: bad id %q", t.Name, t.ID)
		}
		recs = append(recs, CreateTopic{Name: t.Name, ID: UUID(raw), Partitions: t.Partitions, Configs: t.Configs})
	}
	for _, res := range slices.Sorted(maps.Keys(f.BrokerConfigs)) {
		recs = append(recs, SetBrokerConfigs{Broker: res, Configs: f.BrokerConfigs[res]})
	}
	im, err := im.Apply(recs...)
	if err != nil {
		return nil, err
	}
	im.Version = f.Version
	return im, nil
}
