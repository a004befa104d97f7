package broker

// Version notes (ListOffsets, key 2):
//   - Served 0-6. Kafka 4 dropped v0 (KIP-896), but Burrow 1.2 and other
//     tools built on old sarama still send it: v0 answers OldStyleOffsets,
//     a list holding the one offset the later versions would answer (none
//     when that is -1 or MaxNumOffsets is 0). v2 adds IsolationLevel, v4
//     CurrentLeaderEpoch and LeaderEpoch, v6 is flexible. -3 (max
//     timestamp, v7+) and later specials are not served.
//   - Timestamp -2 (earliest) answers the log start offset, -1 (latest) the
//     high watermark; read_committed (IsolationLevel 1) answers the last
//     stable offset, which equals the high watermark without transactions.
//   - Timestamp >= 0 answers the first committed offset whose timestamp is
//     at least it, or -1/-1 when none is (as Kafka does).
//   - CurrentLeaderEpoch (v4+) is checked as in Fetch (KIP-320).
//   - LeaderEpoch is the current leader epoch for latest and -1 (unknown)
//     otherwise, which makes clients skip KIP-320 validation for those.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
	"github.com/weir-broker/weir/log"
)

// Special ListOffsets timestamps.
const (
	listLatest   = -1
	listEarliest = -2
)

func handleListOffsets(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, err := s.dataPartition(rt.Topic, rp.Partition, false)
			if err == nil && req.Version >= 4 {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				switch ts := rp.Timestamp; {
				case ts == listEarliest:
					sp.Offset = p.LogStartOffset()
				case ts == listLatest:
					sp.Offset = p.HighWatermark()
					if req.IsolationLevel == 1 {
						sp.Offset = p.LastStableOffset()
					}
					sp.LeaderEpoch = p.LeaderEpoch()
				case ts >= 0:
					off, found, ferr := p.OffsetForTimestamp(ts)
					switch {
					case ferr == nil:
						sp.Offset, sp.Timestamp = off, found
					case errors.Is(ferr, log.ErrNotFound):
					default:
						err = ferr
					}
				default:
					err = kerr.InvalidRequest
				}
			}
			sp.ErrorCode = errorCode(err)
			if req.Version == 0 && err == nil && sp.Offset >= 0 && rp.MaxNumOffsets > 0 {
				sp.OldStyleOffsets = []int64{sp.Offset}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Response{Msg: resp}, nil
}
