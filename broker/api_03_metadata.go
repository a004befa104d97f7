package broker

// Version notes
//
// Metadata v0-v11 (advertised 0-11). v0: an empty topic list means every
// topic; v1+: null means every topic and empty means none, and the response
// gains IsInternal, Rack and ControllerID. v2 adds ClusterID, v4
// AllowAutoTopicCreation (before v4 auto-creation follows the broker
// setting), v5 OfflineReplicas, v7 LeaderEpoch, v8-v10 authorized operations
// (we send "not requested": no ACLs), v9 is flexible, v10 adds topic ids
// (topics may be requested by id; an unknown id is UNKNOWN_TOPIC_ID), v11
// drops the cluster authorized operations. v12+ (null topic names by id)
// needs Fetch by topic id and is not advertised.
//
// __consumer_offsets and __transaction_state are marked internal (v1+).
//
// Brokers are given with the advertised address of the listener the request
// arrived on, as Kafka answers with the endpoints of the connection's
// listener name (listeners.go).
//
// Auto-creation behaves as Kafka: the request that creates a topic gets
// LEADER_NOT_AVAILABLE for it, the next one sees the topic.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/wire"
)

// authorizedOperationsNotRequested is Kafka's "not requested" marker.
const authorizedOperationsNotRequested = -2147483648

func handleMetadata(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := s.meta.Image()
	resp.ControllerID = im.ControllerID
	resp.ClusterID = kmsg.StringPtr(im.ClusterID)
	resp.AuthorizedOperations = authorizedOperationsNotRequested
	for _, b := range im.Brokers() {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID = b.NodeID
		rb.Host, rb.Port = s.endpoint(r, b)
		if b.Rack != "" {
			rb.Rack = kmsg.StringPtr(b.Rack)
		}
		resp.Brokers = append(resp.Brokers, rb)
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range im.Topics() {
			resp.Topics = append(resp.Topics, metadataTopic(t))
		}
		return wire.Response{Msg: resp}, nil
	}
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, s.metadataFor(im, rt, autoCreate))
	}
	return wire.Response{Msg: resp}, nil
}

// metadataFor answers for one requested topic, by name or (v10+) by id.
func (s *Server) metadataFor(im *metadata.Image, rt kmsg.MetadataRequestTopic, autoCreate bool) kmsg.MetadataResponseTopic {
	out := kmsg.NewMetadataResponseTopic()
	out.AuthorizedOperations = authorizedOperationsNotRequested
	if rt.Topic == nil {
		out.TopicID = rt.TopicID
		t, ok := im.TopicByID(metadata.UUID(rt.TopicID))
		if !ok {
			out.ErrorCode = kerr.UnknownTopicID.Code
			return out
		}
		return metadataTopic(t)
	}
	name := *rt.Topic
	out.Topic = kmsg.StringPtr(name)
	if t, ok := im.Topic(name); ok {
		return metadataTopic(t)
	}
	if err := metadata.ValidateTopicName(name); err != nil {
		out.ErrorCode = kerr.InvalidTopicException.Code
		return out
	}
	if !autoCreate {
		out.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return out
	}
	_, err := s.createTopic(topicSpec{name: name, partitions: -1, replicationFactor: -1}, false)
	switch {
	case err == nil, errors.Is(err, metadata.ErrTopicExists):
		// Created now (or by a concurrent request): like Kafka, answer
		// LEADER_NOT_AVAILABLE; the client retries and finds it.
		out.ErrorCode = kerr.LeaderNotAvailable.Code
	default:
		s.logger.Warn("auto-create topic failed", "topic", name, "err", err)
		out.ErrorCode = errorCode(err)
	}
	return out
}

func metadataTopic(t *metadata.Topic) kmsg.MetadataResponseTopic {
	out := kmsg.NewMetadataResponseTopic()
	out.Topic = kmsg.StringPtr(t.Name)
	out.TopicID = t.ID
	out.IsInternal = isInternalTopic(t.Name)
	out.AuthorizedOperations = authorizedOperationsNotRequested
	for _, p := range t.Partitions {
		rp := kmsg.NewMetadataResponseTopicPartition()
		rp.Partition, rp.Leader, rp.LeaderEpoch = p.Partition, p.Leader, p.LeaderEpoch
		rp.Replicas, rp.ISR = p.Replicas, p.ISR
		rp.OfflineReplicas = []int32{}
		if p.Leader < 0 {
			rp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		out.Partitions = append(out.Partitions, rp)
	}
	return out
}
