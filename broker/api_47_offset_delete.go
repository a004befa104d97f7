package broker

// Version notes (OffsetDelete, key 47):
//   - Advertised 0. Deletes a group's committed offsets (tombstones). A
//     topic the group's consumers subscribe to is GROUP_SUBSCRIBED_TO_TOPIC
//     per partition; a non-empty group of another protocol type is
//     NON_EMPTY_GROUP; an unknown group GROUP_ID_NOT_FOUND.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleOffsetDelete(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var tps []group.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	c, err := s.coordinator()
	var errs []error
	if err == nil {
		errs, err = c.DeleteOffsets(req.Group, tps)
	}
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	k := 0
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, errorCode(errs[k])
			k++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return wire.Response{Msg: resp}, nil
}
