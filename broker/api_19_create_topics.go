package broker

// Version notes
//
// CreateTopics v2-v7 (advertised 2-7, Kafka 4's floor is 2). v1 added
// ValidateOnly and ErrorMessage, v4 allows -1 for the partition count and
// replication factor (broker defaults, KIP-464), v5 is flexible and returns
// the topic's partition count, replication factor and configs, v7 returns
// the topic id. A replica assignment is accepted when it is consistent and
// names known brokers (on one node: only this node); a replication factor
// above the broker count is INVALID_REPLICATION_FACTOR. A topic named twice
// in one request gets INVALID_REQUEST. TimeoutMillis is ignored: creation
// is complete when we answer.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleCreateTopics(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	counts := map[string]int{}
	for _, rt := range req.Topics {
		counts[rt.Topic]++
	}
	for _, rt := range req.Topics {
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		out.NumPartitions, out.ReplicationFactor = -1, -1
		if counts[rt.Topic] > 1 {
			setCreateErr(&out, kafkaError(kerr.InvalidRequest, "topic '%s' appears more than once in the request", rt.Topic))
			resp.Topics = append(resp.Topics, out)
			continue
		}
		spec, err := createSpec(rt)
		if err == nil {
			t, cerr := s.createTopic(spec, req.ValidateOnly)
			err = cerr
			if t != nil {
				out.TopicID = t.ID
				out.NumPartitions = int32(len(t.Partitions))
				out.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
				for _, c := range s.describeTopicConfigs(t.Configs, nil, false, false) {
					rc := kmsg.NewCreateTopicsResponseTopicConfig()
					rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = c.Name, c.Value, c.ReadOnly, int8(c.Source), c.IsSensitive
					out.Configs = append(out.Configs, rc)
				}
			}
		}
		setCreateErr(&out, err)
		resp.Topics = append(resp.Topics, out)
	}
	return wire.Response{Msg: resp}, nil
}

func setCreateErr(out *kmsg.CreateTopicsResponseTopic, err error) {
	if err == nil {
		return
	}
	out.ErrorCode = errorCode(err)
	out.ErrorMessage = kmsg.StringPtr(errorMessage(err))
}

// createSpec converts one requested topic, checking the assignment's shape
// and rejecting null config values as Kafka does.
func createSpec(rt kmsg.CreateTopicsRequestTopic) (topicSpec, error) {
	spec := topicSpec{name: rt.Topic, partitions: rt.NumPartitions, replicationFactor: rt.ReplicationFactor}
	if len(rt.ReplicaAssignment) > 0 {
		spec.assignment = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(spec.assignment) || spec.assignment[a.Partition] != nil {
				return spec, kafkaError(kerr.InvalidReplicaAssignment, "partitions must be numbered 0 to %d, each once", len(rt.ReplicaAssignment)-1)
			}
			spec.assignment[a.Partition] = a.Replicas
			if a.Replicas == nil {
				spec.assignment[a.Partition] = []int32{}
			}
		}
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return spec, kafkaError(kerr.InvalidConfig, "null value not supported for topic config %s", c.Name)
		}
		if spec.configs == nil {
			spec.configs = map[string]string{}
		}
		spec.configs[c.Name] = *c.Value
	}
	return spec, nil
}
