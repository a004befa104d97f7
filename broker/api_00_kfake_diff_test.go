package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"

	"github.com/weir-broker/weir/log/batch"
)

// diffConn is a request/response client that reports errors instead of
// failing a test, for use inside rapid.
type diffConn struct {
	nc   net.Conn
	corr int32
}

func dialDiff(addr string) (*diffConn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &diffConn{nc: nc}, nil
}

func (c *diffConn) do(req kmsg.Request) (kmsg.Response, error) {
	c.corr++
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("diff"))
	if _, err := c.nc.Write(f.AppendRequest(nil, req, c.corr)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return nil, err
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() {
		body = body[1:]
	}
	return resp, resp.ReadFrom(body)
}

// batchSpan is what the comparison keeps of a fetched batch.
type batchSpan struct {
	Base, Last int64
	Records    int32
}

func spans(b []byte) ([]batchSpan, error) {
	var out []batchSpan
	for len(b) > 0 {
		bt, err := batch.Parse(b)
		if err != nil {
			return nil, err
		}
		out = append(out, batchSpan{bt.BaseOffset(), bt.LastOffset(), bt.RecordCount()})
		b = b[len(bt):]
	}
	return out, nil
}

// TestDataPathAgainstKfake runs the same random sequences of Produce,
// Fetch, ListOffsets and DeleteRecords against Weir and against franz-go's
// kfake, a reference implementation of Kafka's semantics, and compares what
// clients see: error codes, offsets, watermarks and which batches a fetch
// returns (KIP-74 limits included).
func TestDataPathAgainstKfake(t *testing.T) {
	s := startServer(t)
	ref, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	weir, err := dialDiff(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer weir.nc.Close()
	kf, err := dialDiff(ref.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer kf.nc.Close()
	both := func(t *rapid.T, req func() kmsg.Request) (kmsg.Response, kmsg.Response) {
		a, err := weir.do(req())
		if err != nil {
			t.Fatalf("weir: %v", err)
		}
		b, err := kf.do(req())
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		return a, b
	}
	n := 0
	rapid.Check(t, func(t *rapid.T) {
		n++
		topic := fmt.Sprintf("diff-%d", n)
		both(t, func() kmsg.Request {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version, req.TimeoutMillis = 5, 5000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 2, 1
			req.Topics = append(req.Topics, rt)
			return req
		})
		ts := time.Now().UnixMilli()
		t.Repeat(map[string]func(*rapid.T){
			"produce": func(t *rapid.T) {
				p := rapid.Int32Range(0, 1).Draw(t, "partition")
				nrec := rapid.IntRange(1, 20).Draw(t, "records")
				size := rapid.IntRange(0, 300).Draw(t, "value size")
				ts += int64(rapid.IntRange(0, 50).Draw(t, "ts step"))
				recs := make([]batch.Record, nrec)
				for i := range recs {
					recs[i] = batch.Record{Timestamp: ts, Value: make([]byte, size)}
				}
				b := batch.MustBuild(batch.Options{}, recs...)
				a, k := both(t, func() kmsg.Request {
					req := produceReq(topic, 1, append([]byte(nil), b...))
					req.Topics[0].Partitions[0].Partition = p
					return req
				})
				ap := a.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
				kp := k.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
				if ap.ErrorCode != kp.ErrorCode || ap.BaseOffset != kp.BaseOffset {
					t.Fatalf("produce: weir %d@%d, kfake %d@%d", ap.ErrorCode, ap.BaseOffset, kp.ErrorCode, kp.BaseOffset)
				}
			},
			"fetch": func(t *rapid.T) {
				version := int16(rapid.IntRange(4, 12).Draw(t, "version"))
				offset := rapid.Int64Range(-1, 300).Draw(t, "offset")
				maxBytes := rapid.Int32Range(1, 20000).Draw(t, "max bytes")
				partMax := rapid.Int32Range(1, 20000).Draw(t, "partition max bytes")
				a, k := both(t, func() kmsg.Request {
					return fetchRequest(version, 0, 1, maxBytes, fetchPart{topic, 0, offset, partMax}, fetchPart{topic, 1, offset, partMax})
				})
				ar, kr := a.(*kmsg.FetchResponse), k.(*kmsg.FetchResponse)
				if len(ar.Topics) != 1 || len(ar.Topics[0].Partitions) != 2 {
					t.Fatalf("weir answered %d topics, want every partition asked for", len(ar.Topics))
				}
				// The response's record bytes stay within MaxBytes, except
				// that the first batch is returned whole (KIP-74).
				total, first := 0, 0
				for _, ap := range ar.Topics[0].Partitions {
					if first == 0 && len(ap.RecordBatches) > 0 {
						if n, err := batch.Size(ap.RecordBatches); err == nil {
							first = n
						}
					}
					total += len(ap.RecordBatches)
				}
				if total > int(maxBytes) && total > first {
					t.Fatalf("fetch returned %d record bytes, MaxBytes %d, first batch %d", total, maxBytes, first)
				}
				for i := range 2 {
					ap := ar.Topics[0].Partitions[i]
					if len(kr.Topics) == 0 || i >= len(kr.Topics[0].Partitions) {
						// kfake leaves out every partition after the one
						// whose next batch did not fit MaxBytes. Kafka
						// fills the budget with a partial batch and lists
						// later partitions empty; Weir sends whole batches
						// only and gives what is left of the budget to the
						// later partitions (checked above).
						continue
					}
					kp := kr.Topics[0].Partitions[i]
					as, err := spans(ap.RecordBatches)
					if err != nil {
						t.Fatalf("weir batches: %v", err)
					}
					ks, err := spans(kp.RecordBatches)
					if err != nil {
						t.Fatalf("kfake batches: %v", err)
					}
					if ap.ErrorCode != kp.ErrorCode || ap.HighWatermark != kp.HighWatermark ||
						(version >= 5 && ap.ErrorCode == 0 && ap.LogStartOffset != kp.LogStartOffset) ||
						fmt.Sprint(as) != fmt.Sprint(ks) {
						t.Fatalf("fetch v%d p%d at %d (max %d, partition max %d):\n weir  err %d HW %d start %d %v\n kfake err %d HW %d start %d %v",
							version, i, offset, maxBytes, partMax,
							ap.ErrorCode, ap.HighWatermark, ap.LogStartOffset, as,
							kp.ErrorCode, kp.HighWatermark, kp.LogStartOffset, ks)
					}
				}
			},
			"list offsets": func(t *rapid.T) {
				p := rapid.Int32Range(0, 1).Draw(t, "partition")
				which := rapid.SampledFrom([]int64{-2, -1, 0}).Draw(t, "which")
				if which == 0 {
					which = ts - int64(rapid.IntRange(-10, 300).Draw(t, "back"))
				}
				a, k := both(t, func() kmsg.Request {
					req := kmsg.NewPtrListOffsetsRequest()
					req.Version, req.ReplicaID = 6, -1
					rt := kmsg.NewListOffsetsRequestTopic()
					rt.Topic = topic
					rp := kmsg.NewListOffsetsRequestTopicPartition()
					rp.Partition, rp.Timestamp = p, which
					rt.Partitions = append(rt.Partitions, rp)
					req.Topics = append(req.Topics, rt)
					return req
				})
				ap := a.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
				kp := k.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
				if ap.ErrorCode != kp.ErrorCode || ap.Offset != kp.Offset || ap.Timestamp != kp.Timestamp {
					t.Fatalf("list offsets p%d ts %d: weir %d %d@%d, kfake %d %d@%d", p, which,
						ap.ErrorCode, ap.Offset, ap.Timestamp, kp.ErrorCode, kp.Offset, kp.Timestamp)
				}
			},
			"delete records": func(t *rapid.T) {
				p := rapid.Int32Range(0, 1).Draw(t, "partition")
				offset := rapid.Int64Range(-1, 300).Draw(t, "offset")
				a, k := both(t, func() kmsg.Request {
					req := kmsg.NewPtrDeleteRecordsRequest()
					req.Version, req.TimeoutMillis = 2, 5000
					rt := kmsg.NewDeleteRecordsRequestTopic()
					rt.Topic = topic
					rp := kmsg.NewDeleteRecordsRequestTopicPartition()
					rp.Partition, rp.Offset = p, offset
					rt.Partitions = append(rt.Partitions, rp)
					req.Topics = append(req.Topics, rt)
					return req
				})
				ap := a.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
				kp := k.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
				if ap.ErrorCode == 0 && offset >= 0 && offset < ap.LowWatermark && kp.ErrorCode == kerr.OffsetOutOfRange.Code {
					// Below the log start offset: Kafka's
					// maybeIncrementLogStartOffset is a no-op (Weir too);
					// kfake answers OFFSET_OUT_OF_RANGE.
					return
				}
				if ap.ErrorCode != kp.ErrorCode || (ap.ErrorCode == 0 && ap.LowWatermark != kp.LowWatermark) {
					t.Fatalf("delete records p%d before %d: weir %d low %d, kfake %d low %d", p, offset,
						ap.ErrorCode, ap.LowWatermark, kp.ErrorCode, kp.LowWatermark)
				}
			},
		})
	})
}
