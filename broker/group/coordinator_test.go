package group

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// memStore is an in-memory Store: batches per partition, offsets assigned.
type memStore struct {
	mu    sync.Mutex
	parts map[int32][][]byte
	fail  error
}

func newMemStore() *memStore { return &memStore{parts: map[int32][][]byte{}} }

func (m *memStore) Append(p int32, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	next := int64(0)
	if n := len(m.parts[p]); n > 0 {
		next = batch.Batch(m.parts[p][n-1]).NextOffset()
	}
	c := append([]byte(nil), b...)
	batch.Batch(c).SetBaseOffset(next)
	m.parts[p] = append(m.parts[p], c)
	return nil
}

func (m *memStore) Scan(p int32, fn func(batch.Batch) error) error {
	m.mu.Lock()
	bs := append([][]byte(nil), m.parts[p]...)
	m.mu.Unlock()
	for _, b := range bs {
		if err := fn(batch.Batch(b)); err != nil {
			return err
		}
	}
	return nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestCoordinator(st Store, clock *fakeClock) *Coordinator {
	return NewCoordinator(st, Config{Partitions: 4, Now: clock.Now, MinSessionTimeout: time.Second})
}

func TestPartitionForMatchesJava(t *testing.T) {
	tests := []struct {
		group string
		want  int32
	}{
		{"", 0},
		{"a", 97 % 50},
		{"hello", 99162322 % 50},
		{"Aa", 2112 % 50},
		{"BB", 2112 % 50},
		// Java's hashCode of this string is Integer.MIN_VALUE; Kafka's
		// Utils.abs maps it to 0.
		{"polygenelubricants", 0},
		// Negative hash: "zzzzzzzz".hashCode() = -1910022912.
		{"zzzzzzzz", 1910022912 % 50},
		// Characters outside the BMP hash as two UTF-16 units.
		{"😀", int32((31*0xD83D + 0xDE00) % 50)},
	}
	if got := PartitionFor("g", 0); got != 0 {
		t.Errorf("PartitionFor with no partitions = %d", got)
	}
	for _, tt := range tests {
		if got := PartitionFor(tt.group, 50); got != tt.want {
			t.Errorf("PartitionFor(%q) = %d, want %d", tt.group, got, tt.want)
		}
	}
}

// joinSync joins a fresh dynamic member (v3 semantics) and syncs it as leader
// of a one-member group, returning its id and generation.
func joinSync(t *testing.T, c *Coordinator, group string) (string, int32) {
	t.Helper()
	var jr JoinResult
	c.Join(group, JoinRequest{ClientID: "c", ProtocolType: "consumer", Protocols: protocols("range"),
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second}, func(r JoinResult) { jr = r })
	if jr.Err != nil {
		t.Fatalf("join: %v", jr.Err)
	}
	var sr SyncResult
	c.Sync(group, SyncRequest{MemberID: jr.MemberID, Generation: jr.Generation,
		Assignments: map[string][]byte{jr.MemberID: []byte("a")}}, func(r SyncResult) { sr = r })
	if sr.Err != nil {
		t.Fatalf("sync: %v", sr.Err)
	}
	return jr.MemberID, jr.Generation
}

// TestCoordinatorReload: offsets and groups written through the store come
// back on a new coordinator over the same store; tombstones delete.
func TestCoordinatorReload(t *testing.T) {
	st := newMemStore()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	c := newTestCoordinator(st, clock)
	member, gen := joinSync(t, c, "g")
	commits := []Commit{
		{TopicPartition{"t", 0}, Offset{Offset: 10, LeaderEpoch: 3, Metadata: "m"}},
		{TopicPartition{"t", 1}, Offset{Offset: 20, LeaderEpoch: -1}},
	}
	if errs, err := c.CommitOffsets("g", gen, member, "", commits); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("commit: %v %v", err, errs)
	}
	if _, err := c.CommitOffsets("simple", -1, "", "", []Commit{{TopicPartition{"t", 0}, Offset{Offset: 5}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CommitOffsets("gone", -1, "", "", []Commit{{TopicPartition{"t", 0}, Offset{Offset: 7}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup("gone"); err != nil {
		t.Fatal(err)
	}
	if errs, err := c.DeleteOffsets("simple", []TopicPartition{{"t", 0}}); err != nil || errs[0] != nil {
		t.Fatalf("delete offsets: %v %v", err, errs)
	}
	_ = c.Close()

	c2 := newTestCoordinator(st, clock)
	if err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got, err := c2.FetchOffsets("g", nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("offsets after reload: %v %+v", err, got)
	}
	if got[0].Offset.Offset != 10 || got[0].LeaderEpoch != 3 || got[0].Metadata != "m" || got[1].Offset.Offset != 20 {
		t.Fatalf("offsets after reload: %+v", got)
	}
	d, ok, _ := c2.Describe("g")
	if !ok || d.State != Stable || d.Generation != gen || len(d.Members) != 1 || d.Members[0].ID != member ||
		string(d.Members[0].Assignment) != "a" {
		t.Fatalf("group after reload: %+v", d)
	}
	if err := c2.Heartbeat("g", member, "", gen); err != nil {
		t.Fatalf("heartbeat after reload: %v", err)
	}
	for _, id := range []string{"gone", "simple"} {
		if _, ok, _ := c2.Describe(id); ok {
			t.Errorf("group %s came back", id)
		}
	}
}

// TestCoordinatorCommitErrors: fenced and malformed commits change nothing.
func TestCoordinatorCommitErrors(t *testing.T) {
	st := newMemStore()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	c := newTestCoordinator(st, clock)
	defer c.Close()
	member, gen := joinSync(t, c, "g")
	tp := TopicPartition{"t", 0}
	if _, err := c.CommitOffsets("g", gen, member, "", []Commit{{tp, Offset{Offset: 5}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		group     string
		gen       int32
		member    string
		meta      string
		want      *kerr.Error
		perCommit bool
	}{
		{"old generation", "g", gen - 1, member, "", kerr.IllegalGeneration, false},
		{"unknown member", "g", gen, "nobody", "", kerr.UnknownMemberID, false},
		{"no generation while members", "g", -1, "", "", kerr.UnknownMemberID, false},
		{"unknown group with generation", "nope", 3, "m", "", kerr.IllegalGeneration, false},
		{"empty group id", "", -1, "", "", kerr.InvalidGroupID, false},
		{"metadata too large", "g", gen, member, string(make([]byte, 5000)), kerr.OffsetMetadataTooLarge, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, err := c.CommitOffsets(tt.group, tt.gen, tt.member, "", []Commit{{tp, Offset{Offset: 1, Metadata: tt.meta}}})
			if tt.perCommit {
				err = errs[0]
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			o, _ := c.FetchOffsets("g", []TopicPartition{tp})
			if o[0].Offset.Offset != 5 {
				t.Fatalf("committed %d after a refused commit, want 5", o[0].Offset.Offset)
			}
		})
	}
	st.fail = errors.New("disk gone")
	errs, err := c.CommitOffsets("g", gen, member, "", []Commit{{tp, Offset{Offset: 9}}})
	if err != nil || errs[0] == nil {
		t.Fatalf("commit with a failing store: %v %v", err, errs)
	}
	if o, _ := c.FetchOffsets("g", []TopicPartition{tp}); o[0].Offset.Offset != 5 {
		t.Fatalf("failed append changed the offset to %d", o[0].Offset.Offset)
	}
}

// TestCoordinatorCloseAnswersWaiting: a join parked in the purgatory is
// answered COORDINATOR_NOT_AVAILABLE on Close, and the timer goroutine
// completes a rebalance whose member never rejoins.
func TestCoordinatorCloseAnswersWaiting(t *testing.T) {
	st := newMemStore()
	c := NewCoordinator(st, Config{Partitions: 4, MinSessionTimeout: 10 * time.Millisecond})
	c.Start()
	got := make(chan JoinResult, 2)
	req := JoinRequest{ClientID: "c", ProtocolType: "consumer", Protocols: protocols("range"),
		SessionTimeout: time.Minute, RebalanceTimeout: time.Minute}
	c.Join("g", req, func(r JoinResult) { got <- r })
	first := <-got
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	// A second member parks: the first is expected to rejoin.
	c.Join("g", req, func(r JoinResult) { got <- r })
	select {
	case r := <-got:
		t.Fatalf("second join answered early: %+v", r)
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if !errors.Is(r.Err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("parked join answered %v, want COORDINATOR_NOT_AVAILABLE", r.Err)
	}
	if _, err := c.FetchOffsets("g", nil); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("closed coordinator: %v", err)
	}
}

// TestCoordinatorRebalanceTimeout: with a real clock and a short rebalance
// timeout, the timer goroutine drops a member that does not rejoin and
// answers the one that did.
func TestCoordinatorRebalanceTimeout(t *testing.T) {
	c := NewCoordinator(newMemStore(), Config{Partitions: 4, MinSessionTimeout: 10 * time.Millisecond})
	c.Start()
	defer c.Close()
	req := JoinRequest{ClientID: "c", ProtocolType: "consumer", Protocols: protocols("range"),
		SessionTimeout: time.Minute, RebalanceTimeout: 50 * time.Millisecond}
	got := make(chan JoinResult, 2)
	c.Join("g", req, func(r JoinResult) { got <- r })
	if r := <-got; r.Err != nil {
		t.Fatal(r.Err)
	}
	c.Join("g", req, func(r JoinResult) { got <- r })
	r := <-got // the first member never rejoins: dropped at the deadline
	if r.Err != nil || r.Generation != 2 || len(r.Members) != 1 || r.Members[0].MemberID != r.MemberID {
		t.Fatalf("after the rebalance timeout: %+v", r)
	}
}

// TestExpireOffsets: an empty group's offsets expire after the retention,
// as tombstones, and the group goes with its last offset.
func TestExpireOffsets(t *testing.T) {
	st := newMemStore()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	c := NewCoordinator(st, Config{Partitions: 4, Now: clock.Now, OffsetsRetention: time.Hour})
	defer c.Close()
	if _, err := c.CommitOffsets("old", -1, "", "", []Commit{{TopicPartition{"t", 0}, Offset{Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Minute)
	if _, err := c.CommitOffsets("new", -1, "", "", []Commit{{TopicPartition{"t", 0}, Offset{Offset: 2}}}); err != nil {
		t.Fatal(err)
	}
	if n := c.ExpireOffsets(); n != 0 {
		t.Fatalf("expired %d before the retention", n)
	}
	clock.Add(31 * time.Minute)
	if n := c.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if _, ok, _ := c.Describe("old"); ok {
		t.Fatal("expired group still there")
	}
	c2 := NewCoordinator(st, Config{Partitions: 4, Now: clock.Now, OffsetsRetention: time.Hour})
	defer c2.Close()
	if err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := c2.GroupIDs(); len(got) != 1 || got[0] != "new" {
		t.Fatalf("groups after reload %v, want [new]", got)
	}
}

// TestDeleteOffsetsSubscribed: offsets of a subscribed topic stay.
func TestDeleteOffsetsSubscribed(t *testing.T) {
	c := newTestCoordinator(newMemStore(), &fakeClock{now: time.UnixMilli(1_700_000_000_000)})
	defer c.Close()
	var md kmsg.ConsumerMemberMetadata
	md.Topics = []string{"t"}
	var jr JoinResult
	c.Join("g", JoinRequest{ClientID: "c", ProtocolType: "consumer",
		Protocols:      []Protocol{{Name: "range", Metadata: md.AppendTo(nil)}},
		SessionTimeout: 10 * time.Second}, func(r JoinResult) { jr = r })
	c.Sync("g", SyncRequest{MemberID: jr.MemberID, Generation: jr.Generation}, func(SyncResult) {})
	if _, err := c.CommitOffsets("g", jr.Generation, jr.MemberID, "", []Commit{
		{TopicPartition{"t", 0}, Offset{Offset: 1}}, {TopicPartition{"u", 0}, Offset{Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	errs, err := c.DeleteOffsets("g", []TopicPartition{{"t", 0}, {"u", 0}})
	if err != nil || !errors.Is(errs[0], kerr.GroupSubscribedToTopic) || errs[1] != nil {
		t.Fatalf("delete offsets: %v %v", err, errs)
	}
	if err := c.DeleteGroup("g"); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("delete a non-empty group: %v", err)
	}
	if _, err := c.DeleteOffsets("nope", nil); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}

// BenchmarkRebalance measures one rebalance of n members through the
// coordinator, from the joins to every member holding its assignment: n
// joins (the group first completes with the first member and the others
// wait), n rejoins (the last completes the phase), the leader's sync and
// the followers' syncs. n=10 is the baseline for the n=100 figure.
func BenchmarkRebalance(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchRebalance(b, n) })
	}
}

func benchRebalance(b *testing.B, n int) {
	c := NewCoordinator(newMemStore(), Config{Partitions: 4})
	defer c.Close()
	join := JoinRequest{ClientID: "c", ProtocolType: "consumer", Protocols: protocols("range"),
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second}
	b.ReportAllocs()
	round := 0
	for b.Loop() {
		round++
		group := fmt.Sprintf("g%d", round)
		for range n {
			c.Join(group, join, func(JoinResult) {})
		}
		d, _, _ := c.Describe(group)
		results := make([]JoinResult, len(d.Members))
		for i, m := range d.Members {
			req := join
			req.MemberID = m.ID
			c.Join(group, req, func(r JoinResult) { results[i] = r })
		}
		var leader JoinResult
		for _, r := range results {
			if r.Err != nil {
				b.Fatalf("join: %v", r.Err)
			}
			if len(r.Members) > 0 {
				leader = r
			}
		}
		assign := make(map[string][]byte, n)
		for _, m := range leader.Members {
			assign[m.MemberID] = []byte("p")
		}
		assigned := 0
		for _, r := range results {
			req := SyncRequest{MemberID: r.MemberID, Generation: r.Generation}
			if r.MemberID == leader.MemberID {
				req.Assignments = assign
			}
			c.Sync(group, req, func(s SyncResult) {
				if s.Err == nil {
					assigned++
				}
			})
		}
		if assigned != n {
			b.Fatalf("%d members assigned, want %d", assigned, n)
		}
		if err := c.DeleteGroup(group); !errors.Is(err, kerr.NonEmptyGroup) {
			b.Fatalf("delete: %v", err)
		}
	}
}

// BenchmarkCommit measures offset commits of 10 partitions through the
// coordinator over an in-memory store (validation, record encoding, batch
// build, append).
func BenchmarkCommit(b *testing.B) {
	c := NewCoordinator(newMemStore(), Config{Partitions: 4})
	defer c.Close()
	commits := make([]Commit, 10)
	for i := range commits {
		commits[i] = Commit{TopicPartition{"events", int32(i)}, Offset{Offset: 1}}
	}
	recs := make([]batch.Record, len(commits))
	for i, cm := range commits {
		recs[i] = offsetRecord("g", cm.TopicPartition, cm.Offset)
	}
	enc, _ := buildBatch(recs)
	b.SetBytes(int64(len(enc))) // the batch appended per commit
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		off++
		for i := range commits {
			commits[i].Offset.Offset = off
		}
		if _, err := c.CommitOffsets("g", -1, "", "", commits); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRefusedJoinLeavesNoGroup: a join refused for bad input does not
// leave an empty group behind (ListGroups stays clean).
func TestRefusedJoinLeavesNoGroup(t *testing.T) {
	c := newTestCoordinator(newMemStore(), &fakeClock{now: time.UnixMilli(1_700_000_000_000)})
	defer c.Close()
	tests := []struct {
		name string
		req  JoinRequest
		want *kerr.Error
	}{
		{"session timeout too small", JoinRequest{ProtocolType: "consumer", Protocols: protocols("range"), SessionTimeout: time.Millisecond}, kerr.InvalidSessionTimeout},
		{"no protocols", JoinRequest{ProtocolType: "consumer", SessionTimeout: 10 * time.Second}, kerr.InconsistentGroupProtocol},
		{"no protocol type", JoinRequest{Protocols: protocols("range"), SessionTimeout: 10 * time.Second}, kerr.InconsistentGroupProtocol},
		{"oversized metadata", JoinRequest{ProtocolType: "consumer", Protocols: []Protocol{{"range", make([]byte, 2<<20)}}, SessionTimeout: 10 * time.Second}, kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got JoinResult
			c.Join("g-"+tt.name, tt.req, func(r JoinResult) { got = r })
			if !errors.Is(got.Err, tt.want) {
				t.Fatalf("join: %v, want %v", got.Err, tt.want)
			}
		})
	}
	if l, _ := c.List(); len(l) != 0 {
		t.Fatalf("groups left behind: %+v", l)
	}
}

// TestExpiryAcrossRestart: an Empty group's offsets expire a retention after
// it became empty, even across a restart in between (the group metadata
// record written when it emptied carries the time).
func TestExpiryAcrossRestart(t *testing.T) {
	st := newMemStore()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	cfg := Config{Partitions: 4, Now: clock.Now, OffsetsRetention: 7 * 24 * time.Hour, MinSessionTimeout: time.Second}
	c := NewCoordinator(st, cfg)
	member, gen := joinSync(t, c, "g")
	if _, err := c.CommitOffsets("g", gen, member, "", []Commit{{TopicPartition{"t", 0}, Offset{Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leave("g", []LeaveMember{{MemberID: member}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	clock.Add(6 * 24 * time.Hour)
	c2 := NewCoordinator(st, cfg)
	defer c2.Close()
	if err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * 24 * time.Hour)
	if n := c2.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d offsets 8 days after the group emptied, want 1", n)
	}
}
