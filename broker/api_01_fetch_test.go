package broker

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// fetchPart is one partition of a fetch request.
type fetchPart struct {
	topic     string
	partition int32
	offset    int64
	maxBytes  int32
}

func fetchRequest(version int16, maxWait, minBytes, maxBytes int32, parts ...fetchPart) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID = version, -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	req.SessionEpoch = -1
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, p.maxBytes
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// fetchOne fetches one partition without waiting.
func fetchOne(t *testing.T, c *rawConn, version int16, topic string, partition int32, offset int64, maxBytes int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := fetchRequest(version, 0, 1, maxBytes, fetchPart{topic, partition, offset, maxBytes})
	resp := c.roundTrip(req, 5).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("fetch: top-level error %v, session %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
	}
	return resp.Topics[0].Partitions[0]
}

// batchesOf splits fetched bytes into batches, checking each one's CRC.
func batchesOf(t *testing.T, b []byte) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for len(b) > 0 {
		bt, err := batch.Parse(b)
		if err != nil {
			t.Fatalf("fetched batch %d: %v", len(out), err)
		}
		out = append(out, bt)
		b = b[len(bt):]
	}
	return out
}

func firstBase(t *testing.T, b []byte) int64 {
	t.Helper()
	bs := batchesOf(t, b)
	if len(bs) == 0 {
		t.Fatal("no batches fetched")
	}
	return bs[0].BaseOffset()
}

// TestFetchEveryVersion fetches the same data at every served version and
// checks the batches, offsets and the session opened from v7.
func TestFetchEveryVersion(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "fv", 1, nil)
	var want []byte
	for i := range 3 {
		b := nowBatch(fmt.Sprint(i), 4, batch.Options{})
		produceRaw(t, c, 9, 1, "fv", 0, b)
		batch.Batch(b).SetBaseOffset(int64(4 * i))
		batch.Batch(b).SetPartitionLeaderEpoch(0)
		want = append(want, b...)
	}
	for v := int16(4); v <= 12; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			req := fetchRequest(v, 0, 1, 1<<20, fetchPart{"fv", 0, 0, 1 << 20})
			req.SessionID, req.SessionEpoch = 0, 0 // asks for a new session
			resp := c.roundTrip(req, int32(v)).(*kmsg.FetchResponse)
			if resp.ErrorCode != 0 || (v >= 7) != (resp.SessionID != 0) {
				t.Fatalf("error %v, session id %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 12 || p.LastStableOffset != 12 {
				t.Fatalf("error %v HW %d LSO %d", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, p.LastStableOffset)
			}
			if v >= 5 && p.LogStartOffset != 0 {
				t.Fatalf("log start %d", p.LogStartOffset)
			}
			if p.AbortedTransactions == nil || len(p.AbortedTransactions) != 0 {
				t.Fatalf("aborted transactions %v, want empty", p.AbortedTransactions)
			}
			if !bytes.Equal(p.RecordBatches, want) {
				t.Fatalf("fetched %d bytes, want the %d produced", len(p.RecordBatches), len(want))
			}
		})
	}
}

// TestFetchInsideBatch starts at the batch that contains the offset.
func TestFetchInsideBatch(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "fi", 1, nil)
	produceRaw(t, c, 9, 1, "fi", 0, nowBatch("a", 5, batch.Options{}))
	produceRaw(t, c, 9, 1, "fi", 0, nowBatch("b", 5, batch.Options{}))
	tests := []struct {
		offset    int64
		wantFirst int64
		wantN     int
	}{{0, 0, 2}, {3, 0, 2}, {4, 0, 2}, {5, 5, 1}, {9, 5, 1}, {10, -1, 0}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.offset), func(t *testing.T) {
			p := fetchOne(t, c, 12, "fi", 0, tc.offset, 1<<20)
			bs := batchesOf(t, p.RecordBatches)
			if p.ErrorCode != 0 || len(bs) != tc.wantN || (tc.wantN > 0 && bs[0].BaseOffset() != tc.wantFirst) {
				t.Fatalf("error %v, %d batches", kerr.ErrorForCode(p.ErrorCode), len(bs))
			}
		})
	}
	if p := fetchOne(t, c, 12, "fi", 0, 11, 1<<20); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 10 || p.LogStartOffset != 0 {
		t.Fatalf("fetch past the end: %v, HW %d, log start %d", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, p.LogStartOffset)
	}
	createTopicRaw(t, c, "empty", 1, nil)
	if p := fetchOne(t, c, 12, "empty", 0, 1, 1<<20); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 0 || p.LogStartOffset != 0 {
		t.Fatalf("fetch past the end of an empty log: %v, HW %d, log start %d", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, p.LogStartOffset)
	}
	if p := fetchOne(t, c, 12, "nope", 0, 0, 1<<20); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

