package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// deleteRecords sends DeleteRecords v2 for one partition.
func deleteRecords(t *testing.T, c *rawConn, topic string, partition int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version, req.TimeoutMillis = 2, 5000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.roundTrip(req, 21).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
}

// TestDeleteRecordsThenFetchBelowStart: after DeleteRecords, a fetch below
// the new log start offset is OFFSET_OUT_OF_RANGE and one at it succeeds.
func TestDeleteRecordsThenFetchBelowStart(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "dr", 1, nil)
	for range 4 {
		produceRaw(t, c, 9, 1, "dr", 0, nowBatch("d", 5, batch.Options{}))
	}
	tests := []struct {
		name    string
		offset  int64
		wantLow int64
		wantErr *kerr.Error
	}{
		{"past the high watermark", 21, -1, kerr.OffsetOutOfRange},
		{"inside a batch", 7, 7, nil},
		{"backwards is a no-op", 3, 7, nil},
		{"unknown partition", -99, -1, kerr.UnknownTopicOrPartition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			part := int32(0)
			if tc.offset == -99 {
				part = 9
			}
			got := deleteRecords(t, c, "dr", part, tc.offset)
			if got.ErrorCode != codeOf(tc.wantErr) || got.LowWatermark != tc.wantLow {
				t.Fatalf("low watermark %d error %v, want %d %v", got.LowWatermark, kerr.ErrorForCode(got.ErrorCode), tc.wantLow, tc.wantErr)
			}
		})
	}
	below := fetchOne(t, c, 12, "dr", 0, 6, 1<<20)
	if below.ErrorCode != kerr.OffsetOutOfRange.Code || below.LogStartOffset != 7 {
		t.Fatalf("fetch below start: %v, log start %d", kerr.ErrorForCode(below.ErrorCode), below.LogStartOffset)
	}
	at := fetchOne(t, c, 12, "dr", 0, 7, 1<<20)
	if at.ErrorCode != 0 || firstBase(t, at.RecordBatches) != 5 {
		t.Fatalf("fetch at start: %v", kerr.ErrorForCode(at.ErrorCode))
	}
	if got := deleteRecords(t, c, "dr", 0, -1); got.ErrorCode != 0 || got.LowWatermark != 20 {
		t.Fatalf("delete to the high watermark: %d %v", got.LowWatermark, kerr.ErrorForCode(got.ErrorCode))
	}
}

func codeOf(e *kerr.Error) int16 {
	if e == nil {
		return 0
	}
	return e.Code
}
