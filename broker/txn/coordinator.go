package txn

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/log/batch"
)

// Store is where the coordinator keeps its records: the partitions of
// __transaction_state. Append must return once the batch is committed
// (acks=all).
type Store interface {
	Append(partition int32, batches []byte) error
	Scan(partition int32, fn func(batch.Batch) error) error
}

// Markers writes the end of a transaction to the partitions it touched:
// a commit or abort marker with the producer's id and epoch on every data
// partition, and for the partitions of __consumer_offsets the resolution of
// the transaction's pending offset commits. It returns once they are
// written.
type Markers interface {
	WriteMarkers(producerID int64, epoch int16, commit bool, partitions []TopicPartition) error
}

// Config configures a Coordinator. Zero fields take Kafka's defaults.
type Config struct {
	// Partitions is the partition count of __transaction_state.
	Partitions int32
	// MaxTimeout is transaction.max.timeout.ms (15 min): a longer
	// transaction.timeout.ms is INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// AbortInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms
	// (10 s): how often expired transactions are looked for.
	AbortInterval time.Duration
	// NewProducerID hands out producer ids unique across restarts.
	NewProducerID func() (int64, error)
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger (discard).
	Logger *slog.Logger
}

// ErrClosed: the coordinator is closed (COORDINATOR_NOT_AVAILABLE to
// clients).
var ErrClosed = errors.New("txn: coordinator closed")

// Coordinator is the shell around the core: it owns every transactional
// id's metadata and persists each change before it is visible.
//
// Concurrency: all methods are safe for concurrent use. mu guards the map;
// each entry's mu is held across the persistence and marker writes of one
// request on that id. Lock order: entry.mu, then mu.
type Coordinator struct {
	store   Store
	markers Markers
	cfg     Config

	mu      sync.Mutex
	txns    map[string]*entry
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
}

type entry struct {
	mu sync.Mutex
	m  Metadata
}

// NewCoordinator returns a coordinator over store and markers. Call Load,
// then Start; Close stops it.
func NewCoordinator(store Store, markers Markers, cfg Config) *Coordinator {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 50
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.AbortInterval <= 0 {
		cfg.AbortInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{store: store, markers: markers, cfg: cfg, txns: make(map[string]*entry), stop: make(chan struct{})}
}

// Partitions returns the partition count of __transaction_state.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// Load reads every partition of __transaction_state and then finishes what
// a previous run left: PrepareCommit and PrepareAbort transactions get
// their markers and complete, Ongoing ones are aborted with a bumped epoch,
// so none is left hanging.
func (c *Coordinator) Load() error {
	for p := range c.cfg.Partitions {
		err := c.store.Scan(p, func(b batch.Batch) error {
			if b.IsControl() {
				return nil
			}
			it, err := b.Records(64 << 20)
			if err != nil {
				return fmt.Errorf("txn: %s-%d at %d: %w", Topic, p, b.BaseOffset(), err)
			}
			for it.Next() {
				r := it.Record()
				m, ok, err := decodeRecord(r.Key, r.Value)
				if err != nil {
					c.cfg.Logger.Warn("skip transaction record", "partition", p, "offset", r.Offset, "err", err)
					continue
				}
				if !ok {
					delete(c.txns, m.ID)
					continue
				}
				c.txns[m.ID] = &entry{m: m}
			}
			return it.Err()
		})
		if err != nil {
			return fmt.Errorf("txn: load %s-%d: %w", Topic, p, err)
		}
	}
	now := c.cfg.Now()
	for _, e := range c.txns {
		var err error
		switch e.m.State {
		case PrepareCommit, PrepareAbort:
			err = c.finish(e, e.m, now)
		case Ongoing:
			err = c.finish(e, fence(e.m, now), now)
		}
		if err != nil {
			return fmt.Errorf("txn: recover %q: %w", e.m.ID, err)
		}
	}
	return nil
}

// Start starts the timer that aborts expired transactions.
func (c *Coordinator) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	c.wg.Add(1)
	go c.run()
}

// Close stops the timer. Requests after Close fail with ErrClosed.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

func (c *Coordinator) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.AbortInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.AbortExpired()
		}
	}
}

// AbortExpired aborts, with an epoch bump, every transaction open longer
// than its timeout, and returns how many it aborted.
func (c *Coordinator) AbortExpired() int {
	c.mu.Lock()
	es := make([]*entry, 0, len(c.txns))
	for _, e := range c.txns {
		es = append(es, e)
	}
	c.mu.Unlock()
	n := 0
	for _, e := range es {
		e.mu.Lock()
		now := c.cfg.Now()
		if e.m.State == PrepareCommit || e.m.State == PrepareAbort {
			// Markers that failed earlier (a partition was unavailable).
			if err := c.finish(e, e.m, now); err != nil {
				c.cfg.Logger.Error("complete transaction", "transactional_id", e.m.ID, "err", err)
			}
		} else if expired(&e.m, now) {
			if err := c.finish(e, fence(e.m, now), now); err != nil {
				c.cfg.Logger.Error("abort expired transaction", "transactional_id", e.m.ID, "err", err)
			} else {
				c.cfg.Logger.Info("aborted expired transaction", "transactional_id", e.m.ID)
				n++
			}
		}
		e.mu.Unlock()
	}
	return n
}

// lookup returns the entry of id, creating an empty one when create is set.
func (c *Coordinator) lookup(id string, create bool) (*entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%w: %w", kerr.CoordinatorNotAvailable, ErrClosed)
	}
	e := c.txns[id]
	if e == nil && create {
		e = &entry{m: Metadata{ID: id, ProducerID: -1, Epoch: -1, State: Empty}}
		c.txns[id] = e
	}
	return e, nil
}