// TestFetchMaxBytes: the first batch of the response is whole even over
// MaxBytes and PartitionMaxBytes (KIP-74); later partitions get nothing
// that does not fit.
func TestFetchMaxBytes(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "mb", 2, nil)
	for p := int32(0); p < 2; p++ {
		for range 2 {
			produceRaw(t, c, 9, 1, "mb", p, nowBatch("x", 20, batch.Options{}))
		}
	}
	one := len(batchesOf(t, fetchOne(t, c, 12, "mb", 0, 0, 1<<20).RecordBatches)[0])
	tests := []struct {
		name        string
		maxBytes    int32
		partMax     int32
		wantBatches [2]int
	}{
		{"room for all", 1 << 20, 1 << 20, [2]int{2, 2}},
		{"MaxBytes 1: first batch whole, nothing more", 1, 1 << 20, [2]int{1, 0}},
		{"PartitionMaxBytes 1: only the first batch of the response is whole", 1 << 20, 1, [2]int{1, 0}},
		{"room for three batches", int32(3*one + one/2), 1 << 20, [2]int{2, 1}},
		{"one batch per partition", 1 << 20, int32(one + one/2), [2]int{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := fetchRequest(12, 0, 1, tc.maxBytes, fetchPart{"mb", 0, 0, tc.partMax}, fetchPart{"mb", 1, 0, tc.partMax})
			resp := c.roundTrip(req, 1).(*kmsg.FetchResponse)
			for i, p := range resp.Topics[0].Partitions {
				if n := len(batchesOf(t, p.RecordBatches)); n != tc.wantBatches[i] || p.HighWatermark != 40 {
					t.Fatalf("partition %d: %d batches HW %d, want %d batches", i, n, p.HighWatermark, tc.wantBatches[i])
				}
			}
		})
	}
}

// pollFor polls cond until it holds or the deadline passes.
func pollFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for an event
	}
}

