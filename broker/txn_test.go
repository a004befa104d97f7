package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// txnServer starts a server with a small __transaction_state.
func txnServer(t *testing.T, edit ...func(*Config)) *Server {
	t.Helper()
	return startServer(t, append([]func(*Config){func(c *Config) {
		c.Groups.Transactions.StateTopicPartitions = 3
	}}, edit...)...)
}

// consumeIsolated reads topic from the start with the isolation level until n
// records arrived or the deadline passed, and returns their values.
func consumeIsolated(t *testing.T, s *Server, topic string, committed bool, n int) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := newClient(t, s, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// endOffsets returns the high watermark and the last stable offset of
// topic-0 (ListOffsets latest, read_uncommitted and read_committed).
func endOffsets(t *testing.T, s *Server, topic string) (hw, lso int64) {
	t.Helper()
	c := dialRaw(t, s)
	get := func(iso int8) int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version, req.IsolationLevel = 4, iso
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := c.roundTrip(req, 1).(*kmsg.ListOffsetsResponse)
		return resp.Topics[0].Partitions[0].Offset
	}
	return get(0), get(1)
}

// TestTxnCommitAbortVisibility (KIP-98): a transactional producer commits
// and aborts alternately; read_committed sees only the committed records,
// read_uncommitted sees all; the LSO stops at an open transaction and
// returns to the HW when it ends.
func TestTxnCommitAbortVisibility(t *testing.T) {
	s := txnServer(t)
	createTopicRaw(t, dialRaw(t, s), "tx", 1, nil)
	p := newClient(t, s, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	want := []string{}
	for i := range 6 {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			v := fmt.Sprintf("%d-%d", i, j)
			if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			if i%2 == 0 {
				want = append(want, v)
			}
		}
		if i == 5 {
			hw, lso := endOffsets(t, s, "tx")
			if lso >= hw {
				t.Fatalf("open transaction: LSO %d, HW %d; want LSO below HW", lso, hw)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(i%2 == 0)); err != nil {
			t.Fatalf("end transaction %d: %v", i, err)
		}
	}
	// 18 records and 6 markers.
	if hw, lso := endOffsets(t, s, "tx"); hw != 24 || lso != 24 {
		t.Fatalf("HW %d LSO %d, want 24 24", hw, lso)
	}
	got := consumeIsolated(t, s, "tx", true, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed got %v, want %v", got, want)
	}
	all := consumeIsolated(t, s, "tx", false, 18)
	if len(all) != 18 {
		t.Fatalf("read_uncommitted got %d records, want 18: %v", len(all), all)
	}
}

// TestTxnZombieFenced: a second producer with the same transactional id
// fences the first; the first's writes and commit fail and none of what it
// wrote becomes visible.
func TestTxnZombieFenced(t *testing.T) {
	s := txnServer(t)
	createTopicRaw(t, dialRaw(t, s), "z", 1, nil)
	ctx := context.Background()
	opts := []kgo.Opt{kgo.TransactionalID("same"), kgo.DefaultProduceTopic("z"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(2)}
	old := newClient(t, s, opts...)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, kgo.StringRecord("zombie-1")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := newClient(t, s, opts...)
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.ProduceSync(ctx, kgo.StringRecord("fresh")).FirstErr(); err != nil {
		t.Fatalf("fresh producer: %v", err)
	}
	err := old.ProduceSync(ctx, kgo.StringRecord("zombie-2")).FirstErr()
	if err == nil {
		err = old.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := consumeIsolated(t, s, "z", true, 1); fmt.Sprint(got) != "[fresh]" {
		t.Fatalf("read_committed got %v, want [fresh]", got)
	}
}

// TestTxnOffsetsVisibleAtCommit: offsets sent in a transaction are
// invisible until it commits, and dropped when it aborts.
func TestTxnOffsetsVisibleAtCommit(t *testing.T) {
	s := txnServer(t)
	createTopicRaw(t, dialRaw(t, s), "in", 1, nil)
	c := dialRaw(t, s)
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.Version, initReq.TransactionalID, initReq.TransactionTimeoutMillis = 3, kmsg.StringPtr("off"), 60000
	initReq.ProducerID, initReq.ProducerEpoch = -1, -1
	ir := c.roundTrip(initReq, 1).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(ir.ErrorCode))
	}
	for i, commit := range []bool{false, true} {
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.Version, ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = 3, "off", ir.ProducerID, ir.ProducerEpoch, "g"
		if r := c.roundTrip(ao, 2).(*kmsg.AddOffsetsToTxnResponse); r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.Version, oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch, oc.Generation = 3, "off", "g", ir.ProducerID, ir.ProducerEpoch, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "in"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset = int64(10 * (i + 1))
		rt.Partitions = append(rt.Partitions, rp)
		oc.Topics = append(oc.Topics, rt)
		if r := c.roundTrip(oc, 3).(*kmsg.TxnOffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
		}
		if got := committedOffset(t, s, "g"); got != -1 && got != 10*int64(i) {
			t.Fatalf("offset visible before the transaction ended: %d", got)
		}
		if code := stableFetch(t, c, "g"); code != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("RequireStable fetch during the transaction: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
		}
		et := kmsg.NewPtrEndTxnRequest()
		et.Version, et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = 3, "off", ir.ProducerID, ir.ProducerEpoch, commit
		if r := c.roundTrip(et, 4).(*kmsg.EndTxnResponse); r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if got := committedOffset(t, s, "g"); got != 20 {
		t.Fatalf("committed offset %d, want 20 (the aborted 10 dropped)", got)
	}
	if code := stableFetch(t, c, "g"); code != 0 {
		t.Fatalf("RequireStable fetch after the transaction: %v", kerr.ErrorForCode(code))
	}
}

// stableFetch sends OffsetFetch v7 with RequireStable for in-0 of group g
// and returns the partition's error code (KIP-447).
func stableFetch(t *testing.T, c *rawConn, g string) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group, req.RequireStable = 7, g, true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "in", []int32{0}
	req.Topics = append(req.Topics, rt)
	return c.roundTrip(req, 7).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0].ErrorCode
}

