// Package replica keeps the partitions a broker hosts and the leader state
// Kafka keeps beside each log: the leader epoch stamped into batches, the
// in-sync replica set, the high watermark (the smallest log end offset over
// the ISR) and the last stable offset. It owns the two purgatories where
// acks=all produces and long-poll fetches wait, and the producer id block
// that InitProducerId draws from.
//
// Partition directories are <data-dir>/<topic>-<partition>/, as in Kafka.
package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-broker/weir/broker/internal/purgatory"
	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/vfs"
)

// ErrClosed is returned by a Manager after Close.
var ErrClosed = errors.New("replica: manager closed")

// ErrPartitionExists is returned by CreatePartition for a partition already
// hosted (TOPIC_ALREADY_EXISTS).
var ErrPartitionExists = errors.New("replica: partition already exists")

// ManagerConfig holds a Manager's dependencies and settings.
type ManagerConfig struct {
	DataDir    string           // parent of the partition directories
	BrokerID   int32            // this broker's id, the leader in every ISR it starts
	Defaults   Config           // configuration of partitions found at start and of new ones
	LogOptions log.Options      // FS, clock, logger and fsync policy handed to every log
	Logger     *slog.Logger     // nil: slog.Default()
	Now        func() time.Time // nil: time.Now
}

// Validate checks the configuration.
func (c ManagerConfig) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: empty data dir", ErrInvalidConfig)
	}
	if c.BrokerID < 0 {
		return fmt.Errorf("%w: broker id %d", ErrInvalidConfig, c.BrokerID)
	}
	return c.Defaults.Validate()
}

// Manager hosts the partitions of one broker.
//
// Concurrency: safe for concurrent use. mu guards the partition map only;
// it is never held while a log is opened, closed or written, except by
// NewManager, CreatePartition and Close (lock order: Manager.mu, then
// Partition.mu).
type Manager struct {
	cfg     ManagerConfig
	logger  *slog.Logger
	now     func() time.Time
	produce *purgatory.Purgatory[TopicPartition]
	fetch   *purgatory.Purgatory[TopicPartition]
	ids     *producerIDs

	mu         sync.RWMutex
	partitions map[TopicPartition]*Partition
	closed     bool
}

// NewManager opens every partition directory under cfg.DataDir, creating the
// directory if needed, and starts the purgatories' timer.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Defaults == (Config{}) {
		cfg.Defaults = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogOptions.FS == nil {
		cfg.LogOptions.FS = vfs.OS{}
	}
	fs := cfg.LogOptions.FS
	if err := fs.MkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("replica: create data dir: %w", err)
	}
	ids, err := openProducerIDs(fs, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:        cfg,
		logger:     cfg.Logger,
		now:        cfg.Now,
		produce:    purgatory.New[TopicPartition](cfg.Now),
		fetch:      purgatory.New[TopicPartition](cfg.Now),
		ids:        ids,
		partitions: map[TopicPartition]*Partition{},
	}
	names, err := fs.List(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("replica: list data dir: %w", err)
	}
	for _, name := range names {
		tp, ok := parseDirName(name)
		if !ok {
			continue
		}
		if _, err := m.open(tp, cfg.Defaults); err != nil {
			m.closePartitions()
			return nil, err
		}
	}
	m.produce.Start()
	m.fetch.Start()
	return m, nil
}

// parseDirName splits "<topic>-<partition>" at the last dash.
func parseDirName(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != name[i+1:] {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: name[:i], Partition: int32(n)}, true
}

// open opens (or creates) the log of tp and registers it. The caller holds
// mu or has not published m yet.
func (m *Manager) open(tp TopicPartition, cfg Config) (*Partition, error) {
	dir := filepath.Join(m.cfg.DataDir, tp.String())
	l, err := log.Open(dir, cfg.Log, m.cfg.LogOptions)
	if err != nil {
		return nil, fmt.Errorf("replica: open %s: %w", tp, err)
	}
	p := newPartition(tp, l, cfg, m.cfg.BrokerID, m.now, m.notify)
	m.partitions[tp] = p
	return p, nil
}

// notify wakes the operations waiting on tp after its high watermark moved or
// it closed.
func (m *Manager) notify(tp TopicPartition) {
	m.produce.Check(tp)
	m.fetch.Check(tp)
}

