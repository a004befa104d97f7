package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// createTopicRaw creates a topic through CreateTopics and fails the test on
// any error.
func createTopicRaw(t *testing.T, c *rawConn, name string, partitions int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	req.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req, 1).(*kmsg.CreateTopicsResponse)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %s: %v", name, kerr.ErrorForCode(code))
	}
}

// nowBatch builds a batch of n records with current timestamps and values
// "<tag>-<i>".
func nowBatch(tag string, n int, o batch.Options) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	return batch.MustBuild(o, recs...)
}

// produceRaw sends one partition's records and returns its response.
func produceRaw(t *testing.T, c *rawConn, version int16, acks int16, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.roundTrip(req, 7).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

// latestOffset asks ListOffsets for the high watermark.
func latestOffset(t *testing.T, c *rawConn, topic string, partition int32) int64 {
	t.Helper()
	return listOffset(t, c, topic, partition, -1).Offset
}

func newClient(t *testing.T, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeN reads n records of topic's partition 0 from the start.
func consumeN(t *testing.T, s *Server, topic string, n int) []string {
	t.Helper()
	cl := newClient(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestProduceAcksWithKgo produces with acks 0, 1 and all through franz-go
// and reads everything back in order.
func TestProduceAcksWithKgo(t *testing.T) {
	tests := []struct {
		name string
		acks kgo.Acks
		idem bool
	}{
		{"acks=0", kgo.NoAck(), false},
		{"acks=1", kgo.LeaderAck(), false},
		{"acks=all", kgo.AllISRAcks(), false},
		{"acks=all idempotent", kgo.AllISRAcks(), true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t)
			topic := fmt.Sprintf("acks-%d", i)
			createTopicRaw(t, dialRaw(t, s), topic, 1, nil)
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(tc.acks)}
			if !tc.idem {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			cl := newClient(t, s, opts...)
			var want []string
			for j := range 50 {
				v := fmt.Sprintf("v%d", j)
				want = append(want, v)
				res := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(v)})
				if err := res.FirstErr(); err != nil {
					t.Fatalf("produce %d: %v", j, err)
				}
				if r := res[0].Record; tc.acks != kgo.NoAck() && r.Offset != int64(j) {
					t.Fatalf("record %d got offset %d", j, r.Offset)
				}
			}
			got := consumeN(t, s, topic, len(want))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("consumed %v\nwant %v", got, want)
			}
		})
	}
}

// initProducerID gets a producer id through InitProducerId.
func initProducerID(t *testing.T, c *rawConn) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	resp := c.roundTrip(req, 3).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId: %v epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch)
	}
	return resp.ProducerID
}

