package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// listOffset sends ListOffsets v6 for one partition and timestamp.
func listOffset(t *testing.T, c *rawConn, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 6, -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.roundTrip(req, 11).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
}

func TestListOffsets(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "lo", 1, nil)
	// Three batches with timestamps 1000, 2000, 3000 at offsets 0-1, 2-3, 4-5.
	for i := range 3 {
		ts := int64(1000 * (i + 1))
		b := batch.MustBuild(batch.Options{}, batch.Record{Timestamp: ts, Value: []byte("a")}, batch.Record{Timestamp: ts, Value: []byte("b")})
		if got := produceRaw(t, c, 9, 1, "lo", 0, b); got.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(got.ErrorCode))
		}
	}
	if got := deleteRecords(t, c, "lo", 0, 1); got.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(got.ErrorCode))
	}
	tests := []struct {
		name       string
		topic      string
		ts         int64
		wantOffset int64
		wantTs     int64
		wantErr    *kerr.Error
	}{
		{"earliest", "lo", -2, 1, -1, nil},
		{"latest", "lo", -1, 6, -1, nil},
		{"before everything", "lo", 0, 1, 1000, nil},
		{"exact batch time", "lo", 2000, 2, 2000, nil},
		{"between batches", "lo", 2500, 4, 3000, nil},
		{"past the end", "lo", 3001, -1, -1, nil},
		{"unknown topic", "none", -1, -1, -1, kerr.UnknownTopicOrPartition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := listOffset(t, c, tc.topic, 0, tc.ts)
			if tc.wantErr != nil {
				if got.ErrorCode != tc.wantErr.Code {
					t.Fatalf("error %v, want %v", kerr.ErrorForCode(got.ErrorCode), tc.wantErr)
				}
				return
			}
			if got.ErrorCode != 0 || got.Offset != tc.wantOffset || got.Timestamp != tc.wantTs {
				t.Fatalf("got offset %d ts %d err %v, want %d %d", got.Offset, got.Timestamp, kerr.ErrorForCode(got.ErrorCode), tc.wantOffset, tc.wantTs)
			}
		})
	}
}
