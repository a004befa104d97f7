package broker

// Version notes
//
// CreatePartitions v0-v3 (advertised 0-3). v1 is identical to v0, v2 is
// flexible, v3 is identical to v2. Count is the new total; a count not above
// the current one is INVALID_PARTITIONS. An assignment must list exactly the
// new partitions, each with known brokers and the topic's replication
// factor. A topic named twice in one request gets INVALID_REQUEST.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/wire"
)

func handleCreatePartitions(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	counts := map[string]int{}
	for _, rt := range req.Topics {
		counts[rt.Topic]++
	}
	for _, rt := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		var err error
		if counts[rt.Topic] > 1 {
			err = kafkaError(kerr.InvalidRequest, "topic '%s' appears more than once in the request", rt.Topic)
		} else {
			err = s.createPartitions(rt, req.ValidateOnly)
		}
		if err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = kmsg.StringPtr(errorMessage(err))
		}
		resp.Topics = append(resp.Topics, out)
	}
	return wire.Response{Msg: resp}, nil
}

func (s *Server) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	im := s.meta.Image()
	t, ok := im.Topic(rt.Topic)
	if !ok {
		return fmt.Errorf("%w: %s", metadata.ErrUnknownTopic, rt.Topic)
	}
	cur := int32(len(t.Partitions))
	switch {
	case rt.Count == cur:
		return kafkaError(kerr.InvalidPartitions, "topic already has %d partitions", cur)
	case rt.Count < cur:
		return kafkaError(kerr.InvalidPartitions, "topic currently has %d partitions, which is higher than the requested %d", cur, rt.Count)
	case rt.Count > s.cfg.MaxTopicPartitions:
		return kafkaError(kerr.InvalidPartitions, "number of partitions %d is above this broker's limit of %d", rt.Count, s.cfg.MaxTopicPartitions)
	}
	add := int(rt.Count - cur)
	rf := len(t.Partitions[0].Replicas)
	var replicas [][]int32
	if rt.Assignment != nil {
		if len(rt.Assignment) != add {
			return kafkaError(kerr.InvalidReplicaAssignment, "increasing the number of partitions by %d but %d assignments provided", add, len(rt.Assignment))
		}
		for i, a := range rt.Assignment {
			if err := s.checkReplicas(im, a.Replicas, rf); err != nil {
				return fmt.Errorf("partition %d: %w", int(cur)+i, err)
			}
			replicas = append(replicas, a.Replicas)
		}
	} else {
		brokers := im.Brokers()
		if rf > len(brokers) {
			return kafkaError(kerr.InvalidReplicationFactor, "replication factor %d is larger than available brokers: %d", rf, len(brokers))
		}
		replicas = assignReplicas(brokers, add, rf, int(cur))
	}
	if validateOnly {
		return nil
	}
	rec := metadata.CreatePartitions{Topic: t.Name}
	for i, rs := range replicas {
		rec.Partitions = append(rec.Partitions, newPartition(cur+int32(i), rs))
	}
	next, err := s.meta.Apply(rec)
	if err != nil {
		return err
	}
	t, _ = next.Topic(t.Name)
	if err := s.store.ensure(s.cfg.NodeID, t); err != nil {
		return fmt.Errorf("broker: create partitions of %s: %w", t.Name, err)
	}
	s.logger.Info("partitions created", "topic", t.Name, "partitions", len(t.Partitions))
	return nil
}
