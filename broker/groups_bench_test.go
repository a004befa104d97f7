package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// benchClient starts a server with a 10-partition topic and a client.
func benchClient(b *testing.B) (*Server, *kgo.Client) {
	s := startServer(b)
	if _, err := s.createTopic(topicSpec{name: "events", partitions: 10, replicationFactor: 1}, false); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return s, cl
}

// BenchmarkServerOffsetCommit measures OffsetCommit v8 round trips of 10
// partitions over loopback: decode, validation, one batch of 10 records
// appended to __consumer_offsets, answer. BenchmarkServerProduceBaseline
// is the same round trip for a produce of one 10-record batch with acks=all,
// the baseline for the ratio.
func BenchmarkServerOffsetCommit(b *testing.B) {
	_, cl := benchClient(b)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "bench", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "events"
	for p := range int32(10) {
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition, cp.LeaderEpoch = p, -1
		ct.Partitions = append(ct.Partitions, cp)
	}
	req.Topics = append(req.Topics, ct)
	b.SetBytes(int64(len(req.AppendTo(nil))))
	b.ReportAllocs()
	ctx := context.Background()
	off := int64(0)
	for b.Loop() {
		off++
		for i := range req.Topics[0].Partitions {
			req.Topics[0].Partitions[i].Offset = off
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			b.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[9].ErrorCode; code != 0 {
			b.Fatalf("commit error %d", code)
		}
	}
}

// BenchmarkServerProduceBaseline: see BenchmarkServerOffsetCommit.
func BenchmarkServerProduceBaseline(b *testing.B) {
	_, cl := benchClient(b)
	recs := make([]batch.Record, 10)
	for i := range recs {
		// A real timestamp: a batch stamped 0 is older than segment.ms and
		// rolls a new segment on every append, as in Kafka.
		recs[i] = batch.Record{Key: fmt.Appendf(nil, "bench/events/%d", i), Value: make([]byte, 30), Timestamp: time.Now().UnixMilli()}
	}
	records := batch.MustBuild(batch.Options{}, recs...)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 10000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "events"
	pp := kmsg.NewProduceRequestTopicPartition()
	pt.Partitions = append(pt.Partitions, pp)
	req.Topics = append(req.Topics, pt)
	b.SetBytes(int64(len(records)))
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		req.Topics[0].Partitions[0].Records = append([]byte(nil), records...)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			b.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			b.Fatalf("produce error %d", code)
		}
	}
}
