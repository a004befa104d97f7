package group

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a group's state in the classic protocol.
type State int8

// The states of a group, as Kafka names them.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

// String returns Kafka's name of the state, as DescribeGroups and ListGroups
// report it.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// ReplyID names a request waiting for its answer (a JoinGroup or a
// SyncGroup). The shell assigns it; 0 means none.
type ReplyID uint64

// Protocol is one assignment protocol a member supports, with its metadata
// (for "consumer", the subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// Rules are the coordinator settings the core applies.
type Rules struct {
	// InitialRebalanceDelay holds the first rebalance of an empty group so
	// that more members can join it (group.initial.rebalance.delay.ms).
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min/max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxMemberMetadata caps the protocol metadata of one member and one
	// assignment, in bytes: it is stored in the group metadata record.
	MaxMemberMetadata int
	// MaxOffsetMetadata caps the metadata string of a commit
	// (offset.metadata.max.bytes).
	MaxOffsetMetadata int
	// NewMemberID returns a fresh member id for a client id; it must never
	// return an id in use.
	NewMemberID func(clientID string) string
}

// Member is one member of a group.
type Member struct {
	ID, InstanceID       string // InstanceID empty: dynamic member
	ClientID, ClientHost string
	SessionTimeout       time.Duration
	RebalanceTimeout     time.Duration
	Protocols            []Protocol
	Assignment           []byte

	joinReply ReplyID   // a JoinGroup waits
	syncReply ReplyID   // a SyncGroup waits
	deadline  time.Time // session expiry, when not waiting
}

// metadataFor returns the member's metadata for protocol name.
func (m *Member) metadataFor(name string) []byte {
	for _, p := range m.Protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []Protocol) bool {
	return slices.EqualFunc(a, b, func(x, y Protocol) bool {
		return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata)
	})
}

// Group is the state of one group: membership and committed offsets. Its
// methods are the pure core: not safe for concurrent use, no I/O, time given.
type Group struct {
	ID string

	rules        *Rules
	state        State
	stateSince   time.Time
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*Member
	static       map[string]string    // instance id -> member id
	pending      map[string]time.Time // ids given with MEMBER_ID_REQUIRED -> expiry

	rebalanceDeadline time.Time // PreparingRebalance: joins; CompletingRebalance: syncs
	initialDelay      bool      // the first rebalance is held
	delayLimit        time.Time // the held rebalance cannot pass this

	offsets map[TopicPartition]Offset
}

// New returns an empty group.
func New(id string, rules *Rules, now time.Time) *Group {
	return &Group{
		ID:         id,
		rules:      rules,
		stateSince: now,
		members:    map[string]*Member{},
		static:     map[string]string{},
		pending:    map[string]time.Time{},
		offsets:    map[TopicPartition]Offset{},
	}
}

// State returns the group's state.
func (g *Group) State() State { return g.state }

// Generation returns the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// ProtocolType returns the protocol type ("consumer", "connect"...).
func (g *Group) ProtocolType() string { return g.protocolType }

// Protocol returns the protocol chosen for the current generation.
func (g *Group) Protocol() string { return g.protocol }

// Leader returns the leader's member id.
func (g *Group) Leader() string { return g.leader }

// StateSince returns when the group entered its state.
func (g *Group) StateSince() time.Time { return g.stateSince }

// Members returns the members sorted by id. The values are copies.
func (g *Group) Members() []Member {
	out := make([]Member, 0, len(g.members))
	for _, id := range g.memberIDs() {
		out = append(out, *g.members[id])
	}
	return out
}

// Member returns one member, a copy.
func (g *Group) Member(id string) (Member, bool) {
	m, ok := g.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

func (g *Group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (g *Group) setState(s State, now time.Time) {
	if g.state != s {
		g.state, g.stateSince = s, now
	}
}

// JoinRequest is a JoinGroup as the core sees it.
type JoinRequest struct {
	MemberID, InstanceID string
	ClientID, ClientHost string
	ProtocolType         string
	Protocols            []Protocol
	SessionTimeout       time.Duration
	RebalanceTimeout     time.Duration
	// RequireKnownMemberID is JoinGroup v4+: a new dynamic member is given
	// an id with MEMBER_ID_REQUIRED and must join again with it.
	RequireKnownMemberID bool
	Reply                ReplyID
}

// JoinMember is one member as the leader sees it in the JoinGroup answer.
type JoinMember struct {
	MemberID, InstanceID string
	Metadata             []byte
}

// JoinResult answers a JoinGroup. Err is nil or a *kerr.Error (wrapped).
type JoinResult struct {
	Err            error
	Generation     int32
	ProtocolType   string
	Protocol       string
	Leader         string
	MemberID       string
	SkipAssignment bool
	Members        []JoinMember // the leader only
}

// SyncRequest is a SyncGroup as the core sees it. ProtocolType and Protocol
// are checked when set (SyncGroup v5+).
type SyncRequest struct {
	MemberID, InstanceID   string
	Generation             int32
	ProtocolType, Protocol *string
	Assignments            map[string][]byte
	Reply                  ReplyID
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// Reply is an answer to a waiting request: exactly one of Join and Sync is
// set.
type Reply struct {
	To   ReplyID
	Join *JoinResult
	Sync *SyncResult
}

// Effects is what an event asks of the shell: replies to send, after the
// group metadata is written when Persist is set.
type Effects struct {
	Replies []Reply
	Persist bool
}

func (fx *Effects) join(to ReplyID, r JoinResult) {
	if to != 0 {
		fx.Replies = append(fx.Replies, Reply{To: to, Join: &r})
	}
}

func (fx *Effects) sync(to ReplyID, r SyncResult) {
	if to != 0 {
		fx.Replies = append(fx.Replies, Reply{To: to, Sync: &r})
	}
}

func joinError(err error, memberID string) JoinResult {
	return JoinResult{Err: err, Generation: -1, MemberID: memberID}
}

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
