package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/broker/internal/purgatory"
	"github.com/weir-broker/weir/log/batch"
)

// Topic is the name of the internal offsets topic.
const Topic = "__consumer_offsets"

// ErrClosed is returned by a closed coordinator.
var ErrClosed = errors.New("group: coordinator closed")

// Store is the coordinator's access to the partitions of the offsets topic.
type Store interface {
	// Append writes record batches to a partition of the offsets topic and
	// returns once they are committed (acks=all).
	Append(partition int32, batches []byte) error
	// Scan calls fn for each committed batch of a partition, from its
	// start, in offset order.
	Scan(partition int32, fn func(b batch.Batch) error) error
}

// Config configures a Coordinator. Zero fields take Kafka's defaults.
type Config struct {
	// Partitions is the partition count of the offsets topic
	// (offsets.topic.num.partitions, 50).
	Partitions int32
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms (0 here,
	// Kafka's broker default is 3 s).
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms
	// (30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes (7 days).
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms (10 min).
	RetentionCheckInterval time.Duration
	// MaxOffsetMetadata is offset.metadata.max.bytes (4096).
	MaxOffsetMetadata int
	// MaxMemberMetadata caps one member's protocol metadata and one
	// assignment (1 MiB).
	MaxMemberMetadata int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives the coordinator's logs; nil discards them.
	Logger *slog.Logger
	// NewMemberID makes member ids: client id, "-", a random UUID (Kafka's
	// form) by default.
	NewMemberID func(clientID string) string
}

func (c *Config) setDefaults() {
	if c.Partitions <= 0 {
		c.Partitions = 50
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = 10 * time.Minute
	}
	if c.MaxOffsetMetadata <= 0 {
		c.MaxOffsetMetadata = 4096
	}
	if c.MaxMemberMetadata <= 0 {
		c.MaxMemberMetadata = 1 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NewMemberID == nil {
		c.NewMemberID = randomMemberID
	}
}

func randomMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return clientID + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// PartitionFor returns the partition of the offsets topic that holds a
// group: abs(Java's String.hashCode(group)) mod partitions, as Kafka computes
// it (Utils.abs maps MinInt32 to 0). It is 0 when partitions is not
// positive.
func PartitionFor(group string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// entry is one group with its lock and scheduling state.
type entry struct {
	mu   sync.Mutex
	g    *Group
	next time.Time // the deadline scheduled for it; guarded by Coordinator.timerMu
}

// Coordinator serves the groups of this broker. Its methods are safe for
// concurrent use; requests for one group are serialised by the group's
// lock, which is held across the append of the group's records so that
// the log and memory agree on their order.
type Coordinator struct {
	cfg   Config
	rules Rules
	store Store

	mu     sync.Mutex
	groups map[string]*entry
	closed bool

	waiting *purgatory.Purgatory[ReplyID]
	ops     sync.Map // ReplyID -> *waitOp
	nextID  atomic.Uint64

	txn txnOffsets // offsets of open transactions (shell_txn.go)

	timerMu sync.Mutex
	timers  timerHeap
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
}

// NewCoordinator returns a coordinator over store. Call Load, then Start.
func NewCoordinator(store Store, cfg Config) *Coordinator {
	cfg.setDefaults()
	return &Coordinator{
		cfg:   cfg,
		store: store,
		rules: Rules{
			InitialRebalanceDelay: cfg.InitialRebalanceDelay,
			MinSessionTimeout:     cfg.MinSessionTimeout,
			MaxSessionTimeout:     cfg.MaxSessionTimeout,
			MaxMemberMetadata:     cfg.MaxMemberMetadata,
			MaxOffsetMetadata:     cfg.MaxOffsetMetadata,
			NewMemberID:           cfg.NewMemberID,
		},
		groups:  map[string]*entry{},
		waiting: purgatory.New[ReplyID](cfg.Now),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
}

// Partitions returns the partition count of the offsets topic.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// Load reads every partition of the offsets topic and rebuilds the groups
// and their offsets; tombstones delete. Undecodable records are skipped and
// logged.
func (c *Coordinator) Load() error {
	now := c.cfg.Now()
	bad := 0
	for p := range c.cfg.Partitions {
		var it batch.Iter
		err := c.store.Scan(p, func(b batch.Batch) error {
			if b.IsControl() {
				c.loadMarker(p, b, now)
				return nil
			}
			if err := it.Reset(b, 64<<20); err != nil {
				return fmt.Errorf("group: load partition %d at %d: %w", p, b.BaseOffset(), err)
			}
			for it.Next() {
				r := it.Record()
				l, err := decodeRecord(r.Key, r.Value)
				if err != nil {
					bad++
					continue
				}
				l.timestamp = time.UnixMilli(r.Timestamp)
				if b.IsTransactional() && l.isOffset && l.offset != nil {
					c.txn.stage(b.ProducerID(), l.group, l.tp, *l.offset)
					continue
				}
				c.apply(l, now)
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("group: load partition %d at %d: %w", p, b.BaseOffset(), err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if bad > 0 {
		c.cfg.Logger.Warn("offsets topic: undecodable records skipped", "count", bad)
	}
	c.mu.Lock()
	for id, e := range c.groups {
		if e.g.Removable() && e.g.generation == 0 {
			delete(c.groups, id)
			continue
		}
		c.schedule(e, e.g.NextDeadline())
	}
	n := len(c.groups)
	c.mu.Unlock()
	c.cfg.Logger.Info("groups loaded", "groups", n)
	return nil
}

// apply replays one record at load.
func (c *Coordinator) apply(l loaded, now time.Time) {
	e := c.groups[l.group]
	switch {
	case l.isOffset && l.offset == nil:
		if e != nil {
			e.g.DeleteOffset(l.tp)
		}
	case l.isOffset:
		if e == nil {
			e = &entry{g: New(l.group, &c.rules, now)}
			c.groups[l.group] = e
		}
		e.g.offsets[l.tp] = *l.offset
	case l.metadata == nil:
		delete(c.groups, l.group)
	default:
		if e == nil {
			e = &entry{g: New(l.group, &c.rules, now)}
			c.groups[l.group] = e
		}
		e.g.restore(l.metadata, l.timestamp, now)
	}
}

// Start starts the timer goroutine (session and rebalance timeouts, offset
// expiry) and the purgatory's.
func (c *Coordinator) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	c.waiting.Start()
	c.wg.Add(1)
	go c.run()
}

// Close stops the goroutines and answers every waiting request with
// COORDINATOR_NOT_AVAILABLE (clients look for the coordinator again).
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	if started {
		close(c.stop)
		c.wg.Wait()
	}
	c.waiting.Close()
	return nil
}

// lookup returns a group's entry; create makes a missing one.
func (c *Coordinator) lookup(id string, create bool) (*entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%w: %w", kerr.CoordinatorNotAvailable, ErrClosed)
	}
	e := c.groups[id]
	if e == nil && create {
		e = &entry{g: New(id, &c.rules, c.cfg.Now())}
		c.groups[id] = e
	}
	return e, nil
}

// step runs one core event on a group under its lock, writes the group's
// metadata if asked, reschedules its timer and delivers the replies.
func (c *Coordinator) step(e *entry, event func(now time.Time) Effects) {
	e.mu.Lock()
	now := c.cfg.Now()
	fx := event(now)
	if fx.Persist {
		if err := c.persistGroup(e.g, now); err != nil {
			c.cfg.Logger.Error("write group metadata", "group", e.g.ID, "err", err)
			failPersist(fx.Replies, err)
		}
	}
	c.schedule(e, e.g.NextDeadline())
	e.mu.Unlock()
	c.dispatch(fx.Replies)
}

// failPersist turns successful sync answers into errors when the group's
// assignment could not be written: the members rejoin.
func failPersist(replies []Reply, err error) {
	for i := range replies {
		if s := replies[i].Sync; s != nil && s.Err == nil {
			replies[i].Sync = &SyncResult{Err: fmt.Errorf("%w: %w", kerr.CoordinatorNotAvailable, err)}
		}
	}
}

func (c *Coordinator) persistGroup(g *Group, now time.Time) error {
	rec := groupRecord(g, now)
	b, err := buildBatch([]batch.Record{rec})
	if err != nil {
		return err
	}
	return c.append(g.ID, b)
}

func (c *Coordinator) append(group string, b []byte) error {
	if err := c.store.Append(PartitionFor(group, c.cfg.Partitions), b); err != nil {
		return fmt.Errorf("group: append to %s: %w", Topic, err)
	}
	return nil
}
