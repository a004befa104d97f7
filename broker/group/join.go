package group

// The join phase of the core: JoinGroup, the rebalance it starts, and the
// completion that hands out the next generation.

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Join handles a JoinGroup. The answer is in the returned Effects, now or
// in those of a later event.
func (g *Group) Join(now time.Time, req JoinRequest) Effects {
	var fx Effects
	fail := func(err error) Effects {
		fx.join(req.Reply, joinError(err, req.MemberID))
		return fx
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable)
	}
	if req.SessionTimeout < g.rules.MinSessionTimeout || req.SessionTimeout > g.rules.MaxSessionTimeout {
		return fail(fmt.Errorf("%w: session timeout %v outside [%v, %v]", kerr.InvalidSessionTimeout,
			req.SessionTimeout, g.rules.MinSessionTimeout, g.rules.MaxSessionTimeout))
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	if err := g.checkProtocols(req.ProtocolType, req.Protocols); err != nil {
		return fail(err)
	}
	if req.MemberID == "" {
		return g.joinNew(now, req)
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		return g.add(now, req, req.MemberID)
	}
	if req.InstanceID != "" {
		if id, ok := g.static[req.InstanceID]; ok && id != req.MemberID {
			return fail(kerr.FencedInstanceID)
		}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return fail(kerr.UnknownMemberID)
	}
	switch g.state {
	case PreparingRebalance:
		g.update(m, req)
		g.awaitJoin(m, req.Reply, &fx)
		g.tryCompleteJoin(now, &fx)
	case CompletingRebalance, Stable:
		if sameProtocols(m.Protocols, req.Protocols) && (g.state == CompletingRebalance || m.ID != g.leader) {
			// Nothing changed: the member learns the current generation.
			m.deadline = now.Add(m.SessionTimeout)
			fx.join(req.Reply, g.joinResult(m))
			return fx
		}
		g.update(m, req)
		g.awaitJoin(m, req.Reply, &fx)
		g.prepareRebalance(now, &fx)
	default:
		return fail(kerr.UnknownMemberID)
	}
	return fx
}

// joinNew handles a JoinGroup without a member id.
func (g *Group) joinNew(now time.Time, req JoinRequest) Effects {
	id := g.rules.NewMemberID(req.ClientID)
	if req.InstanceID != "" {
		if old, ok := g.static[req.InstanceID]; ok {
			return g.replaceStatic(now, req, old, id)
		}
		return g.add(now, req, id)
	}
	if req.RequireKnownMemberID {
		g.pending[id] = now.Add(req.SessionTimeout)
		var fx Effects
		fx.join(req.Reply, joinError(kerr.MemberIDRequired, id))
		return fx
	}
	return g.add(now, req, id)
}