// CreatePartition creates the directory and log of a new partition with the
// given log configuration and the manager's defaults for the rest.
func (m *Manager) CreatePartition(topic string, partition int32, cfg log.Config) (*Partition, error) {
	c := m.cfg.Defaults
	c.Log = cfg
	return m.CreatePartitionConfig(topic, partition, c)
}

// CreatePartitionConfig is CreatePartition with a full configuration,
// including the broker-enforced topic configs.
func (m *Manager) CreatePartitionConfig(topic string, partition int32, cfg Config) (*Partition, error) {
	tp := TopicPartition{Topic: topic, Partition: partition}
	if err := validTopicName(topic); err != nil {
		return nil, err
	}
	if partition < 0 {
		return nil, fmt.Errorf("%w: partition %d", ErrInvalidConfig, partition)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replica: create %s: %w", tp, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.partitions[tp]; ok {
		return nil, fmt.Errorf("replica: create %s: %w", tp, ErrPartitionExists)
	}
	return m.open(tp, cfg)
}

// ErrInvalidTopic is returned for a topic name Kafka would reject
// (INVALID_TOPIC_EXCEPTION).
var ErrInvalidTopic = errors.New("replica: invalid topic name")

// validTopicName applies Kafka's rules: 1..249 characters of [a-zA-Z0-9._-],
// not "." or "..".
func validTopicName(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has %q", ErrInvalidTopic, t, c)
		}
	}
	return nil
}

// Partition returns the hosted partition, if any.
func (m *Manager) Partition(topic string, partition int32) (*Partition, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.partitions[TopicPartition{Topic: topic, Partition: partition}]
	return p, ok
}

// Partitions returns every hosted partition, sorted by topic then partition.
func (m *Manager) Partitions() []*Partition {
	m.mu.RLock()
	out := make([]*Partition, 0, len(m.partitions))
	for _, p := range m.partitions {
		out = append(out, p)
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Partition) int {
		if c := strings.Compare(a.tp.Topic, b.tp.Topic); c != 0 {
			return c
		}
		return int(a.tp.Partition - b.tp.Partition)
	})
	return out
}

// DeleteTopic closes every partition of topic and removes its directories.
// Requests waiting on them complete with ErrPartitionClosed.
func (m *Manager) DeleteTopic(topic string) error {
	m.mu.Lock()
	var gone []*Partition
	for tp, p := range m.partitions {
		if tp.Topic == topic {
			gone = append(gone, p)
			delete(m.partitions, tp)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, p := range gone {
		errs = append(errs, p.close(true))
	}
	return errors.Join(errs...)
}

// DelayProduce parks an acks=all produce until a Check on one of tps
// completes it or deadline passes; see purgatory.Purgatory.Watch.
func (m *Manager) DelayProduce(op purgatory.Operation, deadline time.Time, tps []TopicPartition) bool {
	return m.produce.Watch(op, deadline, tps...)
}

// DelayFetch parks a long-poll fetch until new committed data on one of tps
// completes it or deadline passes.
func (m *Manager) DelayFetch(op purgatory.Operation, deadline time.Time, tps []TopicPartition) bool {
	return m.fetch.Watch(op, deadline, tps...)
}

// Waiting returns how many produce and fetch requests wait in the
// purgatories, for metrics and tests.
func (m *Manager) Waiting() (produce, fetch int) { return m.produce.Len(), m.fetch.Len() }

// ExpireWaiting answers every parked produce and fetch now, as if its
// deadline had passed. A server calls it while draining for shutdown, so
// connections need not wait out long polls.
func (m *Manager) ExpireWaiting() {
	m.produce.ExpireAll()
	m.fetch.ExpireAll()
}

// Now returns the manager's clock reading.
func (m *Manager) Now() time.Time { return m.now() }

// NextProducerID returns a producer id never handed out before by this data
// directory, across restarts.
func (m *Manager) NextProducerID() (int64, error) { return m.ids.next() }

// Close answers every waiting request (as expired), then closes every
// partition cleanly. Later calls return ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.closed = true
	m.mu.Unlock()
	m.produce.Close()
	m.fetch.Close()
	return m.closePartitions()
}

func (m *Manager) closePartitions() error {
	m.mu.Lock()
	ps := make([]*Partition, 0, len(m.partitions))
	for _, p := range m.partitions {
		ps = append(ps, p)
	}
	clear(m.partitions)
	m.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.close(false))
	}
	return errors.Join(errs...)
}