// TestProduceIdempotentRetries replays the retries an idempotent producer
// makes: a duplicate answers the original offset and writes nothing, a gap
// in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch is
// INVALID_PRODUCER_EPOCH.
func TestProduceIdempotentRetries(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "idem", 1, nil)
	pid := initProducerID(t, c)
	idem := func(epoch int16, seq int32, n int) []byte {
		return nowBatch("i", n, batch.Options{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
	}
	steps := []struct {
		name     string
		records  []byte
		wantErr  *kerr.Error
		wantBase int64
		wantLEO  int64
	}{
		{"first", idem(0, 0, 3), nil, 0, 3},
		{"retry of first", idem(0, 0, 3), nil, 0, 3},
		{"next", idem(0, 3, 2), nil, 3, 5},
		{"retry of the first again", idem(0, 0, 3), nil, 0, 5},
		{"gap", idem(0, 9, 1), kerr.OutOfOrderSequenceNumber, -1, 5},
		{"epoch bump from 0", idem(1, 0, 1), nil, 5, 6},
		{"old epoch", idem(0, 5, 1), kerr.InvalidProducerEpoch, -1, 6},
	}
	for _, st := range steps {
		got := produceRaw(t, c, 9, -1, "idem", 0, st.records)
		if err := kerr.ErrorForCode(got.ErrorCode); !errors.Is(err, st.wantErr) && !(err == nil && st.wantErr == nil) {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
		if got.BaseOffset != st.wantBase {
			t.Fatalf("%s: base offset %d, want %d", st.name, got.BaseOffset, st.wantBase)
		}
		if leo := latestOffset(t, c, "idem", 0); leo != st.wantLEO {
			t.Fatalf("%s: high watermark %d, want %d", st.name, leo, st.wantLEO)
		}
	}
}

// TestProduceErrors checks the per-partition errors of bad produces, that
// none of them changes the log, and that bad bytes (and only they) are
// logged, in one line.
func TestProduceErrors(t *testing.T) {
	logs := &lineLog{}
	s := startServer(t, func(c *Config) { c.AutoCreateTopics = false; c.Logger = slog.New(logs) })
	c := dialRaw(t, s)
	createTopicRaw(t, c, "errs", 1, map[string]string{"max.message.bytes": "200"})
	corrupt := nowBatch("c", 2, batch.Options{})
	corrupt[len(corrupt)-1] ^= 0xff
	truncated := nowBatch("c", 2, batch.Options{})
	tests := []struct {
		name      string
		version   int16
		acks      int16
		topic     string
		partition int32
		records   []byte
		want      *kerr.Error
	}{
		{"corrupt CRC", 9, 1, "errs", 0, corrupt, kerr.CorruptMessage},
		{"truncated batch", 9, 1, "errs", 0, truncated[:len(truncated)-3], kerr.CorruptMessage},
		{"empty records", 9, 1, "errs", 0, nil, kerr.CorruptMessage},
		{"control batch", 9, 1, "errs", 0, nowBatch("c", 1, batch.Options{Control: true}), kerr.InvalidRecord},
		{"transactional batch", 9, 1, "errs", 0, nowBatch("t", 1, batch.Options{Transactional: true, Idempotent: true, ProducerID: 1}), kerr.InvalidTxnState},
		{"over max.message.bytes", 9, 1, "errs", 0, nowBatch("big", 20, batch.Options{}), kerr.MessageTooLarge},
		{"unknown partition", 9, 1, "errs", 4, nowBatch("u", 1, batch.Options{}), kerr.UnknownTopicOrPartition},
		{"unknown topic, no auto-create", 9, 1, "nope", 0, nowBatch("u", 1, batch.Options{}), kerr.UnknownTopicOrPartition},
		{"message format v1 (Produce v2)", 2, 1, "errs", 0, nowBatch("old", 1, batch.Options{}), kerr.UnsupportedForMessageFormat},
		{"acks=2", 9, 2, "errs", 0, nowBatch("a", 1, batch.Options{}), kerr.InvalidRequiredAcks},
		{"acks=all below min.insync.replicas", 9, -1, "isr", 0, nowBatch("a", 1, batch.Options{}), kerr.NotEnoughReplicas},
	}
	createTopicRaw(t, c, "isr", 1, map[string]string{"min.insync.replicas": "2"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := logs.count()
			got := produceRaw(t, c, tc.version, tc.acks, tc.topic, tc.partition, tc.records)
			if got.ErrorCode != tc.want.Code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(got.ErrorCode), tc.want)
			}
			var want []string
			if tc.want == kerr.CorruptMessage || tc.want == kerr.InvalidRecord {
				want = []string{"produce rejected"}
			}
			if got := logs.since(lines); !slices.Equal(got, want) {
				t.Fatalf("logged %q, want %q", got, want)
			}
			if got.BaseOffset != -1 {
				t.Fatalf("base offset %d on error", got.BaseOffset)
			}
			if leo := latestOffset(t, c, "errs", 0); leo != 0 {
				t.Fatalf("log changed: high watermark %d", leo)
			}
		})
	}
}

// TestProduceAutoCreate: with auto.create.topics.enable, producing to an
// unknown topic creates it.
func TestProduceAutoCreate(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	got := produceRaw(t, c, 9, 1, "fresh", 0, nowBatch("f", 2, batch.Options{}))
	if got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("produce to a new topic: %v, base %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	if leo := latestOffset(t, c, "fresh", 0); leo != 2 {
		t.Fatalf("high watermark %d, want 2", leo)
	}
}

// TestProduceV0ClosesWithAcksZero: an old-format produce with acks=0 has no
// response to carry its error, so the connection closes, as Kafka 4 does.
func TestProduceV0ClosesWithAcksZero(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 2, 0
	c.send(req, 1)
	c.expectClosed()
}

// TestProduceAcksZeroErrorCloses: an acks=0 produce that fails closes the
// connection, the only way to tell the client.
func TestProduceAcksZeroErrorCloses(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
	c := dialRaw(t, s)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 9, 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "missing"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = nowBatch("z", 1, batch.Options{})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.send(req, 1)
	c.expectClosed()
}

// TestProduceLogAppendTime: a LogAppendTime topic answers the broker's time.
func TestProduceLogAppendTime(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	before := time.Now().UnixMilli()
	got := produceRaw(t, c, 9, 1, "lat", 0, nowBatch("l", 1, batch.Options{}))
	if got.ErrorCode != 0 || got.LogAppendTime < before {
		t.Fatalf("LogAppendTime %d (error %v), want >= %d", got.LogAppendTime, kerr.ErrorForCode(got.ErrorCode), before)
	}
	plain := produceRaw(t, c, 9, 1, "lat2", 0, nowBatch("l", 1, batch.Options{}))
	if plain.LogAppendTime != -1 {
		t.Fatalf("CreateTime topic answered LogAppendTime %d", plain.LogAppendTime)
	}
}

