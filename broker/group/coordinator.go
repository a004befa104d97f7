package group

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
// it (Utils.abs maps MinInt32 to 0).
func PartitionFor(group string, partitions int32) int32 {
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
		e.g.restore(l.metadata, now)
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

// waitOp is a JoinGroup or SyncGroup parked in the purgatory until the core
// answers it.
type waitOp struct {
	c      *Coordinator
	id     ReplyID
	result atomic.Pointer[Reply]
	join   func(JoinResult)
	sync   func(SyncResult)
}

// TryComplete implements purgatory.Operation: done once the core answered.
func (o *waitOp) TryComplete() bool { return o.result.Load() != nil }

// OnComplete implements purgatory.Operation: it delivers the answer, or
// COORDINATOR_NOT_AVAILABLE when none came (deadline, Close).
func (o *waitOp) OnComplete(expired bool) {
	o.c.ops.Delete(o.id)
	r := o.result.Load()
	if r == nil {
		// Deadline passed or the coordinator closed without an answer.
		r = &Reply{Join: &JoinResult{Err: kerr.CoordinatorNotAvailable, Generation: -1},
			Sync: &SyncResult{Err: kerr.CoordinatorNotAvailable}}
	}
	if o.join != nil {
		if r.Join == nil {
			r.Join = &JoinResult{Err: kerr.UnknownServerError, Generation: -1}
		}
		o.join(*r.Join)
	} else {
		if r.Sync == nil {
			r.Sync = &SyncResult{Err: kerr.UnknownServerError}
		}
		o.sync(*r.Sync)
	}
}

// park registers a waiting request and returns its reply id.
func (c *Coordinator) park(op *waitOp, wait time.Duration) ReplyID {
	op.c = c
	op.id = ReplyID(c.nextID.Add(1))
	c.ops.Store(op.id, op)
	// The core answers within the rebalance timeout; the deadline here is
	// a backstop so that no request waits forever.
	c.waiting.Watch(op, c.cfg.Now().Add(wait+30*time.Second), op.id)
	return op.id
}

// dispatch delivers the core's replies to the parked requests.
func (c *Coordinator) dispatch(replies []Reply) {
	for i := range replies {
		r := replies[i]
		v, ok := c.ops.Load(r.To)
		if !ok {
			continue
		}
		v.(*waitOp).result.Store(&r)
		c.waiting.Check(r.To)
	}
}

// Join handles a JoinGroup; done is called exactly once, possibly later
// from another goroutine.
func (c *Coordinator) Join(group string, req JoinRequest, done func(JoinResult)) {
	if group == "" {
		done(joinError(kerr.InvalidGroupID, req.MemberID))
		return
	}
	e, err := c.lookup(group, req.MemberID == "")
	if err != nil || e == nil {
		if err == nil {
			err = kerr.UnknownMemberID
		}
		done(joinError(err, req.MemberID))
		return
	}
	req.Reply = c.park(&waitOp{join: done}, max(req.RebalanceTimeout, req.SessionTimeout))
	c.step(e, func(now time.Time) Effects { return e.g.Join(now, req) })
	c.dropIfUnused(e)
}

// dropIfUnused forgets a group that a refused join created: nothing in it,
// never a generation. It is marked Dead first, so a request holding the
// entry answers COORDINATOR_NOT_AVAILABLE and looks again.
func (c *Coordinator) dropIfUnused(e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.g.Removable() || e.g.generation != 0 || len(e.g.members) > 0 {
		return
	}
	e.g.MarkDead(c.cfg.Now())
	c.mu.Lock()
	if c.groups[e.g.ID] == e {
		delete(c.groups, e.g.ID)
	}
	c.mu.Unlock()
}

// Sync handles a SyncGroup; done is called exactly once.
func (c *Coordinator) Sync(group string, req SyncRequest, done func(SyncResult)) {
	e, err := c.lookup(group, false)
	if err != nil || e == nil {
		if err == nil {
			err = kerr.UnknownMemberID
		}
		done(SyncResult{Err: err})
		return
	}
	req.Reply = c.park(&waitOp{sync: done}, c.cfg.MaxSessionTimeout)
	c.step(e, func(now time.Time) Effects { return e.g.Sync(now, req) })
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

// Heartbeat handles a Heartbeat.
func (c *Coordinator) Heartbeat(group, memberID, instanceID string, generation int32) error {
	e, err := c.lookup(group, false)
	if err != nil {
		return err
	}
	if e == nil {
		return kerr.UnknownMemberID
	}
	var herr error
	c.step(e, func(now time.Time) Effects {
		herr = e.g.Heartbeat(now, memberID, instanceID, generation)
		return Effects{}
	})
	return herr
}

// Leave handles a LeaveGroup: one error per member.
func (c *Coordinator) Leave(group string, members []LeaveMember) ([]error, error) {
	e, err := c.lookup(group, false)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, kerr.UnknownMemberID
	}
	var errs []error
	c.step(e, func(now time.Time) Effects {
		var fx Effects
		errs, fx = e.g.Leave(now, members)
		return fx
	})
	return errs, nil
}

// Commit is one partition's offset commit.
type Commit struct {
	TopicPartition
	Offset
}

// CommitOffsets handles an OffsetCommit: it validates the member, appends
// the offsets to the offsets topic and, once they are committed, makes them
// visible. It returns one error per commit (nil for the stored ones), or a
// group-level error.
func (c *Coordinator) CommitOffsets(group string, generation int32, memberID, instanceID string, commits []Commit) ([]error, error) {
	if group == "" {
		return nil, kerr.InvalidGroupID
	}
	e, err := c.lookup(group, generation < 0)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, kerr.IllegalGeneration
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.cfg.Now()
	if err := e.g.CheckCommit(generation, memberID, instanceID); err != nil {
		return nil, err
	}
	errs := make([]error, len(commits))
	recs := make([]batch.Record, 0, len(commits))
	for i := range commits {
		if err := e.g.CheckOffsetMetadata(commits[i].Metadata); err != nil {
			errs[i] = err
			continue
		}
		commits[i].CommitTime = now
		recs = append(recs, offsetRecord(group, commits[i].TopicPartition, commits[i].Offset))
	}
	if len(recs) == 0 {
		return errs, nil
	}
	b, err := buildBatch(recs)
	if err == nil {
		err = c.append(group, b)
	}
	for i := range commits {
		switch {
		case errs[i] != nil:
		case err != nil:
			errs[i] = err
		default:
			e.g.Commit(now, memberID, commits[i].TopicPartition, commits[i].Offset)
		}
	}
	return errs, nil
}

// FetchOffsets returns a group's committed offsets for tps, or all of them
// when tps is nil. Partitions without a commit are absent.
func (c *Coordinator) FetchOffsets(group string, tps []TopicPartition) ([]TopicOffset, error) {
	e, err := c.lookup(group, false)
	if err != nil || e == nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if tps == nil {
		return e.g.Offsets(), nil
	}
	out := make([]TopicOffset, 0, len(tps))
	for _, tp := range tps {
		if o, ok := e.g.Offset(tp); ok {
			out = append(out, TopicOffset{TopicPartition: tp, Offset: o})
		}
	}
	return out, nil
}

// Description is a group as DescribeGroups reports it.
type Description struct {
	ID           string
	State        State
	ProtocolType string
	Protocol     string
	Generation   int32
	Leader       string
	Members      []Member
}

// Describe returns a group; ok is false for an unknown group.
func (c *Coordinator) Describe(group string) (Description, bool, error) {
	e, err := c.lookup(group, false)
	if err != nil || e == nil {
		return Description{ID: group, State: Dead}, false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.g
	return Description{ID: group, State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol,
		Generation: g.generation, Leader: g.leader, Members: g.Members()}, true, nil
}

// Listing is one group as ListGroups reports it.
type Listing struct {
	ID, ProtocolType string
	State            State
}

// List returns every group, sorted by id.
func (c *Coordinator) List() ([]Listing, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, kerr.CoordinatorNotAvailable
	}
	es := make([]*entry, 0, len(c.groups))
	for _, e := range c.groups {
		es = append(es, e)
	}
	c.mu.Unlock()
	out := make([]Listing, 0, len(es))
	for _, e := range es {
		e.mu.Lock()
		if e.g.state != Dead {
			out = append(out, Listing{ID: e.g.ID, ProtocolType: e.g.protocolType, State: e.g.state})
		}
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Listing) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}

// DeleteGroup deletes an empty group and its offsets (tombstones).
func (c *Coordinator) DeleteGroup(group string) error {
	e, err := c.lookup(group, false)
	if err != nil {
		return err
	}
	if e == nil {
		return kerr.GroupIDNotFound
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.g.state == Dead:
		return kerr.GroupIDNotFound
	case e.g.state != Empty:
		return kerr.NonEmptyGroup
	}
	if err := c.removeGroupLocked(e, e.g.Offsets()); err != nil {
		return err
	}
	return nil
}

// removeGroupLocked writes tombstones for the offsets and the group, then
// marks it Dead and forgets it. e.mu is held.
func (c *Coordinator) removeGroupLocked(e *entry, offsets []TopicOffset) error {
	now := c.cfg.Now()
	recs := make([]batch.Record, 0, len(offsets)+1)
	for _, o := range offsets {
		recs = append(recs, offsetTombstone(e.g.ID, o.TopicPartition, now))
	}
	recs = append(recs, groupTombstone(e.g.ID, now))
	b, err := buildBatch(recs)
	if err == nil {
		err = c.append(e.g.ID, b)
	}
	if err != nil {
		return err
	}
	e.g.MarkDead(now)
	c.mu.Lock()
	if c.groups[e.g.ID] == e {
		delete(c.groups, e.g.ID)
	}
	c.mu.Unlock()
	return nil
}

// DeleteOffsets handles an OffsetDelete: one error per partition. Offsets
// of topics the group's members subscribe to cannot be deleted
// (GROUP_SUBSCRIBED_TO_TOPIC).
func (c *Coordinator) DeleteOffsets(group string, tps []TopicPartition) ([]error, error) {
	e, err := c.lookup(group, false)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, kerr.GroupIDNotFound
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.g.state == Dead {
		return nil, kerr.GroupIDNotFound
	}
	subscribed, ok := e.g.SubscribedTopics()
	if !ok {
		return nil, kerr.NonEmptyGroup
	}
	now := c.cfg.Now()
	errs := make([]error, len(tps))
	var recs []batch.Record
	var del []TopicPartition
	for i, tp := range tps {
		if subscribed[tp.Topic] {
			errs[i] = kerr.GroupSubscribedToTopic
			continue
		}
		if _, ok := e.g.Offset(tp); ok {
			recs = append(recs, offsetTombstone(group, tp, now))
			del = append(del, tp)
		}
	}
	if len(recs) > 0 {
		b, err := buildBatch(recs)
		if err == nil {
			err = c.append(group, b)
		}
		if err != nil {
			return nil, err
		}
		for _, tp := range del {
			e.g.DeleteOffset(tp)
		}
	}
	return errs, nil
}

// ExpireOffsets deletes (with tombstones) the offsets of empty groups older
// than the retention, and the metadata of empty groups left with nothing.
// It returns how many offsets expired.
func (c *Coordinator) ExpireOffsets() int {
	c.mu.Lock()
	es := make([]*entry, 0, len(c.groups))
	for _, e := range c.groups {
		es = append(es, e)
	}
	c.mu.Unlock()
	n := 0
	for _, e := range es {
		e.mu.Lock()
		now := c.cfg.Now()
		expired := e.g.Expired(now, c.cfg.OffsetsRetention)
		var err error
		if len(expired) > 0 && len(expired) == len(e.g.offsets) && len(e.g.pending) == 0 {
			// Everything goes: the group goes with its offsets.
			offs := make([]TopicOffset, len(expired))
			for i, tp := range expired {
				offs[i] = TopicOffset{TopicPartition: tp}
			}
			err = c.removeGroupLocked(e, offs)
		} else if len(expired) > 0 {
			recs := make([]batch.Record, len(expired))
			for i, tp := range expired {
				recs[i] = offsetTombstone(e.g.ID, tp, now)
			}
			var b []byte
			if b, err = buildBatch(recs); err == nil {
				err = c.append(e.g.ID, b)
			}
			if err == nil {
				for _, tp := range expired {
					e.g.DeleteOffset(tp)
				}
			}
		} else if e.g.Removable() && now.Sub(e.g.stateSince) >= c.cfg.OffsetsRetention {
			err = c.removeGroupLocked(e, nil)
		}
		if err != nil {
			c.cfg.Logger.Warn("expire offsets", "group", e.g.ID, "err", err)
		} else {
			n += len(expired)
		}
		e.mu.Unlock()
	}
	return n
}

// schedule sets e's next timer.
func (c *Coordinator) schedule(e *entry, next time.Time) {
	c.timerMu.Lock()
	if next.Equal(e.next) {
		c.timerMu.Unlock()
		return
	}
	e.next = next
	first := false
	if !next.IsZero() {
		heap.Push(&c.timers, timer{at: next, e: e})
		first = c.timers[0].e == e && c.timers[0].at.Equal(next)
	}
	c.timerMu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Tick runs the timeouts due at now on every group whose deadline has
// passed. The timer goroutine calls it; tests may call it directly.
func (c *Coordinator) Tick(now time.Time) {
	var due []*entry
	c.timerMu.Lock()
	for len(c.timers) > 0 && !c.timers[0].at.After(now) {
		t := heap.Pop(&c.timers).(timer)
		if t.e.next.Equal(t.at) {
			t.e.next = time.Time{}
			due = append(due, t.e)
		}
	}
	c.timerMu.Unlock()
	for _, e := range due {
		c.step(e, func(now time.Time) Effects { return e.g.Tick(now) })
	}
}

func (c *Coordinator) nextTimer() (time.Time, bool) {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

func (c *Coordinator) run() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	lastExpiry := c.cfg.Now()
	for {
		now := c.cfg.Now()
		c.Tick(now)
		if now.Sub(lastExpiry) >= c.cfg.RetentionCheckInterval {
			lastExpiry = now
			if n := c.ExpireOffsets(); n > 0 {
				c.cfg.Logger.Info("offsets expired", "count", n)
			}
		}
		wait := c.cfg.RetentionCheckInterval - c.cfg.Now().Sub(lastExpiry)
		if next, ok := c.nextTimer(); ok {
			wait = min(wait, next.Sub(c.cfg.Now()))
		}
		t.Reset(max(wait, time.Millisecond))
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

// GroupIDs returns the ids of every live group.
func (c *Coordinator) GroupIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

type timer struct {
	at time.Time
	e  *entry
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
