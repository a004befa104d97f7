package broker

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
	"github.com/weir-broker/weir/log/batch"
)

// bigBatch builds a batch of n records of size bytes each, values
// "<tag>-<i>-" padded with the tag's first byte.
func bigBatch(tag string, n, size int) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		v := fmt.Appendf(nil, "%s-%d-", tag, i)
		for len(v) < size {
			v = append(v, tag[0])
		}
		recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: v}
	}
	return batch.MustBuild(batch.Options{}, recs...)
}

// TestProduceLargeMultiPartitionRequest sends produce requests large enough
// for their partitions to be appended concurrently (parallelAppendMinBytes),
// over one connection so that request frames are recycled between them
// (wire's frame pool), and checks that every partition's answer lands in
// its own place in the response, errors stay with their partition, a
// partition named twice gets both batches, and every record reads back
// intact from the log.
func TestProduceLargeMultiPartitionRequest(t *testing.T) {
	for _, acks := range []int16{1, -1} {
		t.Run(fmt.Sprintf("acks=%d", acks), func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
			c := dialRaw(t, s)
			createTopicRaw(t, c, "pa", 3, nil)
			createTopicRaw(t, c, "pb", 2, nil)
			const rounds, perBatch, size = 8, 40, 1000
			type slot struct {
				topic     string
				partition int32
				want      *kerr.Error
			}
			slots := []slot{
				{"pa", 2, nil}, {"pa", 0, nil}, {"pa", 9, kerr.UnknownTopicOrPartition}, {"pa", 1, nil},
				{"pb", 1, nil}, {"pb", 0, nil}, {"pb", 1, nil}, // pb-1 twice
			}
			written := map[string][]string{} // "topic-partition" → values in append order
			for round := range rounds {
				req := kmsg.NewPtrProduceRequest()
				req.Version, req.Acks, req.TimeoutMillis = 9, acks, 5000
				var total int
				for _, sl := range slots {
					if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != sl.topic {
						rt := kmsg.NewProduceRequestTopic()
						rt.Topic = sl.topic
						req.Topics = append(req.Topics, rt)
					}
					rp := kmsg.NewProduceRequestTopicPartition()
					rp.Partition = sl.partition
					rp.Records = bigBatch(fmt.Sprintf("%s%d-r%d", sl.topic, sl.partition, round), perBatch, size)
					total += len(rp.Records)
					rt := &req.Topics[len(req.Topics)-1]
					rt.Partitions = append(rt.Partitions, rp)
				}
				if total < parallelAppendMinBytes {
					t.Fatalf("request of %d bytes would not take the concurrent path", total)
				}
				resp := c.roundTrip(req, int32(100+round)).(*kmsg.ProduceResponse)
				i := 0
				bases := map[string][]int64{}
				for ti, rt := range resp.Topics {
					if rt.Topic != req.Topics[ti].Topic || len(rt.Partitions) != len(req.Topics[ti].Partitions) {
						t.Fatalf("round %d: response topic %d is %s with %d partitions, want %s with %d", round, ti, rt.Topic, len(rt.Partitions), req.Topics[ti].Topic, len(req.Topics[ti].Partitions))
					}
					for _, rp := range rt.Partitions {
						sl := slots[i]
						i++
						if rp.Partition != sl.partition {
							t.Fatalf("round %d: answer %d is partition %d, want %d", round, i-1, rp.Partition, sl.partition)
						}
						if sl.want != nil {
							if rp.ErrorCode != sl.want.Code || rp.BaseOffset != -1 {
								t.Fatalf("round %d: %s-%d: error %v base %d, want %v", round, sl.topic, sl.partition, kerr.ErrorForCode(rp.ErrorCode), rp.BaseOffset, sl.want)
							}
							continue
						}
						if rp.ErrorCode != 0 {
							t.Fatalf("round %d: %s-%d: %v", round, sl.topic, sl.partition, kerr.ErrorForCode(rp.ErrorCode))
						}
						key := fmt.Sprintf("%s-%d", sl.topic, sl.partition)
						bases[key] = append(bases[key], rp.BaseOffset)
					}
				}
				// Each partition's batches sit back to back after what
				// earlier rounds wrote; a partition named twice got both,
				// in some order.
				for key, bs := range bases {
					slices.Sort(bs)
					for j, b := range bs {
						if want := int64(len(written[key]) + j*perBatch); b != want {
							t.Fatalf("round %d: %s base offsets %v, want batch %d at %d", round, key, bs, j, want)
						}
					}
				}
				for _, sl := range slots {
					if sl.want != nil {
						continue
					}
					key := fmt.Sprintf("%s-%d", sl.topic, sl.partition)
					for r := range perBatch {
						written[key] = append(written[key], fmt.Sprintf("%s%d-r%d-%d-", sl.topic, sl.partition, round, r))
					}
				}
			}
			got := consumePartitionsFromStart(t, s, map[string]int32{"pa": 3, "pb": 2}, written)
			for key, want := range written {
				if len(got[key]) != len(want) {
					t.Fatalf("%s: read %d records, wrote %d", key, len(got[key]), len(want))
				}
				// The two batches of pb-1 in one round may be in either
				// order, so compare as sorted sets per partition.
				g, w := slices.Clone(got[key]), slices.Clone(want)
				slices.Sort(g)
				slices.Sort(w)
				if !slices.Equal(g, w) {
					t.Fatalf("%s: records differ from what was produced", key)
				}
			}
		})
	}
}