// TestRestartKeepsAckedMessages: acknowledged records survive a clean
// Close and reopen of the server on the same data directory.
func TestRestartKeepsAckedMessages(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, func(c *Config) { c.DataDir = dir })
	cl := newClient(t, s, kgo.DefaultProduceTopic("durable"), kgo.AllowAutoTopicCreation())
	var want []string
	var recs []*kgo.Record
	for i := range 100 {
		v := fmt.Sprintf("d%d", i)
		want = append(want, v)
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, func(c *Config) { c.DataDir = dir })
	if got := consumeN(t, s2, "durable", 100); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart: %v", got)
	}
}

// TestProduceAcksAllWaitsForISR gives a partition a follower in its ISR, so
// acks=all produces park in the produce purgatory: one completes when the
// follower reports the batch, one times out (REQUEST_TIMED_OUT), one fails
// when the ISR shrinks below min.insync.replicas while it waits
// (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
func TestProduceAcksAllWaitsForISR(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "isr2", 1, map[string]string{"min.insync.replicas": "2"})
	p, _ := s.replicas().Partition("isr2", 0)
	self := s.cfg.NodeID
	p.BecomeLeader(1, []int32{self, self + 1})
	send := func(corr int32, timeout int32) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, timeout
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "isr2"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = nowBatch("w", 2, batch.Options{})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c.send(req, corr)
		return req
	}
	recv := func(req *kmsg.ProduceRequest) kmsg.ProduceResponseTopicPartition {
		_, body, err := c.recv()
		if err != nil {
			t.Fatal(err)
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		if err := resp.ReadFrom(body[1:]); err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	parked := func() bool { n, _ := s.replicas().Waiting(); return n == 1 }

	req := send(1, 60_000)
	pollFor(t, "the produce to park", parked)
	p.UpdateFollower(self+1, 1) // not past the batch (offsets 0-1) yet
	if !parked() {
		t.Fatal("acks=all answered before the follower had the batch")
	}
	p.UpdateFollower(self+1, 2)
	if got := recv(req); got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("committed produce: %v base %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}

	req = send(2, 10)
	if got := recv(req); got.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("uncommitted produce after its timeout: %v", kerr.ErrorForCode(got.ErrorCode))
	}

	req = send(3, 60_000)
	pollFor(t, "the produce to park", parked)
	p.BecomeLeader(2, []int32{self})
	if got := recv(req); got.ErrorCode != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("ISR shrank while waiting: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// TestProduceLargeRequestCRCs: a produce request large enough to be read in
// pieces and checked from block sums (wire.Request.BlockSums) still finds a
// flipped byte in a batch, whether it lies in a block wholly inside the
// batch or in its partial last block; those partitions answer
// CORRUPT_MESSAGE and stay empty, the others store their batches exactly.
func TestProduceLargeRequestCRCs(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "big", 4, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	sent := make([][]byte, 4)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "big"
	for p := range sent {
		for range 3 {
			recs := make([]batch.Record, 60)
			for i := range recs {
				v := make([]byte, 1000)
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: v}
			}
			sent[p] = append(sent[p], batch.MustBuild(batch.Options{}, recs...)...)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = int32(p), bytes.Clone(sent[p])
		switch p {
		case 1: // the middle of the second batch: a summed block
			rp.Records[len(rp.Records)/2] ^= 0x10
		case 2: // the last bytes of the last batch: its partial last block
			rp.Records[len(rp.Records)-3] ^= 0x01
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	if n := len(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); n < 2*256<<10 {
		t.Fatalf("request of %d bytes: too small to be read in several pieces", n)
	}
	resp := c.roundTrip(req, 11).(*kmsg.ProduceResponse)
	for _, sp := range resp.Topics[0].Partitions {
		want := int16(0)
		if sp.Partition == 1 || sp.Partition == 2 {
			want = kerr.CorruptMessage.Code
		}
		if sp.ErrorCode != want {
			t.Errorf("partition %d: error %v, want %v", sp.Partition, kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	for p, want := range map[int32]int64{0: 180, 1: 0, 2: 0, 3: 180} {
		if leo := latestOffset(t, c, "big", p); leo != want {
			t.Errorf("partition %d: high watermark %d, want %d", p, leo, want)
		}
	}
	for _, p := range []int32{0, 3} {
		got := batchesOf(t, fetchOne(t, c, 12, "big", p, 0, 4<<20).RecordBatches)
		wantBatches := batchesOf(t, sent[p])
		if len(got) != len(wantBatches) {
			t.Fatalf("partition %d: %d batches stored, want %d", p, len(got), len(wantBatches))
		}
		for i := range got {
			if got[i].CRC() != wantBatches[i].CRC() || len(got[i]) != len(wantBatches[i]) {
				t.Errorf("partition %d batch %d: stored CRC %08x (%d bytes), sent %08x (%d bytes)", p, i, got[i].CRC(), len(got[i]), wantBatches[i].CRC(), len(wantBatches[i]))
			}
		}
	}
}
