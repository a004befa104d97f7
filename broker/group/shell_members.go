package group

// The membership requests of the shell: each parks its waiting request (if
// any) in the purgatory and runs one core event under the group's lock.

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

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