// add makes a new member that waits for the rebalance it starts or joins.
func (g *Group) add(now time.Time, req JoinRequest, id string) Effects {
	var fx Effects
	m := &Member{ID: id, InstanceID: req.InstanceID}
	g.update(m, req)
	g.members[id] = m
	if m.InstanceID != "" {
		g.static[m.InstanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	if len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}
	g.awaitJoin(m, req.Reply, &fx)
	if g.state == PreparingRebalance && g.initialDelay {
		// Each new member extends the held first rebalance, up to its limit.
		g.rebalanceDeadline = minTime(now.Add(g.rules.InitialRebalanceDelay), g.delayLimit)
	}
	g.prepareRebalance(now, &fx)
	return fx
}

// replaceStatic gives a rejoining static member (KIP-345) a new member id.
// The old id is fenced. In a Stable group whose selected protocol stays the
// same there is no rebalance: the member gets the current generation and its
// assignment stays.
func (g *Group) replaceStatic(now time.Time, req JoinRequest, oldID, newID string) Effects {
	var fx Effects
	m := g.members[oldID]
	fx.join(m.joinReply, joinError(kerr.FencedInstanceID, oldID))
	fx.sync(m.syncReply, SyncResult{Err: kerr.FencedInstanceID})
	m.joinReply, m.syncReply = 0, 0
	delete(g.members, oldID)
	m.ID = newID
	g.members[newID] = m
	g.static[m.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	g.update(m, req)
	switch {
	case g.state == Stable && g.selectProtocol() == g.protocol:
		// As Kafka: new metadata (a cooperative member's owned partitions)
		// does not rebalance unless the group's protocol would change.
		m.deadline = now.Add(m.SessionTimeout)
		res := g.joinResult(m)
		res.SkipAssignment = m.ID == g.leader
		fx.join(req.Reply, res)
		fx.Persist = true // the member id changed
	case g.state == PreparingRebalance:
		g.awaitJoin(m, req.Reply, &fx)
		g.tryCompleteJoin(now, &fx)
	default:
		g.awaitJoin(m, req.Reply, &fx)
		g.prepareRebalance(now, &fx)
	}
	return fx
}

// update copies the request's member fields into m.
func (g *Group) update(m *Member, req JoinRequest) {
	m.ClientID, m.ClientHost = req.ClientID, req.ClientHost
	m.SessionTimeout, m.RebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.Protocols = req.Protocols
}

// awaitJoin parks the member's JoinGroup; an earlier one still waiting is
// answered REBALANCE_IN_PROGRESS.
func (g *Group) awaitJoin(m *Member, reply ReplyID, fx *Effects) {
	fx.join(m.joinReply, joinError(kerr.RebalanceInProgress, m.ID))
	m.joinReply = reply
}

// checkProtocols says whether a member with these protocols may join: the
// protocol type matches and, in a non-empty group, one protocol is
// supported by every member.
func (g *Group) checkProtocols(protocolType string, ps []Protocol) error {
	if protocolType == "" || len(ps) == 0 {
		return fmt.Errorf("%w: empty protocol type or protocol list", kerr.InconsistentGroupProtocol)
	}
	total := 0
	for _, p := range ps {
		total += len(p.Metadata)
	}
	if total > g.rules.MaxMemberMetadata {
		return fmt.Errorf("%w: protocol metadata of %d bytes is above the limit of %d",
			kerr.InvalidRequest, total, g.rules.MaxMemberMetadata)
	}
	if len(g.members) == 0 {
		return nil
	}
	if protocolType != g.protocolType {
		return fmt.Errorf("%w: protocol type %q, the group uses %q", kerr.InconsistentGroupProtocol, protocolType, g.protocolType)
	}
	for _, p := range ps {
		if g.allSupport(p.Name) {
			return nil
		}
	}
	return fmt.Errorf("%w: no protocol in common with the group's members", kerr.InconsistentGroupProtocol)
}

func (g *Group) allSupport(name string) bool {
	for _, m := range g.members {
		if m.metadataFor(name) == nil && !slices.ContainsFunc(m.Protocols, func(p Protocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol every member supports that most
// members prefer, as Kafka does: each member votes for its first supported
// candidate. Ties go to the candidate the leader lists first.
func (g *Group) selectProtocol() string {
	var candidates []string
	if l := g.members[g.leader]; l != nil {
		for _, p := range l.Protocols {
			if g.allSupport(p.Name) {
				candidates = append(candidates, p.Name)
			}
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.Protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func (g *Group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.RebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a rebalance (or keeps the one running): waiting
// syncs are answered REBALANCE_IN_PROGRESS and every member must join again
// before the rebalance deadline.
func (g *Group) prepareRebalance(now time.Time, fx *Effects) {
	switch g.state {
	case PreparingRebalance:
		g.tryCompleteJoin(now, fx)
		return
	case CompletingRebalance:
		for _, id := range g.memberIDs() {
			m := g.members[id]
			fx.sync(m.syncReply, SyncResult{Err: kerr.RebalanceInProgress})
			m.syncReply = 0
			m.Assignment = nil
		}
	}
	if g.state == Empty && g.rules.InitialRebalanceDelay > 0 {
		g.initialDelay = true
		g.rebalanceDeadline = now.Add(g.rules.InitialRebalanceDelay)
		g.delayLimit = now.Add(max(g.maxRebalanceTimeout(), g.rules.InitialRebalanceDelay))
	} else {
		g.initialDelay = false
		g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
	}
	g.setState(PreparingRebalance, now)
	g.tryCompleteJoin(now, fx)
}

// tryCompleteJoin completes the join phase once every member (and every id
// handed out with MEMBER_ID_REQUIRED) has joined.
func (g *Group) tryCompleteJoin(now time.Time, fx *Effects) {
	if g.state != PreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinReply == 0 {
			return
		}
	}
	g.completeJoin(now, fx)
}

// completeJoin starts the next generation with the members that joined.
func (g *Group) completeJoin(now time.Time, fx *Effects) {
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		fx.Persist = true
		return
	}
	if g.members[g.leader] == nil {
		g.leader = g.memberIDs()[0]
	}
	g.protocol = g.selectProtocol()
	g.setState(CompletingRebalance, now)
	g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
	for _, id := range g.memberIDs() {
		m := g.members[id]
		fx.join(m.joinReply, g.joinResult(m))
		m.joinReply = 0
		m.deadline = now.Add(m.SessionTimeout)
	}
}

// joinResult is the answer to m's join in the current generation; the
// leader gets the members and their metadata.
func (g *Group) joinResult(m *Member) JoinResult {
	r := JoinResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol,
		Leader: g.leader, MemberID: m.ID}
	if m.ID == g.leader {
		for _, id := range g.memberIDs() {
			o := g.members[id]
			r.Members = append(r.Members, JoinMember{MemberID: o.ID, InstanceID: o.InstanceID, Metadata: o.metadataFor(g.protocol)})
		}
	}
	return r
}