// recvFetch reads the answer to req, a flexible fetch sent with c.send as
// correlation id corr, within the connection's deadline.
func recvFetch(t *testing.T, c *rawConn, req *kmsg.FetchRequest, corr int32) *kmsg.FetchResponse {
	t.Helper()
	got, body, err := c.recv()
	if err != nil || got != corr {
		t.Fatalf("recv: corr %d (want %d), %v", got, corr, err)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(body[1:]); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestFetchLongPollWakesOnProduce parks a fetch with a long MaxWait, then
// produces on another connection: the fetch answers with the new batch.
func TestFetchLongPollWakesOnProduce(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "lp", 2, nil)
	req := fetchRequest(12, 60_000, 1, 1<<20, fetchPart{"lp", 0, 0, 1 << 20}, fetchPart{"lp", 1, 0, 1 << 20})
	c.send(req, 42)
	pollFor(t, "the fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })
	if got := gaugeValue(t, s, "weir_purgatory_waiting", "fetch"); got != 1 {
		t.Fatalf("weir_purgatory_waiting{purgatory=fetch} = %v, want 1", got)
	}
	p := dialRaw(t, s)
	produceRaw(t, p, 9, 1, "lp", 1, nowBatch("wake", 3, batch.Options{}))
	got := recvFetch(t, c, req, 42).Topics[0].Partitions
	if len(got[0].RecordBatches) != 0 || len(batchesOf(t, got[1].RecordBatches)) != 1 || got[1].HighWatermark != 3 {
		t.Fatalf("woken fetch: p0 %d bytes, p1 HW %d", len(got[0].RecordBatches), got[1].HighWatermark)
	}
	if _, f := s.replicas().Waiting(); f != 0 {
		t.Fatalf("%d fetches still parked", f)
	}
}

// TestFetchLongPollMinBytes: a fetch waiting for more bytes than one small
// batch stays parked after it, and answers when enough have arrived.
func TestFetchLongPollMinBytes(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "mn", 1, nil)
	small := nowBatch("s", 1, batch.Options{})
	req := fetchRequest(12, 60_000, int32(3*len(small)), 1<<20, fetchPart{"mn", 0, 0, 1 << 20})
	c.send(req, 1)
	pollFor(t, "the fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })
	p := dialRaw(t, s)
	produceRaw(t, p, 9, 1, "mn", 0, small)
	if _, f := s.replicas().Waiting(); f != 1 {
		t.Fatal("fetch answered before MinBytes were available")
	}
	produceRaw(t, p, 9, 1, "mn", 0, nowBatch("s", 1, batch.Options{}))
	produceRaw(t, p, 9, 1, "mn", 0, nowBatch("s", 1, batch.Options{}))
	resp := recvFetch(t, c, req, 1)
	if n := len(batchesOf(t, resp.Topics[0].Partitions[0].RecordBatches)); n != 3 {
		t.Fatalf("%d batches, want 3", n)
	}
}

// TestFetchLongPollMinBytesAcrossSegments: with segment.bytes so small that
// every batch rolls, a fetch asking for more than the first segment holds
// (but less than the two later segments hold) answers with the first
// segment's batch long before its 30 s MaxWait. A partition's answer comes
// from one segment, so, as Kafka's DelayedFetch, the fetch completes once
// the data runs past its fetch offset's segment: at once when the later
// segments are there, and at the first batch that lands in a new segment
// while it waits. The connection's 10 s deadline is the test's limit, not a
// timing assertion.
func TestFetchLongPollMinBytesAcrossSegments(t *testing.T) {
	tests := []struct {
		name      string
		isolation int8
		before    int // batches produced before the fetch
		total     int // batches produced when the fetch answers
	}{
		{"read_uncommitted, data there", 0, 3, 3},
		{"read_uncommitted, data arrives", 0, 1, 2},
		{"read_committed, data there", 1, 3, 3},
		{"read_committed, data arrives", 1, 1, 2},
	}
	s := startServer(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprint("seg", i)
			c := dialRaw(t, s)
			createTopicRaw(t, c, topic, 1, map[string]string{"segment.bytes": "61"})
			p := dialRaw(t, s)
			first := nowBatch("first", 1, batch.Options{})
			produceRaw(t, p, 9, 1, topic, 0, bytes.Clone(first))
			produce := func() { produceRaw(t, p, 9, 1, topic, 0, nowBatch("later", 1, batch.Options{})) }
			for range tc.before - 1 {
				produce()
			}
			minBytes := int32(len(first) + 1) // more than the first segment, less than the later two
			req := fetchRequest(12, 30_000, minBytes, 1<<20, fetchPart{topic, 0, 0, 1 << 20})
			req.IsolationLevel = tc.isolation
			c.send(req, 7)
			if tc.before < tc.total {
				pollFor(t, "the fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })
				for range tc.total - tc.before {
					produce()
				}
			}
			got := recvFetch(t, c, req, 7).Topics[0].Partitions[0]
			if got.ErrorCode != 0 || got.HighWatermark != int64(tc.total) ||
				len(got.RecordBatches) != len(first) || !bytes.Equal(got.RecordBatches[16:], first[16:]) { // past offset and epoch
				t.Fatalf("fetch: %v, HW %d, %d bytes, want the first segment's batch (%d bytes)",
					kerr.ErrorForCode(got.ErrorCode), got.HighWatermark, len(got.RecordBatches), len(first))
			}
		})
	}
}

// TestFetchMinBytesZero: MinBytes 0 answers at once even with MaxWait.
func TestFetchMinBytesZero(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "mz", 1, nil)
	resp := c.roundTrip(fetchRequest(12, 3_600_000, 0, 1<<20, fetchPart{"mz", 0, 0, 1 << 20}), 1).(*kmsg.FetchResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("MinBytes 0: %v, %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
}

// TestFetchLongPollExpires: with no data, the fetch answers empty after
// MaxWait, without error.
func TestFetchLongPollExpires(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "ex", 1, nil)
	resp := c.roundTrip(fetchRequest(12, 20, 1, 1<<20, fetchPart{"ex", 0, 0, 1 << 20}), 1).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("expired fetch: %v, %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
}

// TestFetchTailWithKgo has a kgo consumer tail a topic while a
// producer writes, through long polls.
func TestFetchTailWithKgo(t *testing.T) {
	s := startServer(t)
	createTopicRaw(t, dialRaw(t, s), "tail", 1, nil)
	cons := newClient(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tail": {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(5*time.Second))
	prod := newClient(t, s, kgo.DefaultProduceTopic("tail"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		prod.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}, nil)
	}
	got := 0
	for got < 20 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 20", got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != fmt.Sprint(got) || r.Offset != int64(got) {
				t.Fatalf("record %q at %d, want %d", r.Value, r.Offset, got)
			}
			got++
		})
	}
}

