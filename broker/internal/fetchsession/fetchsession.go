// Package fetchsession keeps incremental fetch sessions (KIP-227): a
// consumer that fetches many partitions names them once, then sends only
// the partitions whose fetch position changed and is answered only with the
// partitions that have news (records, a moved high watermark, last stable
// offset or log start offset, or an error).
//
// The package is pure bookkeeping: it never reads a log. The broker asks a
// Cache what a request means (Begin), fetches the partitions it is told to,
// and reports what it found (Context.Finish), which says which partitions
// the answer carries. Time is passed in, so tests are deterministic.
//
// As in Kafka, a request's SessionEpoch decides:
//   - -1 (FinalEpoch): no session; a SessionID other than 0 is closed first.
//   - 0 (InitialEpoch): a full fetch that opens a new session (closing the
//     given one), if the cache has a free slot or a session idle for the
//     eviction time; otherwise the answer carries SessionID 0 and the
//     client goes on without one.
//   - above 0: an incremental fetch of session SessionID, whose next epoch
//     it must be (ErrSessionNotFound, ErrInvalidEpoch otherwise).
package fetchsession

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Epochs with a meaning of their own.
const (
	// FinalEpoch asks for a fetch without a session (and closes SessionID).
	FinalEpoch = -1
	// InitialEpoch asks for a full fetch that opens a session.
	InitialEpoch = 0
)

// DefaultSlots is Kafka's max.incremental.fetch.session.cache.slots.
const DefaultSlots = 1000

// DefaultMaxPartitions bounds the partitions held by all of a cache's
// sessions together, so that sessions cannot hold more memory than this
// (about 150 bytes a partition) however large the requests that open them.
// Kafka has no such bound; a broker leads far fewer partitions.
const DefaultMaxPartitions = 200_000

// DefaultEvictAfter is Kafka's min.incremental.fetch.session.eviction.ms: a
// full cache gives a session's slot to a new one only after the session
// has been idle this long.
const DefaultEvictAfter = 2 * time.Minute

// Errors of an incremental request; the broker answers them with Kafka's
// FETCH_SESSION_ID_NOT_FOUND and INVALID_FETCH_SESSION_EPOCH.
var (
	ErrSessionNotFound = errors.New("fetch session not found")
	ErrInvalidEpoch    = errors.New("invalid fetch session epoch")
)

// Key names a partition.
type Key struct {
	Topic     string
	Partition int32
}

// Want is what a request asks of one partition.
type Want struct {
	FetchOffset        int64
	LogStartOffset     int64 // a follower's (Fetch v5+); -1 for consumers
	MaxBytes           int32
	CurrentLeaderEpoch int32
}

// Part is one partition of a request or of a session.
type Part struct {
	Key
	Want
}

// Found is what a fetch found for one partition, in the order of
// Context.Parts.
type Found struct {
	HighWatermark, LastStableOffset, LogStartOffset int64
	// Records reports that the answer carries record bytes.
	Records bool
	// Failed reports that the partition is answered with an error.
	Failed bool
}

// entry is a partition of a session: what the client asks and what it was
// last told.
type entry struct {
	key               Key
	want              Want
	hw, lso, logStart int64
	told              bool // hw, lso and logStart were sent
	gone              bool // forgotten: dropped from order at the next compaction
}

// session is one open session; the Cache's mutex guards it.
type session struct {
	id       int32
	epoch    int32 // the epoch the next incremental request must carry
	parts    map[Key]*entry
	order    []*entry // fetch order; partitions that returned records go last
	lastUsed time.Time
}

// Cache holds the open sessions of one broker, at most slots of them.
type Cache struct {
	slots      int
	maxParts   int
	evictAfter time.Duration
	newID      func() int32

	mu       sync.Mutex
	sessions map[int32]*session
	parts    int // partitions held by all sessions
}

// NewCache returns a cache of at most slots sessions (0: every request is
// served without a session, as SessionID 0 tells clients) holding at most
// maxParts partitions together, that gives an idle session's slot to a new
// session after evictAfter. A full fetch that would take the cache past
// maxParts is served without a session; an incremental one that would
// closes its session (ErrSessionNotFound), and the client starts over.
func NewCache(slots, maxParts int, evictAfter time.Duration) *Cache {
	return &Cache{
		slots:      slots,
		maxParts:   maxParts,
		evictAfter: evictAfter,
		newID:      func() int32 { return rand.Int32N(1<<31-1) + 1 },
		sessions:   make(map[int32]*session),
	}
}

// Len returns the number of open sessions.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// Context is one request's view of its session, from Begin to Finish.
type Context struct {
	c     *Cache
	kind  int // sessionless, full or incremental
	parts []Part
	s     *session // incremental
}

const (
	sessionless = iota
	full
	incremental
)

