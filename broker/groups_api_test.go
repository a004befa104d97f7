package broker

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/log/batch"
)

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func joinReq(version int16, groupID, member string, protos ...kmsg.JoinGroupRequestProtocol) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID = version, groupID, member
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	if protos == nil {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 1}
		protos = append(protos, p)
	}
	req.Protocols = protos
	return req
}

// TestGroupAPIsRaw walks the classic protocol by hand at old and new
// versions: the member-id-required rejoin, sync, heartbeats, fenced
// commits, offset fetches (single and batched groups), FindCoordinator
// (single and batched keys), describe, list, leave, OffsetDelete and
// DeleteGroups, with the error codes Kafka gives.
func TestGroupAPIsRaw(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "t", 2)
	c := dialRaw(t, s)
	corr := int32(0)
	rt := func(req kmsg.Request) kmsg.Response {
		corr++
		return c.roundTrip(req, corr)
	}

	// FindCoordinator: this node, single and batched.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	r0 := rt(fc).(*kmsg.FindCoordinatorResponse)
	wantCode(t, "find coordinator v0", r0.ErrorCode, nil)
	if r0.NodeID != 1 || r0.Port == 0 {
		t.Fatalf("coordinator %+v", r0)
	}
	fc4 := kmsg.NewPtrFindCoordinatorRequest()
	fc4.Version, fc4.CoordinatorKeys = 4, []string{"g", "h"}
	r4 := rt(fc4).(*kmsg.FindCoordinatorResponse)
	if len(r4.Coordinators) != 2 || r4.Coordinators[1].Key != "h" || r4.Coordinators[1].NodeID != 1 {
		t.Fatalf("batched coordinators %+v", r4.Coordinators)
	}
	fct := kmsg.NewPtrFindCoordinatorRequest()
	fct.Version, fct.CoordinatorType, fct.CoordinatorKey = 1, 1, "txn"
	rtx := rt(fct).(*kmsg.FindCoordinatorResponse)
	wantCode(t, "transaction coordinator", rtx.ErrorCode, nil)
	if rtx.NodeID != 1 {
		t.Fatalf("transaction coordinator %+v", rtx)
	}

	// JoinGroup v4: MEMBER_ID_REQUIRED, then the join with the id.
	j := rt(joinReq(4, "g", "")).(*kmsg.JoinGroupResponse)
	wantCode(t, "first join v4", j.ErrorCode, kerr.MemberIDRequired)
	member := j.MemberID
	j = rt(joinReq(4, "g", member)).(*kmsg.JoinGroupResponse)
	wantCode(t, "second join v4", j.ErrorCode, nil)
	if j.LeaderID != member || j.Generation != 1 || len(j.Members) != 1 {
		t.Fatalf("join %+v", j)
	}

	// Bad input: no protocols, oversized metadata, unknown member.
	wantCode(t, "no protocols", rt(joinReq(4, "g", member, []kmsg.JoinGroupRequestProtocol{}...)).(*kmsg.JoinGroupResponse).ErrorCode,
		kerr.InconsistentGroupProtocol)
	big := kmsg.NewJoinGroupRequestProtocol()
	big.Name, big.Metadata = "range", make([]byte, 2<<20)
	wantCode(t, "oversized metadata", rt(joinReq(4, "g", member, big)).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "unknown member", rt(joinReq(4, "g", "nobody")).(*kmsg.JoinGroupResponse).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "empty group id", rt(joinReq(4, "", "")).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidGroupID)

	// SyncGroup v0 as leader.
	sy := kmsg.NewPtrSyncGroupRequest()
	sy.Group, sy.Generation, sy.MemberID = "g", 1, member
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = member, []byte("assignment")
	sy.GroupAssignment = append(sy.GroupAssignment, a)
	syr := rt(sy).(*kmsg.SyncGroupResponse)
	wantCode(t, "sync", syr.ErrorCode, nil)
	if string(syr.MemberAssignment) != "assignment" {
		t.Fatalf("assignment %q", syr.MemberAssignment)
	}

	// Heartbeat v0: good, old generation, unknown member, unknown group.
	hb := func(groupID, m string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = groupID, m, gen
		return rt(req).(*kmsg.HeartbeatResponse).ErrorCode
	}
	wantCode(t, "heartbeat", hb("g", member, 1), nil)
	wantCode(t, "heartbeat old generation", hb("g", member, 0), kerr.IllegalGeneration)
	wantCode(t, "heartbeat unknown member", hb("g", "x", 1), kerr.UnknownMemberID)
	wantCode(t, "heartbeat unknown group", hb("nope", "x", 1), kerr.UnknownMemberID)

	// OffsetCommit v2 (kafka-go, kafka-python): current and fenced generations.
	commit := func(version int16, gen int32, m string, topic string, offset int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation, req.MemberID = version, "g", gen, m
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic = topic
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = 0, offset, -1
		ct.Partitions = append(ct.Partitions, cp)
		req.Topics = append(req.Topics, ct)
		return rt(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "commit", commit(2, 1, member, "t", 7), nil)
	wantCode(t, "commit old generation", commit(2, 0, member, "t", 1), kerr.IllegalGeneration)
	wantCode(t, "commit unknown member", commit(8, 1, "x", "t", 1), kerr.UnknownMemberID)
	wantCode(t, "commit unknown topic", commit(8, 1, member, "nope", 1), kerr.UnknownTopicOrPartition)

	// OffsetFetch v1 (asked partitions) and v8 (batched groups, all offsets).
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group = 1, "g"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0, 1}
	of.Topics = append(of.Topics, ft)
	ofr := rt(of).(*kmsg.OffsetFetchResponse)
	if ps := ofr.Topics[0].Partitions; ps[0].Offset != 7 || ps[1].Offset != -1 {
		t.Fatalf("offset fetch v1 %+v", ps)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	of8.Version = 8
	for _, id := range []string{"g", "unknown"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = id
		of8.Groups = append(of8.Groups, rg)
	}
	of8r := rt(of8).(*kmsg.OffsetFetchResponse)
	if len(of8r.Groups) != 2 || len(of8r.Groups[0].Topics) != 1 || of8r.Groups[0].Topics[0].Partitions[0].Offset != 7 ||
		len(of8r.Groups[1].Topics) != 0 || of8r.Groups[1].ErrorCode != 0 {
		t.Fatalf("offset fetch v8 %+v", of8r.Groups)
	}

	// DescribeGroups and ListGroups.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{"g", "unknown"}
	dgr := rt(dg).(*kmsg.DescribeGroupsResponse)
	if g := dgr.Groups[0]; g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 1 ||
		!bytes.Equal(g.Members[0].MemberAssignment, []byte("assignment")) {
		t.Fatalf("describe %+v", g)
	}
	if dgr.Groups[1].State != "Dead" || dgr.Groups[1].ErrorCode != 0 {
		t.Fatalf("describe unknown %+v", dgr.Groups[1])
	}
	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version, lg.StatesFilter = 4, []string{"stable"}
	lgr := rt(lg).(*kmsg.ListGroupsResponse)
	if len(lgr.Groups) != 1 || lgr.Groups[0].Group != "g" || lgr.Groups[0].GroupState != "Stable" {
		t.Fatalf("list %+v", lgr.Groups)
	}

	// DeleteGroups of a group with members; OffsetDelete of a topic it
	// does not subscribe to (the metadata is not a consumer subscription:
	// the group counts as non-empty).
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g", "unknown"}
	delr := rt(del).(*kmsg.DeleteGroupsResponse)
	wantCode(t, "delete non-empty", delr.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	wantCode(t, "delete unknown", delr.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// LeaveGroup v0, then the group is Empty and can be deleted.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "g", member
	wantCode(t, "leave", rt(lv).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	wantCode(t, "leave again", rt(lv).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "t"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = append(od.Topics, odt)
	odr := rt(od).(*kmsg.OffsetDeleteResponse)
	wantCode(t, "offset delete", odr.ErrorCode, nil)
	wantCode(t, "offset delete partition", odr.Topics[0].Partitions[0].ErrorCode, nil)
	if offs, _ := s.ext.groups.FetchOffsets("g", nil); len(offs) != 0 {
		t.Fatalf("offsets after OffsetDelete %+v", offs)
	}
	delr = rt(del).(*kmsg.DeleteGroupsResponse)
	wantCode(t, "delete empty", delr.Groups[0].ErrorCode, nil)

	// Commit without a generation (admin / simple consumer) creates the group.
	wantCode(t, "simple commit", commit(8, -1, "", "t", 3), nil)

	// OffsetFetch v2: null topics means every committed partition.
	of2 := kmsg.NewPtrOffsetFetchRequest()
	of2.Version, of2.Group = 2, "g"
	of2r := rt(of2).(*kmsg.OffsetFetchResponse)
	if len(of2r.Topics) != 1 || len(of2r.Topics[0].Partitions) != 1 || of2r.Topics[0].Partitions[0].Offset != 3 {
		t.Fatalf("offset fetch v2 all %+v", of2r.Topics)
	}

	// JoinGroup v0 (librdkafka 2.0.2 lists it): a member id at once, no
	// rejoin step; then a batched LeaveGroup v3 with a good and an unknown
	// member.
	j0 := rt(joinReq(0, "old", "")).(*kmsg.JoinGroupResponse)
	wantCode(t, "join v0", j0.ErrorCode, nil)
	if j0.MemberID == "" || j0.Generation != 1 || j0.LeaderID != j0.MemberID {
		t.Fatalf("join v0 %+v", j0)
	}
	lv3 := kmsg.NewPtrLeaveGroupRequest()
	lv3.Version, lv3.Group = 3, "old"
	for _, id := range []string{j0.MemberID, "nobody"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		lv3.Members = append(lv3.Members, m)
	}
	lv3r := rt(lv3).(*kmsg.LeaveGroupResponse)
	wantCode(t, "leave v3", lv3r.ErrorCode, nil)
	wantCode(t, "leave v3 member", lv3r.Members[0].ErrorCode, nil)
	wantCode(t, "leave v3 unknown member", lv3r.Members[1].ErrorCode, kerr.UnknownMemberID)

	// FindCoordinator with an unknown key type.
	fcx := kmsg.NewPtrFindCoordinatorRequest()
	fcx.Version, fcx.CoordinatorType, fcx.CoordinatorKey = 2, 7, "x"
	wantCode(t, "unknown key type", rt(fcx).(*kmsg.FindCoordinatorResponse).ErrorCode, kerr.InvalidRequest)
}

// TestOffsetsTopicInternal: the offsets topic exists at start, is marked
// internal in Metadata, and refuses produce and delete requests.
func TestOffsetsTopicInternal(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	mr := kmsg.NewPtrMetadataRequest()
	mr.Version = 9
	resp := c.roundTrip(mr, 1).(*kmsg.MetadataResponse)
	found := false
	for _, tp := range resp.Topics {
		if *tp.Topic == group.Topic {
			found = true
			if !tp.IsInternal || len(tp.Partitions) != 4 {
				t.Fatalf("offsets topic internal=%v partitions=%d", tp.IsInternal, len(tp.Partitions))
			}
		}
	}
	if !found {
		t.Fatal("offsets topic missing from Metadata")
	}
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 9, -1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = group.Topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch.MustBuild(batch.Options{}, batch.Record{Key: []byte("k"), Value: []byte("v")})
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	presp := c.roundTrip(pr, 2).(*kmsg.ProduceResponse)
	wantCode(t, "produce to the offsets topic", presp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TopicNames = 4, []string{group.Topic}
	dresp := c.roundTrip(dt, 3).(*kmsg.DeleteTopicsResponse)
	wantCode(t, "delete the offsets topic", dresp.Topics[0].ErrorCode, kerr.InvalidTopicException)
	if _, ok := s.meta.Image().Topic(group.Topic); !ok {
		t.Fatal("offsets topic deleted")
	}
}

// TestStaticMemberRejoinNoRebalance (KIP-345): a static member that
// restarts inside its session timeout gets its partitions back without a
// rebalance: the generation does not move and the other member keeps
// consuming undisturbed.
func TestStaticMemberRejoinNoRebalance(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "events", 4)
	produceN(t, s, "events", 40)
	a := newStaticConsumer(t, s, "h", "ia")
	newStaticConsumer(t, s, "h", "ib")
	waitFor(t, "a Stable group of 2", func() bool {
		d, _, _ := s.ext.groups.Describe("h")
		return d.State == group.Stable && len(d.Members) == 2
	})
	before, _, _ := s.ext.groups.Describe("h")
	a.Close() // static: no LeaveGroup
	mid, _, _ := s.ext.groups.Describe("h")
	if len(mid.Members) != 2 || mid.State != group.Stable {
		t.Fatalf("after the static member stopped: %s with %d members", mid.State, len(mid.Members))
	}
	newStaticConsumer(t, s, "h", "ia")
	waitFor(t, "the restarted member to rejoin under a new member id", func() bool {
		d, _, _ := s.ext.groups.Describe("h")
		for _, m := range d.Members {
			if m.InstanceID == "ia" && m.ID != memberOf(before, "ia") {
				return true
			}
		}
		return false
	})
	after, _, _ := s.ext.groups.Describe("h")
	if after.Generation != before.Generation || after.State != group.Stable {
		t.Fatalf("generation %d -> %d (%s): the rejoin rebalanced", before.Generation, after.Generation, after.State)
	}
}

func memberOf(d group.Description, instance string) string {
	for _, m := range d.Members {
		if m.InstanceID == instance {
			return m.ID
		}
	}
	return ""
}

// newStaticConsumer starts a kgo group member with a group.instance.id and
// polls it until closed.
func newStaticConsumer(t *testing.T, s *Server, groupID, instance string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics("events"),
		kgo.InstanceID(instance), kgo.SessionTimeout(30*time.Second), kgo.ClientID(instance),
		// Eager: kgo's cooperative-sticky member rejoins after its first
		// sync to report what it owns, which rebalances on any broker.
		kgo.Balancers(kgo.RangeBalancer()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(t.Context())
			if fs.IsClientClosed() || t.Context().Err() != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cl.Close()
		<-done
	})
	return cl
}

// TestSessionExpiryOnServer: a member that stops heartbeating is removed by
// the coordinator's timer after its session timeout; the group ends Empty
// and its answered offsets stay.
func TestSessionExpiryOnServer(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Groups.MinSessionTimeout = 10 * time.Millisecond })
	mustCreate(t, s, "t", 1)
	c := dialRaw(t, s)
	req := joinReq(3, "g", "")
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 100, 100
	j := c.roundTrip(req, 1).(*kmsg.JoinGroupResponse)
	wantCode(t, "join", j.ErrorCode, nil)
	sy := kmsg.NewPtrSyncGroupRequest()
	sy.Group, sy.Generation, sy.MemberID = "g", j.Generation, j.MemberID
	wantCode(t, "sync", c.roundTrip(sy, 2).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.Generation, oc.MemberID = 2, "g", j.Generation, j.MemberID
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t"
	ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 4}}
	oc.Topics = append(oc.Topics, ct)
	wantCode(t, "commit", c.roundTrip(oc, 3).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	waitFor(t, "the silent member to expire", func() bool {
		d, _, _ := s.ext.groups.Describe("g")
		return d.State == group.Empty && len(d.Members) == 0
	})
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", j.MemberID, j.Generation
	wantCode(t, "heartbeat after expiry", c.roundTrip(hb, 4).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
	if offs, _ := s.ext.groups.FetchOffsets("g", nil); len(offs) != 1 || offs[0].Offset.Offset != 4 {
		t.Fatalf("offsets after expiry %+v", offs)
	}
}

// TestGroupAPIVersions: the classic group APIs are advertised at the
// versions the reference clients need (librdkafka 2.0.2: JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup from v0, OffsetFetch from 1; kafka-go and
// kafka-python pins), and KIP-848's ConsumerGroupHeartbeat and
// ConsumerGroupDescribe are not.
func TestGroupAPIVersions(t *testing.T) {
	s := startServer(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	resp := dialRaw(t, s).roundTrip(req, 1).(*kmsg.ApiVersionsResponse)
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	want := map[int16][2]int16{8: {0, 8}, 9: {1, 8}, 10: {0, 4}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5},
		15: {0, 5}, 16: {0, 4}, 42: {0, 2}, 47: {0, 0}}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %d (%s): advertised %v, want %v", k, kmsg.NameForKey(k), got[k], v)
		}
	}
	for _, k := range []int16{68, 69} {
		if _, ok := got[k]; ok {
			t.Errorf("key %d (%s) advertised: classic protocol only", k, kmsg.NameForKey(k))
		}
	}
}
