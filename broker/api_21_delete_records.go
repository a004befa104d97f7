package broker

// Version notes (DeleteRecords, key 21):
//   - Served 0-2; v1 is v0 with throttling on the response's terms, v2 is
//     flexible.
//   - Offset -1 means the high watermark. An offset above it is
//     OFFSET_OUT_OF_RANGE. LowWatermark is the new log start offset.
//   - On a single node the deletion is answered at once; with replication
//     Kafka waits (TimeoutMillis) for followers to move their start offsets.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleDeleteRecords(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := s.dataPartition(rt.Topic, rp.Partition, false)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecordsBefore(rp.Offset)
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Response{Msg: resp}, nil
}
