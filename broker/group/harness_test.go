package group

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// t0 is the start of every scripted and property test clock.
var t0 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// harness drives one Group with a fake clock and records every reply.
type harness struct {
	g       *Group
	rules   Rules
	now     time.Time
	nextRep ReplyID
	ids     int
	// answered counts answers per reply id; waiting holds unanswered ids.
	answered map[ReplyID]int
	waiting  map[ReplyID]bool
	// last is the latest reply per id.
	last map[ReplyID]Reply
}

func newHarness(delay time.Duration) *harness {
	h := &harness{now: t0, answered: map[ReplyID]int{}, waiting: map[ReplyID]bool{}, last: map[ReplyID]Reply{}}
	h.rules = Rules{
		InitialRebalanceDelay: delay,
		MinSessionTimeout:     time.Second,
		MaxSessionTimeout:     time.Hour,
		MaxMemberMetadata:     1024,
		MaxOffsetMetadata:     64,
		NewMemberID: func(client string) string {
			h.ids++
			return fmt.Sprintf("%s-%d", client, h.ids)
		},
	}
	h.g = New("g", &h.rules, t0)
	return h
}

func (h *harness) reply() ReplyID {
	h.nextRep++
	h.waiting[h.nextRep] = true
	return h.nextRep
}

func (h *harness) absorb(fx Effects) Effects {
	for _, r := range fx.Replies {
		h.answered[r.To]++
		delete(h.waiting, r.To)
		h.last[r.To] = r
	}
	return fx
}

func (h *harness) join(req JoinRequest) (ReplyID, Effects) {
	req.Reply = h.reply()
	return req.Reply, h.absorb(h.g.Join(h.now, req))
}

func (h *harness) sync(req SyncRequest) (ReplyID, Effects) {
	req.Reply = h.reply()
	return req.Reply, h.absorb(h.g.Sync(h.now, req))
}

func (h *harness) tick(d time.Duration) Effects {
	h.now = h.now.Add(d)
	return h.absorb(h.g.Tick(h.now))
}

func (h *harness) leave(ms ...LeaveMember) ([]error, Effects) {
	errs, fx := h.g.Leave(h.now, ms)
	return errs, h.absorb(fx)
}

// errName is the Kafka name of an error, "" for nil.
func errName(err error) string {
	if err == nil {
		return ""
	}
	for e := err; e != nil; {
		if ke, ok := e.(*kerr.Error); ok {
			return ke.Message
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err.Error()
}

// describe renders the group for golden output.
func (h *harness) describe() string {
	g := h.g
	var b strings.Builder
	fmt.Fprintf(&b, "group: %s gen=%d", g.state, g.generation)
	if g.protocol != "" {
		fmt.Fprintf(&b, " protocol=%s", g.protocol)
	}
	if g.leader != "" {
		fmt.Fprintf(&b, " leader=%s", g.leader)
	}
	if len(g.pending) > 0 {
		var ps []string
		for id := range g.pending {
			ps = append(ps, id)
		}
		slices.Sort(ps)
		fmt.Fprintf(&b, " pending=%s", strings.Join(ps, ","))
	}
	b.WriteString("\n")
	for _, id := range g.memberIDs() {
		m := g.members[id]
		fmt.Fprintf(&b, "  member %s", id)
		if m.InstanceID != "" {
			fmt.Fprintf(&b, " instance=%s", m.InstanceID)
		}
		if m.joinReply != 0 {
			b.WriteString(" awaiting-join")
		}
		if m.syncReply != 0 {
			b.WriteString(" awaiting-sync")
		}
		if m.Assignment != nil {
			fmt.Fprintf(&b, " assignment=%q", m.Assignment)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func renderReply(r Reply) string {
	switch {
	case r.Join != nil:
		j := r.Join
		if j.Err != nil {
			return fmt.Sprintf("reply %d: join %s member=%s", r.To, errName(j.Err), j.MemberID)
		}
		s := fmt.Sprintf("reply %d: join gen=%d protocol=%s leader=%s member=%s", r.To, j.Generation, j.Protocol, j.Leader, j.MemberID)
		if j.SkipAssignment {
			s += " skip-assignment"
		}
		if len(j.Members) > 0 {
			var ms []string
			for _, m := range j.Members {
				ms = append(ms, m.MemberID)
			}
			s += " members=" + strings.Join(ms, ",")
		}
		return s
	case r.Sync != nil:
		if r.Sync.Err != nil {
			return fmt.Sprintf("reply %d: sync %s", r.To, errName(r.Sync.Err))
		}
		return fmt.Sprintf("reply %d: sync assignment=%q", r.To, r.Sync.Assignment)
	}
	return fmt.Sprintf("reply %d: empty", r.To)
}

func protocols(spec string) []Protocol {
	var ps []Protocol
	for p := range strings.SplitSeq(spec, ",") {
		name, meta, _ := strings.Cut(p, ":")
		if meta == "" {
			meta = "m"
		}
		ps = append(ps, Protocol{Name: name, Metadata: []byte(meta)})
	}
	return ps
}