// Begin interprets a request's session fields, its partitions (in request
// order) and the partitions it forgets. For an incremental request it
// updates the session with them and moves it to its next epoch; the
// returned Context's Parts are then all of the session's partitions.
func (c *Cache) Begin(id, epoch int32, parts []Part, forgotten []Key, now time.Time) (*Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case epoch == FinalEpoch:
		c.close(id)
		return &Context{c: c, kind: sessionless, parts: parts}, nil
	case epoch == InitialEpoch:
		c.close(id)
		return &Context{c: c, kind: full, parts: parts}, nil
	case epoch < 0:
		return nil, ErrInvalidEpoch
	}
	s, ok := c.sessions[id]
	if !ok {
		return nil, ErrSessionNotFound
	}
	if epoch != s.epoch {
		return nil, ErrInvalidEpoch
	}
	s.epoch = nextEpoch(s.epoch)
	s.lastUsed = now
	for _, k := range forgotten {
		if s.remove(k) {
			c.parts--
		}
	}
	for _, p := range parts {
		if e, ok := s.parts[p.Key]; ok {
			e.want = p.Want
			continue
		}
		if c.parts >= c.maxParts {
			c.close(id)
			return nil, ErrSessionNotFound
		}
		s.add(p)
		c.parts++
	}
	return &Context{c: c, kind: incremental, parts: s.snapshot(), s: s}, nil
}

// Parts returns the partitions to fetch, in order.
func (x *Context) Parts() []Part { return x.parts }

// Finish records what the fetch found for each of Parts and returns the
// SessionID the answer carries and which partitions it includes. A full
// fetch opens its session here (SessionID 0 when the cache has no room) and
// includes every partition, as does a fetch without a session; an
// incremental one includes the partitions with records, an error, or a
// high watermark, last stable offset or log start offset the client has not
// been told. Call it once, for the answer that is sent.
func (x *Context) Finish(found []Found, now time.Time) (sessionID int32, include []bool) {
	include = make([]bool, len(x.parts))
	all := func() []bool {
		for i := range include {
			include[i] = true
		}
		return include
	}
	switch x.kind {
	case sessionless:
		return 0, all()
	case full:
		return x.c.open(x.parts, found, now), all()
	}
	c := x.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := x.s
	if c.sessions[s.id] != s {
		// Closed or evicted while this fetch waited: the next request
		// learns that. This answer is still whole.
		return s.id, all()
	}
	var served map[*entry]bool // partitions that returned records
	for i, p := range x.parts {
		e, ok := s.parts[p.Key]
		if !ok {
			continue // forgotten by a later request
		}
		include[i] = e.update(found[i])
		if found[i].Records {
			if served == nil {
				served = make(map[*entry]bool)
			}
			served[e] = true
		}
	}
	// Partitions that returned records go last, so that a MaxBytes that
	// cuts an answer short serves the others first next time (as Kafka).
	if len(served) > 0 {
		order := make([]*entry, 0, len(s.order))
		for _, e := range s.order {
			if !served[e] {
				order = append(order, e)
			}
		}
		for _, e := range s.order {
			if served[e] {
				order = append(order, e)
			}
		}
		s.order = order
	}
	return s.id, include
}

// update records found and reports whether the client must be told.
func (e *entry) update(f Found) bool {
	tell := f.Records || !e.told || e.hw != f.HighWatermark || e.lso != f.LastStableOffset || e.logStart != f.LogStartOffset
	if f.Failed {
		// Errors are always sent, and the partition is sent again once it
		// recovers, whatever its offsets then.
		e.told = false
		return true
	}
	e.hw, e.lso, e.logStart, e.told = f.HighWatermark, f.LastStableOffset, f.LogStartOffset, true
	return tell
}

// open creates a session for a full fetch, evicting the least recently used
// session idle for evictAfter if the cache is full; 0 if there is no room.
func (c *Cache) open(parts []Part, found []Found, now time.Time) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slots <= 0 || c.parts+len(parts) > c.maxParts {
		return 0
	}
	if len(c.sessions) >= c.slots {
		var lru *session
		for _, s := range c.sessions {
			if lru == nil || s.lastUsed.Before(lru.lastUsed) {
				lru = s
			}
		}
		if now.Sub(lru.lastUsed) < c.evictAfter {
			return 0
		}
		c.close(lru.id)
	}
	id := c.newID()
	for c.sessions[id] != nil || id <= 0 {
		id = c.newID()
	}
	s := &session{id: id, epoch: 1, parts: make(map[Key]*entry, len(parts)), lastUsed: now}
	for i, p := range parts {
		if _, dup := s.parts[p.Key]; dup {
			continue
		}
		s.add(p)
		s.parts[p.Key].update(found[i])
	}
	c.sessions[id] = s
	c.parts += len(s.parts)
	return id
}

// close drops session id, if open; c.mu is held.
func (c *Cache) close(id int32) {
	if s, ok := c.sessions[id]; ok {
		c.parts -= len(s.parts)
		delete(c.sessions, id)
	}
}

func (s *session) add(p Part) {
	e := &entry{key: p.Key, want: p.Want}
	s.parts[p.Key] = e
	s.order = append(s.order, e)
}

// remove forgets partition k and reports whether the session held it.
func (s *session) remove(k Key) bool {
	e, ok := s.parts[k]
	if ok {
		e.gone = true
		delete(s.parts, k)
	}
	return ok
}

// snapshot drops forgotten partitions from the fetch order and returns the
// session's partitions in that order.
func (s *session) snapshot() []Part {
	order := s.order[:0]
	for _, e := range s.order {
		if !e.gone {
			order = append(order, e)
		}
	}
	clear(s.order[len(order):])
	s.order = order
	out := make([]Part, len(order))
	for i, e := range order {
		out[i] = Part{Key: e.key, Want: e.want}
	}
	return out
}

// nextEpoch follows Kafka: after the largest epoch comes 1.
func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}