// committedOffset returns group g's committed offset of in-0, or -1.
func committedOffset(t *testing.T, s *Server, g string) int64 {
	t.Helper()
	gc, err := s.coordinator()
	if err != nil {
		t.Fatal(err)
	}
	offs, err := gc.FetchOffsets(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		if o.Topic == "in" && o.Partition == 0 {
			return o.Offset.Offset
		}
	}
	return -1
}

// TestTxnBadInput: Kafka's answers to requests that break the rules.
func TestTxnBadInput(t *testing.T) {
	s := txnServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "b", 1, nil)
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.Version, initReq.TransactionalID, initReq.TransactionTimeoutMillis = 3, kmsg.StringPtr("bad"), 60000
	initReq.ProducerID, initReq.ProducerEpoch = -1, -1
	ir := c.roundTrip(initReq, 1).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(ir.ErrorCode))
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	addParts := func(id, topic string, e int16) int16 {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = 3, id, pid, e
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		return c.roundTrip(req, 2).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
	}
	endTxn := func(id string, e int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = 3, id, pid, e, commit
		return c.roundTrip(req, 3).(*kmsg.EndTxnResponse).ErrorCode
	}
	timeoutReq := kmsg.NewPtrInitProducerIDRequest()
	timeoutReq.Version, timeoutReq.TransactionalID, timeoutReq.TransactionTimeoutMillis = 3, kmsg.StringPtr("t"), int32((16 * time.Minute).Milliseconds())
	tests := []struct {
		name string
		got  func() int16
		want *kerr.Error
	}{
		{"EndTxn for an unknown id", func() int16 { return endTxn("nobody", 0, true) }, kerr.InvalidProducerIDMapping},
		{"commit with no transaction open", func() int16 { return endTxn("bad", epoch, true) }, kerr.InvalidTxnState},
		{"AddPartitions for an unknown topic", func() int16 { return addParts("bad", "no-such-topic", epoch) }, kerr.UnknownTopicOrPartition},
		{"AddPartitions for an internal topic", func() int16 { return addParts("bad", "__consumer_offsets", epoch) }, kerr.InvalidTopicException},
		{"AddPartitions with an old epoch", func() int16 { return addParts("bad", "b", epoch-1) }, kerr.ProducerFenced},
		{"timeout above the maximum", func() int16 {
			return c.roundTrip(timeoutReq, 4).(*kmsg.InitProducerIDResponse).ErrorCode
		}, kerr.InvalidTransactionTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.got(); got != tc.want.Code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(got), tc.want)
			}
		})
	}
	// Nothing reached the log.
	if hw, _ := endOffsets(t, s, "b"); hw != 0 {
		t.Fatalf("HW %d, want 0", hw)
	}
	// A transactional batch out of sequence inside the transaction:
	// OUT_OF_ORDER_SEQUENCE_NUMBER, nothing written; a batch for a
	// partition not added: INVALID_TXN_STATE.
	tc := newTxnClient(t, s, "seq", 60000)
	tc.produce("b", 2)
	createTopicRaw(t, c, "other", 1, nil)
	for _, bad := range []struct {
		name  string
		topic string
		seq   int32
		want  *kerr.Error
	}{
		{"sequence gap", "b", 5, kerr.OutOfOrderSequenceNumber},
		{"partition not in the transaction", "other", 0, kerr.InvalidTxnState},
	} {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, -1, 5000, kmsg.StringPtr("seq")
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = bad.topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = nowBatch("bad", 1, batch.Options{Idempotent: true, Transactional: true, ProducerID: tc.pid, ProducerEpoch: tc.epoch, BaseSequence: bad.seq})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if got := tc.rt(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; got != bad.want.Code {
			t.Fatalf("%s: %v, want %v", bad.name, kerr.ErrorForCode(got), bad.want)
		}
	}
	tc.must("abort", tc.end(false))
	if hw, lso := endOffsets(t, s, "b"); hw != 3 || lso != 3 {
		t.Fatalf("after the aborted transaction: HW %d LSO %d, want 3 3 (2 records and the marker)", hw, lso)
	}
	if got := consumeIsolated(t, s, "b", true, 0); len(got) != 0 {
		t.Fatalf("read_committed saw %v", got)
	}
	if hw, _ := endOffsets(t, s, "other"); hw != 0 {
		t.Fatalf("other: HW %d, want 0", hw)
	}
}

