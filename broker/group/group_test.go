package group

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// groupIn builds a group of members a-1 (leader) and b-2 in the given
// state; generation 2 except Empty (generation 3 after both left).
func groupIn(t *testing.T, s State) *harness {
	t.Helper()
	h := newHarness(0)
	join := func(client, member string) {
		h.join(JoinRequest{ClientID: client, MemberID: member, ProtocolType: "consumer", Protocols: protocols("range"),
			SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})
	}
	join("a", "")
	join("b", "")
	join("a", "a-1") // generation 2, CompletingRebalance
	switch s {
	case Stable:
		h.sync(SyncRequest{MemberID: "a-1", Generation: 2, Assignments: map[string][]byte{"a-1": []byte("x"), "b-2": []byte("y")}})
	case PreparingRebalance:
		join("c", "")
	case Empty:
		h.leave(LeaveMember{MemberID: "a-1"}, LeaveMember{MemberID: "b-2"})
	case Dead:
		h.leave(LeaveMember{MemberID: "a-1"}, LeaveMember{MemberID: "b-2"})
		h.g.MarkDead(h.now)
	}
	if h.g.state != s {
		t.Fatalf("built %s, want %s", h.g.state, s)
	}
	return h
}

// TestErrorsByState: Heartbeat, SyncGroup and OffsetCommit answers for
// each state and kind of caller, as Kafka's GroupCoordinator gives them.
func TestErrorsByState(t *testing.T) {
	tests := []struct {
		state     State
		member    string
		gen       int32
		heartbeat *kerr.Error
		sync      *kerr.Error // nil: answered at once without error, or parked
		commit    *kerr.Error
	}{
		{Stable, "b-2", 2, nil, nil, nil},
		{Stable, "b-2", 1, kerr.IllegalGeneration, kerr.IllegalGeneration, kerr.IllegalGeneration},
		{Stable, "zz", 2, kerr.UnknownMemberID, kerr.UnknownMemberID, kerr.UnknownMemberID},
		{Stable, "", -1, kerr.UnknownMemberID, kerr.UnknownMemberID, kerr.UnknownMemberID},
		{CompletingRebalance, "b-2", 2, nil, nil, kerr.RebalanceInProgress},
		{PreparingRebalance, "b-2", 2, kerr.RebalanceInProgress, kerr.RebalanceInProgress, nil},
		{PreparingRebalance, "b-2", 1, kerr.IllegalGeneration, kerr.IllegalGeneration, kerr.IllegalGeneration},
		{Empty, "a-1", 3, kerr.UnknownMemberID, kerr.UnknownMemberID, kerr.UnknownMemberID},
		{Empty, "", -1, kerr.UnknownMemberID, kerr.UnknownMemberID, nil},
		{Dead, "", -1, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	}
	for _, tt := range tests {
		t.Run(tt.state.String()+"/"+tt.member, func(t *testing.T) {
			check := func(what string, got error, want *kerr.Error) {
				t.Helper()
				if want == nil && got != nil || want != nil && !errors.Is(got, want) {
					t.Errorf("%s: %v, want %v", what, got, want)
				}
			}
			h := groupIn(t, tt.state)
			check("heartbeat", h.g.Heartbeat(h.now, tt.member, "", tt.gen), tt.heartbeat)
			h = groupIn(t, tt.state)
			id, fx := h.sync(SyncRequest{MemberID: tt.member, Generation: tt.gen})
			var serr error
			for _, r := range fx.Replies {
				if r.To == id {
					serr = r.Sync.Err
				}
			}
			check("sync", serr, tt.sync)
			h = groupIn(t, tt.state)
			check("commit", h.g.CheckCommit(tt.gen, tt.member, ""), tt.commit)
		})
	}
}