// persist writes m and then makes it e's state. Caller holds e.mu.
func (c *Coordinator) persist(e *entry, m Metadata, now time.Time) error {
	b, err := buildBatch(&m, now)
	if err != nil {
		return err
	}
	if err := c.store.Append(PartitionFor(m.ID, c.cfg.Partitions), b); err != nil {
		return fmt.Errorf("txn: write state of %q: %w", m.ID, err)
	}
	e.m = m
	return nil
}

// finish persists a Prepare* state, writes the markers and persists the
// Complete* state. Caller holds e.mu.
func (c *Coordinator) finish(e *entry, prepared Metadata, now time.Time) error {
	if err := c.persist(e, prepared, now); err != nil {
		return err
	}
	commit := prepared.State == PrepareCommit
	if err := c.markers.WriteMarkers(prepared.ProducerID, prepared.Epoch, commit, prepared.Partitions); err != nil {
		return fmt.Errorf("txn: markers of %q: %w", prepared.ID, err)
	}
	return c.persist(e, complete(prepared, now), now)
}

// InitProducerID serves InitProducerId for a transactional id: a new id
// gets a producer id at epoch 0; a known one has its open transaction
// aborted and its epoch bumped, which fences the previous producer.
// pid and epoch are the request's (KIP-360), -1 when absent.
func (c *Coordinator) InitProducerID(id string, timeoutMs int32, pid int64, epoch int16) (int64, int16, error) {
	timeout := time.Duration(timeoutMs) * time.Millisecond
	if timeoutMs <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, fmt.Errorf("%w: %d ms, maximum %s", kerr.InvalidTransactionTimeout, timeoutMs, c.cfg.MaxTimeout)
	}
	e, err := c.lookup(id, true)
	if err != nil {
		return -1, -1, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.cfg.Now()
	m := e.m.clone()
	if pid >= 0 && m.ProducerID >= 0 && (pid != m.ProducerID || epoch != m.Epoch && !(m.Bumped && epoch == m.Epoch-1)) {
		return -1, -1, fmt.Errorf("%w: transactional id %q is producer %d epoch %d, not %d/%d",
			kerr.ProducerFenced, id, m.ProducerID, m.Epoch, pid, epoch)
	}
	switch m.State {
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return -1, -1, fmt.Errorf("%w: transactional id %q is %s", kerr.ConcurrentTransactions, id, m.State)
	case Ongoing:
		if err := c.finish(e, fence(m, now), now); err != nil {
			return -1, -1, err
		}
		m = e.m.clone()
	}
	if m.ProducerID < 0 || epochExhausted(&m) {
		newID, err := c.cfg.NewProducerID()
		if err != nil {
			return -1, -1, fmt.Errorf("txn: new producer id for %q: %w", id, err)
		}
		m.ProducerID, m.Epoch = newID, 0
	} else {
		m.Epoch++
	}
	m.State, m.Timeout, m.Partitions, m.LastUpdate, m.Bumped = Empty, timeout, nil, now, false
	if err := c.persist(e, m, now); err != nil {
		return -1, -1, err
	}
	return m.ProducerID, m.Epoch, nil
}

// AddPartitions adds partitions to id's transaction, starting it if needed.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, tps []TopicPartition) error {
	e, err := c.lookup(id, false)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%w: unknown transactional id %q", kerr.InvalidProducerIDMapping, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.cfg.Now()
	m, err := addPartitions(e.m, pid, epoch, tps, now)
	if err != nil {
		return err
	}
	if m.State == e.m.State && len(m.Partitions) == len(e.m.Partitions) {
		return nil // nothing new to persist
	}
	return c.persist(e, m, now)
}

// EndTxn commits or aborts id's ongoing transaction: it persists the
// prepared state, writes the markers and persists the completed state
// before returning.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit bool) error {
	e, err := c.lookup(id, false)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%w: unknown transactional id %q", kerr.InvalidProducerIDMapping, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	act, err := endTxn(&e.m, pid, epoch, commit)
	if err != nil || act == endDone {
		return err
	}
	now := c.cfg.Now()
	return c.finish(e, prepare(e.m, commit, now), now)
}

// Verify checks that a transactional write by (pid, epoch) to tp belongs to
// id's ongoing transaction (the partition must have been added, or the
// write is INVALID_TXN_STATE, as Kafka answers) and then runs write, if not
// nil, while the transaction cannot end: a marker never lands before a
// write it should cover.
func (c *Coordinator) Verify(id string, pid int64, epoch int16, tp TopicPartition, write func() error) error {
	e, err := c.lookup(id, false)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%w: unknown transactional id %q", kerr.InvalidTxnState, id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := checkProducer(&e.m, pid, epoch); err != nil {
		return err
	}
	if e.m.State != Ongoing {
		return fmt.Errorf("%w: transactional id %q is %s", kerr.InvalidTxnState, id, e.m.State)
	}
	if _, ok := slices.BinarySearchFunc(e.m.Partitions, tp, compareTP); !ok {
		return fmt.Errorf("%w: %s-%d is not in the transaction of %q", kerr.InvalidTxnState, tp.Topic, tp.Partition, id)
	}
	if write != nil {
		return write()
	}
	return nil
}

// Describe returns id's metadata.
func (c *Coordinator) Describe(id string) (Metadata, bool) {
	e, err := c.lookup(id, false)
	if err != nil || e == nil {
		return Metadata{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m.clone(), true
}

// List returns the metadata of every transactional id, sorted by id.
func (c *Coordinator) List() []Metadata {
	c.mu.Lock()
	es := make([]*entry, 0, len(c.txns))
	for _, e := range c.txns {
		es = append(es, e)
	}
	c.mu.Unlock()
	out := make([]Metadata, 0, len(es))
	for _, e := range es {
		e.mu.Lock()
		out = append(out, e.m.clone())
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Metadata) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
