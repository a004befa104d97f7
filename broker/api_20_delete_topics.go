package broker

// Version notes
//
// DeleteTopics v1-v6 (advertised 1-6, Kafka 4's floor is 1). v4 is flexible,
// v5 adds ErrorMessage, v6 names topics by name or id (an unknown id is
// UNKNOWN_TOPIC_ID) and returns both. TimeoutMillis is ignored: the topic
// is gone from the metadata and disk when we answer. Internal topics
// (__consumer_offsets, __transaction_state) cannot be deleted.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/wire"
)

func handleDeleteTopics(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	if req.Version < 6 {
		topics = nil
		for _, name := range req.TopicNames {
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.Topic = kmsg.StringPtr(name)
			topics = append(topics, t)
		}
	}
	for _, rt := range topics {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = rt.Topic, rt.TopicID
		im := s.meta.Image()
		var (
			t  *metadata.Topic
			ok bool
		)
		if rt.Topic != nil {
			t, ok = im.Topic(*rt.Topic)
			if !ok {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		} else {
			t, ok = im.TopicByID(metadata.UUID(rt.TopicID))
			if !ok {
				out.ErrorCode = kerr.UnknownTopicID.Code
			}
		}
		if ok && isInternalTopic(t.Name) {
			// The group coordinator lives in it.
			out.Topic, out.TopicID = kmsg.StringPtr(t.Name), t.ID
			out.ErrorCode = kerr.InvalidTopicException.Code
			out.ErrorMessage = kmsg.StringPtr("internal topic " + t.Name + " cannot be deleted")
			ok = false
		}
		if ok {
			out.Topic, out.TopicID = kmsg.StringPtr(t.Name), t.ID
			if err := s.deleteTopic(t.Name); err != nil {
				out.ErrorCode = errorCode(err)
				out.ErrorMessage = kmsg.StringPtr(errorMessage(err))
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	return wire.Response{Msg: resp}, nil
}