// TestFetchLeaderEpoch: a client's CurrentLeaderEpoch must match the
// partition's (KIP-320).
func TestFetchLeaderEpoch(t *testing.T) {
	_, c := epochThree(t, "ep")
	tests := []struct {
		epoch int32
		want  *kerr.Error
	}{{-1, nil}, {3, nil}, {2, kerr.FencedLeaderEpoch}, {4, kerr.UnknownLeaderEpoch}}
	for _, tc := range tests {
		req := fetchRequest(12, 0, 1, 1<<20, fetchPart{"ep", 0, 0, 1 << 20})
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = tc.epoch
		got := c.roundTrip(req, 1).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if got.ErrorCode != codeOf(tc.want) {
			t.Fatalf("epoch %d: %v, want %v", tc.epoch, kerr.ErrorForCode(got.ErrorCode), tc.want)
		}
	}
	if got := listOffset(t, c, "ep", 0, -1); got.LeaderEpoch != 3 {
		t.Fatalf("ListOffsets latest leader epoch %d, want 3", got.LeaderEpoch)
	}
}

// TestCloseAnswersParkedFetch: shutting down answers a parked long poll at
// once instead of leaving it to the shutdown timeout.
func TestCloseAnswersParkedFetch(t *testing.T) {
	s := startServer(t, func(c *Config) { c.ShutdownTimeout = time.Hour })
	c := dialRaw(t, s)
	createTopicRaw(t, c, "sd", 1, nil)
	req := fetchRequest(12, 3_600_000, 1, 1<<20, fetchPart{"sd", 0, 0, 1 << 20})
	c.send(req, 9)
	pollFor(t, "the fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	corr, _, err := c.recv()
	if err != nil || corr != 9 {
		t.Fatalf("parked fetch not answered at shutdown: corr %d, %v", corr, err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// gaugeValue reads a gauge from the server's registry; label, if not empty,
// is the value of its only label.
func gaugeValue(t *testing.T, s *Server, name, label string) float64 {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no gauge %s{%s}", name, label)
	return 0
}

// TestFollowerFetchCommitsAcksAll plays a follower over the wire (Fetch with
// a replica id) for a partition whose ISR holds it: an acks=all produce
// parks; the follower's parked fetch wakes on the append and gets the
// uncommitted batch; its next fetch, from its new log end offset, moves the
// high watermark, which answers the produce; consumers see the batch only
// then.
func TestFollowerFetchCommitsAcksAll(t *testing.T) {
	s := startServer(t)
	admin := dialRaw(t, s)
	createTopicRaw(t, admin, "rep", 1, map[string]string{"min.insync.replicas": "2"})
	p, _ := s.replicas().Partition("rep", 0)
	leader, follower := s.cfg.NodeID, s.cfg.NodeID+1
	p.BecomeLeader(0, []int32{leader, follower})

	fc := dialRaw(t, s)
	ffetch := func(offset int64, maxWait int32) *kmsg.FetchRequest {
		req := fetchRequest(12, maxWait, 1, 1<<20, fetchPart{"rep", 0, offset, 1 << 20})
		req.ReplicaID = follower
		return req
	}
	readFetch := func(c *rawConn, req *kmsg.FetchRequest) kmsg.FetchResponseTopicPartition {
		_, body, err := c.recv()
		if err != nil {
			t.Fatal(err)
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		if err := resp.ReadFrom(body[1:]); err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	first := ffetch(0, 60_000)
	fc.send(first, 1)
	pollFor(t, "the follower's fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })

	pc := dialRaw(t, s)
	preq := produceReq("rep", -1, nowBatch("r", 2, batch.Options{}))
	pc.send(preq, 2)

	got := readFetch(fc, first)
	if bs := batchesOf(t, got.RecordBatches); len(bs) != 1 || got.HighWatermark != 0 {
		t.Fatalf("follower fetch: %d batches, HW %d; want the uncommitted batch, HW 0", len(bs), got.HighWatermark)
	}
	// The append woke the follower before its produce parked: wait for it.
	pollFor(t, "the acks=all produce to park", func() bool { n, _ := s.replicas().Waiting(); return n == 1 })
	if c := fetchOne(t, admin, 12, "rep", 0, 0, 1<<20); len(c.RecordBatches) != 0 || c.HighWatermark != 0 {
		t.Fatalf("a consumer saw %d uncommitted bytes", len(c.RecordBatches))
	}

	second := ffetch(2, 0)
	fc.send(second, 3)
	if got := readFetch(fc, second); got.HighWatermark != 2 || len(got.RecordBatches) != 0 {
		t.Fatalf("second follower fetch: HW %d, %d bytes", got.HighWatermark, len(got.RecordBatches))
	}
	_, body, err := pc.recv()
	if err != nil {
		t.Fatal(err)
	}
	presp := preq.ResponseKind().(*kmsg.ProduceResponse)
	if err := presp.ReadFrom(body[1:]); err != nil {
		t.Fatal(err)
	}
	if pp := presp.Topics[0].Partitions[0]; pp.ErrorCode != 0 || pp.BaseOffset != 0 {
		t.Fatalf("acks=all produce: %v base %d", kerr.ErrorForCode(pp.ErrorCode), pp.BaseOffset)
	}
	if c := fetchOne(t, admin, 12, "rep", 0, 0, 1<<20); len(batchesOf(t, c.RecordBatches)) != 1 || c.HighWatermark != 2 {
		t.Fatalf("consumer after commit: HW %d", c.HighWatermark)
	}
}

// epochThree starts a server with a one-partition topic holding one record
// whose leader epoch is 3.
func epochThree(t *testing.T, topic string) (*Server, *rawConn) {
	t.Helper()
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, topic, 1, nil)
	produceRaw(t, c, 9, 1, topic, 0, nowBatch("e", 1, batch.Options{}))
	p, _ := s.replicas().Partition(topic, 0)
	p.BecomeLeader(3, []int32{s.cfg.NodeID})
	return s, c
}

// TestFetchLongPollErrorsAnswerAtOnce: a caught-up consumer's long poll
// (nothing to wait for but data) that has a fenced or unknown leader epoch
// or asks for a partition that does not exist is answered with the error at
// once, not parked for MaxWait, and one that is not is parked.
func TestFetchLongPollErrorsAnswerAtOnce(t *testing.T) {
	s, c := epochThree(t, "lp")
	tests := []struct {
		name      string
		partition int32
		epoch     int32
		want      *kerr.Error
	}{
		{"fenced epoch", 0, 2, kerr.FencedLeaderEpoch},
		{"unknown epoch", 0, 4, kerr.UnknownLeaderEpoch},
		{"no such partition", 7, -1, kerr.UnknownTopicOrPartition},
	}
	for i, tc := range tests {
		req := fetchRequest(12, 30000, 1, 1<<20, fetchPart{"lp", tc.partition, 1, 1 << 20})
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = tc.epoch
		start := time.Now()
		c.send(req, int32(i+1))
		got := recvFetch(t, c, req, int32(i+1)).Topics[0].Partitions[0]
		if got.ErrorCode != codeOf(tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got.ErrorCode), tc.want)
		}
		if waited := time.Since(start); waited > 15*time.Second {
			t.Fatalf("%s: answered after %v: it waited for MaxWait", tc.name, waited)
		}
	}
	req := fetchRequest(12, 30000, 1, 1<<20, fetchPart{"lp", 0, 1, 1 << 20})
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
	c.send(req, 99)
	pollFor(t, "the caught-up fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })
}