// txnClient drives one transactional id with raw requests.
type txnClient struct {
	t     *testing.T
	c     *rawConn
	id    string
	pid   int64
	epoch int16
	seq   int32
	corr  int32
}

func newTxnClient(t *testing.T, s *Server, id string, timeoutMs int32) *txnClient {
	t.Helper()
	tc := &txnClient{t: t, c: dialRaw(t, s), id: id}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 3, kmsg.StringPtr(id), timeoutMs
	req.ProducerID, req.ProducerEpoch = -1, -1
	r := tc.rt(req).(*kmsg.InitProducerIDResponse)
	if r.ErrorCode != 0 {
		t.Fatalf("init %s: %v", id, kerr.ErrorForCode(r.ErrorCode))
	}
	tc.pid, tc.epoch = r.ProducerID, r.ProducerEpoch
	return tc
}

func (tc *txnClient) rt(req kmsg.Request) kmsg.Response {
	tc.corr++
	return tc.c.roundTrip(req, tc.corr)
}

func (tc *txnClient) must(what string, code int16) {
	tc.t.Helper()
	if code != 0 {
		tc.t.Fatalf("%s: %v", what, kerr.ErrorForCode(code))
	}
}

// produce adds topic-0 to the transaction and writes n records to it.
func (tc *txnClient) produce(topic string, n int) {
	tc.t.Helper()
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.Version, ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = 3, tc.id, tc.pid, tc.epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = topic, []int32{0}
	ap.Topics = append(ap.Topics, at)
	tc.must("add partitions", tc.rt(ap).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, -1, 5000, kmsg.StringPtr(tc.id)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = nowBatch(tc.id, n, batch.Options{Idempotent: true, Transactional: true, ProducerID: tc.pid, ProducerEpoch: tc.epoch, BaseSequence: tc.seq})
	tc.seq += int32(n)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	tc.must("produce", tc.rt(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode)
}

// commitOffset sends group g's offset of in-0 in the transaction.
func (tc *txnClient) commitOffset(g string, offset int64) {
	tc.t.Helper()
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.Version, ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = 3, tc.id, tc.pid, tc.epoch, g
	tc.must("add offsets", tc.rt(ao).(*kmsg.AddOffsetsToTxnResponse).ErrorCode)
	oc := kmsg.NewPtrTxnOffsetCommitRequest()
	oc.Version, oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch, oc.Generation = 3, tc.id, g, tc.pid, tc.epoch, -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "in"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	oc.Topics = append(oc.Topics, rt)
	tc.must("txn offset commit", tc.rt(oc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode)
}

func (tc *txnClient) end(commit bool) int16 {
	et := kmsg.NewPtrEndTxnRequest()
	et.Version, et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = 3, tc.id, tc.pid, tc.epoch, commit
	return tc.rt(et).(*kmsg.EndTxnResponse).ErrorCode
}

// TestTxnRestartCompletesOrAborts: across a broker restart, a committed
// transaction's records and offsets stay; an open one is aborted (its
// records never visible, its offsets dropped, the LSO back at the HW) and
// its producer must re-initialise (INVALID_PRODUCER_EPOCH).
func TestTxnRestartCompletesOrAborts(t *testing.T) {
	dir := t.TempDir()
	edit := func(c *Config) { c.DataDir = dir }
	s := txnServer(t, edit)
	createTopicRaw(t, dialRaw(t, s), "out", 1, nil)
	createTopicRaw(t, dialRaw(t, s), "in", 1, nil)
	done := newTxnClient(t, s, "done", 60000)
	done.produce("out", 2)
	done.commitOffset("g", 5)
	done.must("commit", done.end(true))
	open := newTxnClient(t, s, "open", 60000)
	open.produce("out", 3)
	open.commitOffset("g", 9)
	if hw, lso := endOffsets(t, s, "out"); lso != 3 || hw != 6 {
		t.Fatalf("before restart: HW %d LSO %d, want 6 3", hw, lso)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = txnServer(t, edit)
	if hw, lso := endOffsets(t, s, "out"); lso != hw || hw != 7 {
		t.Fatalf("after restart: HW %d LSO %d, want 7 7 (the abort marker)", hw, lso)
	}
	if got := committedOffset(t, s, "g"); got != 5 {
		t.Fatalf("offset %d after restart, want 5", got)
	}
	if got := consumeIsolated(t, s, "out", true, 2); fmt.Sprint(got) != "[done-0 done-1]" {
		t.Fatalf("read_committed %v", got)
	}
	open.c = dialRaw(t, s)
	if code := open.end(true); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("commit of the aborted transaction: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	c, err := s.txnCoordinator()
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Describe("open"); m.State.String() != "CompleteAbort" {
		t.Fatalf("open transaction after restart: %+v", m)
	}
}

// TestTxnTimeoutAborts: a transaction left open past
// transaction.timeout.ms is aborted by the coordinator: the LSO returns to
// the HW and nothing of it is visible to read_committed; the producer gets
// INVALID_PRODUCER_EPOCH, which clients recover from (KIP-588).
func TestTxnTimeoutAborts(t *testing.T) {
	s := txnServer(t, func(c *Config) { c.Groups.Transactions.AbortInterval = 20 * time.Millisecond })
	createTopicRaw(t, dialRaw(t, s), "out", 1, nil)
	tc := newTxnClient(t, s, "slow", 100)
	tc.produce("out", 4)
	waitFor(t, "the abort of the expired transaction", func() bool {
		hw, lso := endOffsets(t, s, "out")
		return hw == 5 && lso == 5
	})
	if got := consumeIsolated(t, s, "out", true, 0); len(got) != 0 {
		t.Fatalf("read_committed saw %v", got)
	}
	if code := tc.end(true); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("commit after the timeout: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
}

// TestTxnAdminBeforeFirstUse: DescribeTransactions and ListTransactions on
// a broker that never saw a transaction answer "not found" and nothing,
// and do not create __transaction_state.
func TestTxnAdminBeforeFirstUse(t *testing.T) {
	s := txnServer(t)
	c := dialRaw(t, s)
	d := kmsg.NewPtrDescribeTransactionsRequest()
	d.TransactionalIDs = []string{"x"}
	dr := c.roundTrip(d, 1).(*kmsg.DescribeTransactionsResponse)
	if len(dr.TransactionStates) != 1 || dr.TransactionStates[0].ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe: %+v", dr.TransactionStates)
	}
	l := kmsg.NewPtrListTransactionsRequest()
	l.StateFilters = []string{"Ongoing", "Bogus"}
	lr := c.roundTrip(l, 2).(*kmsg.ListTransactionsResponse)
	if lr.ErrorCode != 0 || len(lr.TransactionStates) != 0 || fmt.Sprint(lr.UnknownStateFilters) != "[Bogus]" {
		t.Fatalf("list: %+v", lr)
	}
	if _, ok := s.meta.Image().Topic("__transaction_state"); ok {
		t.Fatal("__transaction_state created by an admin request")
	}
}
