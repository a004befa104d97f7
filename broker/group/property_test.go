package group

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"
)

// client is one simulated consumer in the property test.
type client struct {
	name, instance string
	memberID       string
	generation     int32
}

// model drives the core like a set of misbehaving clients and checks the
// invariants after every event.
type model struct {
	h       *harness
	clients []*client
	// who says which client and kind each reply id belongs to.
	who       map[ReplyID]*client
	committed int64 // the last accepted commit; -1 before any
	gen       int32
}

func newModel() *model {
	m := &model{h: newHarness(0), who: map[ReplyID]*client{}, committed: -1}
	for i := range 4 {
		c := &client{name: fmt.Sprintf("c%d", i)}
		if i < 2 {
			c.instance = fmt.Sprintf("i%d", i)
		}
		m.clients = append(m.clients, c)
	}
	return m
}

// deliver applies the replies to the simulated clients and checks them.
func (m *model) deliver(t *rapid.T, fx Effects) {
	for _, r := range fx.Replies {
		if m.h.answered[r.To] > 1 {
			t.Fatalf("reply %d answered %d times", r.To, m.h.answered[r.To])
		}
		c := m.who[r.To]
		if c == nil {
			t.Fatalf("reply %d to nobody", r.To)
		}
		switch {
		case r.Join != nil && r.Join.Err == nil:
			c.memberID, c.generation = r.Join.MemberID, r.Join.Generation
		case r.Join != nil && errName(r.Join.Err) == kerr.MemberIDRequired.Message:
			c.memberID = r.Join.MemberID
		case r.Join != nil && (errName(r.Join.Err) == kerr.UnknownMemberID.Message || errName(r.Join.Err) == kerr.FencedInstanceID.Message):
			c.memberID = ""
		case r.Sync != nil && r.Sync.Err == nil:
			// At most one generation's assignment is handed out: the
			// current one, and only once the group is Stable.
			if m.h.g.state != Stable {
				t.Fatalf("sync answered in state %s", m.h.g.state)
			}
			want := fmt.Sprintf("g%d:", m.h.g.generation)
			if !strings.HasPrefix(string(r.Sync.Assignment), want) && len(r.Sync.Assignment) > 0 {
				t.Fatalf("sync to %s got %q in generation %d", c.memberID, r.Sync.Assignment, m.h.g.generation)
			}
		}
	}
}

func (m *model) check(t *rapid.T) {
	g := m.h.g
	if g.generation < m.gen {
		t.Fatalf("generation went back from %d to %d", m.gen, g.generation)
	}
	m.gen = g.generation
	if g.state == Stable {
		for id, mb := range g.members {
			if mb.joinReply != 0 || mb.syncReply != 0 {
				t.Fatalf("Stable group: member %s still waiting", id)
			}
			if mb.Assignment == nil {
				t.Fatalf("Stable group: member %s has no assignment", id)
			}
		}
	}
	for inst, id := range g.static {
		if mb := g.members[id]; mb == nil || mb.InstanceID != inst {
			t.Fatalf("static %s -> %s is not a member with that instance", inst, id)
		}
	}
	if g.leader != "" && g.members[g.leader] == nil && len(g.members) > 0 {
		t.Fatalf("leader %s is not a member", g.leader)
	}
	o, ok := g.Offset(TopicPartition{"t", 0})
	if (m.committed >= 0) != ok || ok && o.Offset != m.committed {
		t.Fatalf("committed offset %d (%v), want %d", o.Offset, ok, m.committed)
	}
}

// TestPropertyGroup runs random sequences of joins, syncs, heartbeats,
// leaves, commits and clock ticks from four clients (two static) and checks:
// replies are answered at most once, a successful sync is always of the
// current generation and in Stable, a Stable group has no waiting member
// and every member has an assignment, generations never go back, the
// static map is consistent, fenced commits never change the committed
// offset, and after the clock runs past every timeout nothing waits.
func TestPropertyGroup(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newModel()
		pick := func() *client { return m.clients[rapid.IntRange(0, len(m.clients)-1).Draw(t, "client")] }
		t.Repeat(map[string]func(*rapid.T){
			"join": func(t *rapid.T) {
				c := pick()
				ps := rapid.SampledFrom([]string{"range", "range,roundrobin", "roundrobin"}).Draw(t, "protocols")
				req := JoinRequest{MemberID: c.memberID, InstanceID: c.instance, ClientID: c.name, ProtocolType: "consumer",
					Protocols: protocols(ps), SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second,
					RequireKnownMemberID: rapid.Bool().Draw(t, "v4")}
				req.Reply = m.h.reply()
				m.who[req.Reply] = c
				m.deliver(t, m.h.absorb(m.h.g.Join(m.h.now, req)))
			},
			"sync": func(t *rapid.T) {
				c := pick()
				req := SyncRequest{MemberID: c.memberID, InstanceID: c.instance, Generation: c.generation}
				if c.memberID == m.h.g.leader {
					req.Assignments = map[string][]byte{}
					for id := range m.h.g.members {
						req.Assignments[id] = fmt.Appendf(nil, "g%d:%s", c.generation, id)
					}
				}
				req.Reply = m.h.reply()
				m.who[req.Reply] = c
				m.deliver(t, m.h.absorb(m.h.g.Sync(m.h.now, req)))
			},
			"heartbeat": func(t *rapid.T) {
				c := pick()
				_ = m.h.g.Heartbeat(m.h.now, c.memberID, c.instance, c.generation)
			},
			"leave": func(t *rapid.T) {
				c := pick()
				_, fx := m.h.leave(LeaveMember{MemberID: c.memberID, InstanceID: c.instance})
				m.deliver(t, fx)
			},
			"commit": func(t *rapid.T) {
				c := pick()
				gen, member := c.generation, c.memberID
				if rapid.Bool().Draw(t, "admin") {
					gen, member = -1, ""
				}
				off := rapid.Int64Range(0, 1000).Draw(t, "offset")
				if m.h.g.CheckCommit(gen, member, c.instance) == nil {
					// Only the current generation's members, or a reset of
					// an Empty group, may move the offset (either way).
					g := m.h.g
					if gen >= 0 && (g.members[member] == nil || gen != g.generation) || gen < 0 && g.state != Empty {
						t.Fatalf("commit by %q generation %d accepted in %s generation %d", member, gen, g.state, g.generation)
					}
					m.h.g.Commit(m.h.now, member, TopicPartition{"t", 0}, Offset{Offset: off})
					m.committed = off
				}
			},
			"tick": func(t *rapid.T) {
				d := time.Duration(rapid.IntRange(0, 15000).Draw(t, "ms")) * time.Millisecond
				m.deliver(t, m.h.tick(d))
			},
			"": func(t *rapid.T) { m.check(t) },
		})
		// Past every session and rebalance timeout nothing waits.
		for range 3 {
			m.deliver(t, m.h.tick(time.Hour))
		}
		if len(m.h.waiting) != 0 {
			t.Fatalf("replies never answered: %v", m.h.waiting)
		}
		m.check(t)
	})
}
