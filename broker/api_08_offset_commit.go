package broker

// Version notes (OffsetCommit, key 8):
//   - Advertised 0-8 (librdkafka 2.0.2 uses 1..2, kafka-go and kafka-python
//     pin v2). v0 has no generation (a commit outside any generation, as an
//     admin reset or a simple consumer makes; allowed while the group is
//     Empty); v1 adds generation and member id and a per-partition
//     timestamp, v2-v4 a retention time (both ignored, as Kafka 2.1+
//     does: offsets.retention.minutes applies), v6 the leader epoch, v7
//     group.instance.id, v8 is flexible. v9+ (KIP-848 member epochs) not
//     served.
//   - The offsets are appended to __consumer_offsets (acks=all) and
//     answered after the append. Fenced commits (ILLEGAL_GENERATION,
//     UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS) change
//     nothing. Unknown topics or partitions are UNKNOWN_TOPIC_OR_PARTITION;
//     metadata above offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleOffsetCommit(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	generation, member := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, member = -1, ""
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	im := s.meta.Image()
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	codes := make([][]int16, len(req.Topics))
	flat := make([]int16, n)
	commits := make([]group.Commit, 0, n)
	where := make([][2]int, 0, n)
	for i, rt := range req.Topics {
		codes[i], flat = flat[:len(rt.Partitions):len(rt.Partitions)], flat[len(rt.Partitions):]
		t, ok := im.Topic(rt.Topic)
		for j, rp := range rt.Partitions {
			if !ok || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			o := group.Offset{Offset: rp.Offset, LeaderEpoch: -1}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			commits = append(commits, group.Commit{TopicPartition: group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, Offset: o})
			where = append(where, [2]int{i, j})
		}
	}
	c, err := s.coordinator()
	var errs []error
	if err == nil && len(commits) > 0 {
		errs, err = c.CommitOffsets(req.Group, generation, member, instance, commits)
	}
	for k, w := range where {
		switch {
		case err != nil:
			codes[w[0]][w[1]] = errorCode(err)
		default:
			codes[w[0]][w[1]] = errorCode(errs[k])
		}
	}
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, 0, len(req.Topics))
	for i, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, 0, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, codes[i][j]
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Response{Msg: resp}, nil
}
