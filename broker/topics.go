package broker

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/broker/metadata"
)

// topicSpec is a request to create a topic, as CreateTopics and
// auto-creation express it. -1 means the broker default.
type topicSpec struct {
	name              string
	partitions        int32
	replicationFactor int16
	assignment        [][]int32 // replicas per partition; nil for none
	configs           map[string]string
}

// kafkaError wraps a Kafka error code with a message for the client.
func kafkaError(code *kerr.Error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", code, fmt.Sprintf(format, args...))
}

// planTopic validates spec against im as Kafka does and returns the record
// that creates it. It changes nothing.
func (s *Server) planTopic(im *metadata.Image, spec topicSpec) (metadata.CreateTopic, error) {
	var rec metadata.CreateTopic
	if err := metadata.ValidateTopicName(spec.name); err != nil {
		return rec, err
	}
	if _, ok := im.Topic(spec.name); ok {
		return rec, fmt.Errorf("%w: topic '%s' already exists", metadata.ErrTopicExists, spec.name)
	}
	for _, t := range im.Topics() {
		if metadata.TopicNamesCollide(t.Name, spec.name) {
			return rec, kafkaError(kerr.InvalidTopicException, "topic '%s' collides with existing topic '%s' ('.' and '_' are the same in metric names)", spec.name, t.Name)
		}
	}
	brokers := im.Brokers()
	var replicas [][]int32
	if spec.assignment != nil {
		if spec.partitions != -1 || spec.replicationFactor != -1 {
			return rec, kafkaError(kerr.InvalidRequest, "both a replica assignment and a partition count or replication factor were given")
		}
		if len(spec.assignment) == 0 {
			return rec, kafkaError(kerr.InvalidReplicaAssignment, "empty replica assignment")
		}
		if len(spec.assignment) > int(s.cfg.MaxTopicPartitions) {
			return rec, kafkaError(kerr.InvalidPartitions, "number of partitions %d is above this broker's limit of %d", len(spec.assignment), s.cfg.MaxTopicPartitions)
		}
		for p, rs := range spec.assignment {
			if rs == nil {
				return rec, kafkaError(kerr.InvalidReplicaAssignment, "partitions must be numbered 0 to %d without gaps", len(spec.assignment)-1)
			}
			if err := s.checkReplicas(im, rs, len(spec.assignment[0])); err != nil {
				return rec, fmt.Errorf("partition %d: %w", p, err)
			}
		}
		replicas = spec.assignment
	} else {
		n, rf := spec.partitions, spec.replicationFactor
		if n == -1 {
			n = s.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = 1
		}
		if n < 1 {
			return rec, kafkaError(kerr.InvalidPartitions, "number of partitions must be larger than 0")
		}
		if n > s.cfg.MaxTopicPartitions {
			return rec, kafkaError(kerr.InvalidPartitions, "number of partitions %d is above this broker's limit of %d", n, s.cfg.MaxTopicPartitions)
		}
		if rf < 1 {
			return rec, kafkaError(kerr.InvalidReplicationFactor, "replication factor must be larger than 0")
		}
		if int(rf) > len(brokers) {
			return rec, kafkaError(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: %d", rf, len(brokers))
		}
		replicas = assignReplicas(brokers, int(n), int(rf), 0)
	}
	if err := s.checkTopicConfigs(spec.configs); err != nil {
		return rec, err
	}
	rec = metadata.CreateTopic{Name: spec.name, ID: metadata.NewUUID(), Configs: maps.Clone(spec.configs)}
	for p, rs := range replicas {
		rec.Partitions = append(rec.Partitions, newPartition(int32(p), rs))
	}
	return rec, nil
}

// checkReplicas checks one partition's manual assignment: known brokers, no
// duplicates, and the same replication factor as the first partition.
func (s *Server) checkReplicas(im *metadata.Image, rs []int32, rf int) error {
	if len(rs) == 0 || len(rs) != rf {
		return kafkaError(kerr.InvalidReplicaAssignment, "all partitions must have the same non-zero number of replicas")
	}
	for i, id := range rs {
		if _, ok := im.Broker(id); !ok {
			return kafkaError(kerr.InvalidReplicaAssignment, "unknown broker %d", id)
		}
		if slices.Contains(rs[:i], id) {
			return kafkaError(kerr.InvalidReplicaAssignment, "broker %d listed twice", id)
		}
	}
	return nil
}

// assignReplicas places n partitions of replication factor rf round-robin
// over brokers, the first replica (the preferred leader) rotating, starting
// at partition first.
func assignReplicas(brokers []metadata.Broker, n, rf, first int) [][]int32 {
	out := make([][]int32, n)
	for p := range out {
		rs := make([]int32, rf)
		for r := range rs {
			rs[r] = brokers[(first+p+r)%len(brokers)].NodeID
		}
		out[p] = rs
	}
	return out
}

func newPartition(p int32, replicas []int32) metadata.Partition {
	return metadata.Partition{
		Partition: p,
		Leader:    replicas[0],
		Replicas:  slices.Clone(replicas),
		ISR:       slices.Clone(replicas),
	}
}

// createTopic validates and creates one topic, then its partitions on this
// node. validateOnly stops before changing anything.
func (s *Server) createTopic(spec topicSpec, validateOnly bool) (*metadata.Topic, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	rec, err := s.planTopic(s.meta.Image(), spec)
	if err != nil {
		return nil, err
	}
	if validateOnly {
		return &metadata.Topic{Name: rec.Name, Partitions: rec.Partitions, Configs: rec.Configs}, nil
	}
	im, err := s.meta.Apply(rec)
	if err != nil {
		return nil, err
	}
	t, _ := im.Topic(rec.Name)
	if err := s.store.ensure(s.cfg.NodeID, t); err != nil {
		return t, fmt.Errorf("broker: create partitions of %s: %w", t.Name, err)
	}
	s.logger.Info("topic created", "topic", t.Name, "id", t.ID.String(), "partitions", len(t.Partitions))
	return t, nil
}

// deleteTopic removes a topic from the metadata, then its partitions.
func (s *Server) deleteTopic(name string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if _, err := s.meta.Apply(metadata.DeleteTopic{Name: name}); err != nil {
		return err
	}
	if err := s.store.deleteTopic(name); err != nil {
		return fmt.Errorf("broker: delete partitions of %s: %w", name, err)
	}
	s.logger.Info("topic deleted", "topic", name)
	return nil
}