// consumePartitionsFromStart reads every partition of the topics from the start until it has
// as many records per partition as want holds, and returns each record's
// value prefix up to the padding (the part bigBatch made unique).
func consumePartitionsFromStart(t *testing.T, s *Server, topics map[string]int32, want map[string][]string) map[string][]string {
	t.Helper()
	parts := map[string]map[int32]kgo.Offset{}
	for topic, n := range topics {
		parts[topic] = map[int32]kgo.Offset{}
		for p := range n {
			parts[topic][p] = kgo.NewOffset().AtStart()
		}
	}
	cl := newClient(t, s, kgo.ConsumePartitions(parts), kgo.FetchMaxBytes(8<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string][]string{}
	done := func() bool {
		for key, w := range want {
			if len(got[key]) < len(w) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: %v (have %d partitions)", err, len(got))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			// Strip the padding: keep up to the third '-' after the tag.
			cut, dashes := len(v), 0
			for i := range len(v) {
				if v[i] == '-' {
					dashes++
					if dashes == 3 {
						cut = i + 1
						break
					}
				}
			}
			pad := v[cut:]
			for i := range len(pad) {
				if pad[i] != v[0] {
					t.Fatalf("%s-%d offset %d: padding corrupted at byte %d", r.Topic, r.Partition, r.Offset, cut+i)
				}
			}
			key := fmt.Sprintf("%s-%d", r.Topic, r.Partition)
			got[key] = append(got[key], v[:cut])
		})
	}
	return got
}

// TestRunAppendsCallsEachOnce: every append runs exactly once on both the
// inline and the concurrent path.
func TestRunAppendsCallsEachOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		bytes int
	}{
		{"one", 1, 1 << 30},
		{"small request", 50, parallelAppendMinBytes - 1},
		{"large request", 50, parallelAppendMinBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appends := make([]produceAppend, tc.n)
			calls := make([]atomic.Int32, tc.n)
			for i := range appends {
				appends[i].part = i
			}
			runAppends(appends, tc.bytes, func(a *produceAppend) {
				calls[a.part].Add(1)
				a.last = int64(a.part)
			})
			for i := range calls {
				if n := calls[i].Load(); n != 1 || appends[i].last != int64(i) {
					t.Fatalf("append %d called %d times, last %d", i, n, appends[i].last)
				}
			}
		})
	}
}

// TestReleaseProduceFrame: only Produce frames are recycled, and the request keeps
// no reference into the frame afterwards.
func TestReleaseProduceFrame(t *testing.T) {
	frame := []byte("records")
	produce := kmsg.NewPtrProduceRequest()
	rt := kmsg.NewProduceRequestTopic()
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = frame
	rp.UnknownTags.Set(5, frame)
	rt.Partitions = append(rt.Partitions, rp)
	produce.Topics = append(produce.Topics, rt)
	if !releaseProduceFrame(&wire.Request{Decoded: wire.Decoded{Msg: produce}}) {
		t.Fatal("produce frame not recycled")
	}
	if p := produce.Topics[0].Partitions[0]; p.Records != nil || p.UnknownTags.Len() != 0 {
		t.Fatal("produce request still refers to its frame")
	}
	join := kmsg.NewPtrJoinGroupRequest()
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Metadata = frame
	join.Protocols = append(join.Protocols, proto)
	if releaseProduceFrame(&wire.Request{Decoded: wire.Decoded{Msg: join}}) {
		t.Fatal("JoinGroup frame recycled: the group coordinator keeps its protocol metadata")
	}
	if join.Protocols[0].Metadata == nil {
		t.Fatal("JoinGroup request changed")
	}
}
