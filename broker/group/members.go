package group

// The rest of the core: SyncGroup, Heartbeat, LeaveGroup, member removal
// and the timeouts applied by Tick.

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// checkMember finds the member of a Sync, Heartbeat or commit: fenced
// static members and unknown ids fail.
func (g *Group) checkMember(memberID, instanceID string) (*Member, error) {
	if instanceID != "" {
		if id, ok := g.static[instanceID]; ok && id != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID
	}
	return m, nil
}

// Sync handles a SyncGroup.
func (g *Group) Sync(now time.Time, req SyncRequest) Effects {
	var fx Effects
	fail := func(err error) Effects {
		fx.sync(req.Reply, SyncResult{Err: err})
		return fx
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable)
	}
	m, err := g.checkMember(req.MemberID, req.InstanceID)
	if err != nil {
		return fail(err)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration)
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		return fail(kerr.InconsistentGroupProtocol)
	}
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case Stable:
		m.deadline = now.Add(m.SessionTimeout)
		fx.sync(req.Reply, SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.Assignment})
		return fx
	case CompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID)
	}
	if m.ID == g.leader {
		for id, a := range req.Assignments {
			if len(a) > g.rules.MaxMemberMetadata {
				return fail(fmt.Errorf("%w: assignment for %s of %d bytes is above the limit of %d",
					kerr.InvalidRequest, id, len(a), g.rules.MaxMemberMetadata))
			}
		}
	}
	fx.sync(m.syncReply, SyncResult{Err: kerr.RebalanceInProgress})
	m.syncReply = req.Reply
	m.deadline = now.Add(m.SessionTimeout)
	if m.ID != g.leader {
		return fx
	}
	for _, id := range g.memberIDs() {
		o := g.members[id]
		o.Assignment = req.Assignments[id]
		if o.Assignment == nil {
			o.Assignment = []byte{}
		}
	}
	g.setState(Stable, now)
	fx.Persist = true
	for _, id := range g.memberIDs() {
		o := g.members[id]
		fx.sync(o.syncReply, SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.Assignment})
		o.syncReply = 0
		o.deadline = now.Add(o.SessionTimeout)
	}
	return fx
}

// Heartbeat handles a Heartbeat: it keeps the member's session alive and
// tells it whether a rebalance is under way.
func (g *Group) Heartbeat(now time.Time, memberID, instanceID string, generation int32) error {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	m, err := g.checkMember(memberID, instanceID)
	if err != nil {
		return err
	}
	if generation != g.generation {
		return kerr.IllegalGeneration
	}
	switch g.state {
	case Empty:
		return kerr.UnknownMemberID
	case PreparingRebalance:
		m.deadline = now.Add(m.SessionTimeout)
		return kerr.RebalanceInProgress
	}
	m.deadline = now.Add(m.SessionTimeout)
	return nil
}

// LeaveMember is one member leaving (LeaveGroup v3+ batches them; a static
// member may be named by instance id alone).
type LeaveMember struct {
	MemberID, InstanceID string
}

// Leave removes members. It returns one error per member (nil for those
// removed) and the effects of the rebalance it may start.
func (g *Group) Leave(now time.Time, leaving []LeaveMember) ([]error, Effects) {
	var fx Effects
	errs := make([]error, len(leaving))
	for i, l := range leaving {
		if g.state == Dead {
			errs[i] = kerr.CoordinatorNotAvailable
			continue
		}
		id := l.MemberID
		if l.InstanceID != "" {
			sid, ok := g.static[l.InstanceID]
			switch {
			case !ok:
				errs[i] = kerr.UnknownMemberID
				continue
			case id != "" && id != sid:
				errs[i] = kerr.FencedInstanceID
				continue
			}
			id = sid
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			g.tryCompleteJoin(now, &fx)
			continue
		}
		m := g.members[id]
		if m == nil {
			errs[i] = kerr.UnknownMemberID
			continue
		}
		g.remove(now, m, &fx)
	}
	return errs, fx
}

// remove drops a member (left or expired) and rebalances what remains.
func (g *Group) remove(now time.Time, m *Member, fx *Effects) {
	fx.join(m.joinReply, joinError(kerr.UnknownMemberID, m.ID))
	fx.sync(m.syncReply, SyncResult{Err: kerr.UnknownMemberID})
	delete(g.members, m.ID)
	if m.InstanceID != "" && g.static[m.InstanceID] == m.ID {
		delete(g.static, m.InstanceID)
	}
	if g.leader == m.ID {
		g.leader = ""
		for _, id := range g.memberIDs() {
			if g.leader == "" || g.members[id].joinReply != 0 && g.members[g.leader].joinReply == 0 {
				g.leader = id
			}
		}
	}
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now, fx)
	case PreparingRebalance:
		g.tryCompleteJoin(now, fx)
	}
}

// Tick applies the timeouts due at now: expired sessions and member ids,
// the end of the initial delay, the join and sync deadlines.
func (g *Group) Tick(now time.Time) Effects {
	var fx Effects
	for id, exp := range g.pending {
		if !now.Before(exp) {
			delete(g.pending, id)
		}
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		if m != nil && m.joinReply == 0 && m.syncReply == 0 && !now.Before(m.deadline) {
			g.remove(now, m, &fx)
		}
	}
	switch g.state {
	case PreparingRebalance:
		if now.Before(g.rebalanceDeadline) {
			g.tryCompleteJoin(now, &fx)
			break
		}
		if g.initialDelay {
			g.initialDelay = false
			g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
			g.tryCompleteJoin(now, &fx)
			break
		}
		for _, id := range g.memberIDs() {
			if m := g.members[id]; m.joinReply == 0 {
				delete(g.members, id)
				if m.InstanceID != "" {
					delete(g.static, m.InstanceID)
				}
			}
		}
		clear(g.pending)
		g.completeJoin(now, &fx)
	case CompletingRebalance:
		if now.Before(g.rebalanceDeadline) {
			break
		}
		// The leader did not send its assignment in time: drop the members
		// that did not sync and start over.
		for _, id := range g.memberIDs() {
			if m := g.members[id]; m != nil && m.syncReply == 0 && g.state == CompletingRebalance {
				g.remove(now, m, &fx)
			}
		}
		if g.state == CompletingRebalance {
			g.prepareRebalance(now, &fx)
		}
	}
	return fx
}

// NextDeadline returns when Tick next has something to do; zero if never.
func (g *Group) NextDeadline() time.Time {
	var next time.Time
	for _, exp := range g.pending {
		next = earliest(next, exp)
	}
	for _, m := range g.members {
		if m.joinReply == 0 && m.syncReply == 0 {
			next = earliest(next, m.deadline)
		}
	}
	if g.state == PreparingRebalance || g.state == CompletingRebalance {
		next = earliest(next, g.rebalanceDeadline)
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// MarkDead ends the group (deleted): later requests see
// COORDINATOR_NOT_AVAILABLE and look the coordinator up again.
func (g *Group) MarkDead(now time.Time) { g.setState(Dead, now) }
