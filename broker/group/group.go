package group

import (
	"bytes"
	"fmt"
	"slices"
	"time"
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
