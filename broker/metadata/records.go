package metadata

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

var (
	// ErrInvalidTopic is returned for an illegal topic name.
	ErrInvalidTopic = errors.New("metadata: invalid topic")
	// ErrTopicExists is returned when creating a topic that exists.
	ErrTopicExists = errors.New("metadata: topic already exists")
	// ErrUnknownTopic is returned for a topic that does not exist.
	ErrUnknownTopic = errors.New("metadata: unknown topic")
	// ErrInvalidPartitions is returned for a bad partition count or
	// assignment.
	ErrInvalidPartitions = errors.New("metadata: invalid partitions")
	// ErrInvalidReplicationFactor is returned for a replication factor the
	// cluster cannot satisfy.
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")
	// ErrInvalidReplicaAssignment is returned for replicas on unknown
	// brokers or listed twice.
	ErrInvalidReplicaAssignment = errors.New("metadata: invalid replica assignment")
	// ErrInvalidBrokerResource is returned for a broker config resource
	// name that is neither "" nor a node id.
	ErrInvalidBrokerResource = errors.New("metadata: invalid broker config resource")
)

// Record is one change to the metadata. Applying records is deterministic:
// the same records applied to the same Image give the same Image, which is
// what lets a replicated log of records drive every broker.
type Record interface {
	apply(im *Image) error
}

// RegisterBroker adds or replaces a broker.
type RegisterBroker struct{ Broker Broker }

// CreateTopic adds a topic with its partitions.
type CreateTopic struct {
	Name       string
	ID         UUID
	Partitions []Partition
	Configs    map[string]string
}

// DeleteTopic removes a topic.
type DeleteTopic struct{ Name string }

// CreatePartitions appends partitions to a topic.
type CreatePartitions struct {
	Topic      string
	Partitions []Partition // numbered from the topic's current count
}

// SetTopicConfigs replaces a topic's config overrides.
type SetTopicConfigs struct {
	Topic   string
	Configs map[string]string
}

// SetBrokerConfigs replaces the dynamic broker configs of one resource, as
// Kafka's ConfigRecord does for BROKER resources: Broker "" is the
// cluster-wide default, a node id in decimal ("1") is that broker's own
// configs. An empty Configs removes every config of the resource. Names and
// values are the broker's business; the record only stores them.
type SetBrokerConfigs struct {
	Broker  string
	Configs map[string]string
}

// Apply returns the image with recs applied in order, or an error and no
// change if any record does not apply.
func (im *Image) Apply(recs ...Record) (*Image, error) {
	next := im.clone()
	for _, r := range recs {
		if err := r.apply(next); err != nil {
			return im, err
		}
		next.Version++
	}
	return next, nil
}

func (r RegisterBroker) apply(im *Image) error {
	i, found := slices.BinarySearchFunc(im.brokers, r.Broker.NodeID, func(b Broker, id int32) int { return int(b.NodeID) - int(id) })
	if found {
		im.brokers[i] = r.Broker
	} else {
		im.brokers = slices.Insert(im.brokers, i, r.Broker)
	}
	return nil
}

func (r CreateTopic) apply(im *Image) error {
	if err := ValidateTopicName(r.Name); err != nil {
		return err
	}
	if _, ok := im.topics[r.Name]; ok {
		return fmt.Errorf("%w: %s", ErrTopicExists, r.Name)
	}
	if r.ID.IsZero() {
		return fmt.Errorf("%w: topic %s has the zero id", ErrInvalidTopic, r.Name)
	}
	if _, ok := im.byID[r.ID]; ok {
		return fmt.Errorf("%w: topic id %s is taken", ErrTopicExists, r.ID)
	}
	if len(r.Partitions) == 0 {
		return fmt.Errorf("%w: topic %s has no partitions", ErrInvalidPartitions, r.Name)
	}
	if err := checkPartitions(r.Partitions, 0); err != nil {
		return fmt.Errorf("topic %s: %w", r.Name, err)
	}
	t := &Topic{Name: r.Name, ID: r.ID, Partitions: clonePartitions(r.Partitions), Configs: maps.Clone(r.Configs)}
	im.topics[t.Name] = t
	im.byID[t.ID] = t
	return nil
}

func (r DeleteTopic) apply(im *Image) error {
	t, ok := im.topics[r.Name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, r.Name)
	}
	delete(im.topics, r.Name)
	delete(im.byID, t.ID)
	return nil
}

func (r CreatePartitions) apply(im *Image) error {
	t, ok := im.topics[r.Topic]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, r.Topic)
	}
	if len(r.Partitions) == 0 {
		return fmt.Errorf("%w: topic %s: no partitions to add", ErrInvalidPartitions, r.Topic)
	}
	if err := checkPartitions(r.Partitions, int32(len(t.Partitions))); err != nil {
		return fmt.Errorf("topic %s: %w", r.Topic, err)
	}
	nt := *t
	nt.Partitions = append(clonePartitions(t.Partitions), clonePartitions(r.Partitions)...)
	im.topics[nt.Name] = &nt
	im.byID[nt.ID] = &nt
	return nil
}

func (r SetTopicConfigs) apply(im *Image) error {
	t, ok := im.topics[r.Topic]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, r.Topic)
	}
	nt := *t
	nt.Configs = maps.Clone(r.Configs)
	im.topics[nt.Name] = &nt
	im.byID[nt.ID] = &nt
	return nil
}

func (r SetBrokerConfigs) apply(im *Image) error {
	if r.Broker != "" {
		id, err := strconv.ParseInt(r.Broker, 10, 32)
		if err != nil || id < 0 || strconv.FormatInt(id, 10) != r.Broker {
			return fmt.Errorf("%w: %q is neither \"\" nor a node id", ErrInvalidBrokerResource, r.Broker)
		}
	}
	if len(r.Configs) == 0 {
		delete(im.brokerConfigs, r.Broker)
		return nil
	}
	im.brokerConfigs[r.Broker] = maps.Clone(r.Configs)
	return nil
}

// checkPartitions checks that ps are numbered from first and each has
// replicas with no duplicates.
func checkPartitions(ps []Partition, first int32) error {
	for i, p := range ps {
		if p.Partition != first+int32(i) {
			return fmt.Errorf("%w: partition %d where %d was expected", ErrInvalidPartitions, p.Partition, first+int32(i))
		}
		if len(p.Replicas) == 0 {
			return fmt.Errorf("%w: partition %d has no replicas", ErrInvalidReplicaAssignment, p.Partition)
		}
		seen := map[int32]bool{}
		for _, r := range p.Replicas {
			if seen[r] {
				return fmt.Errorf("%w: partition %d lists broker %d twice", ErrInvalidReplicaAssignment, p.Partition, r)
			}
			seen[r] = true
		}
	}
	return nil
}

func clonePartitions(ps []Partition) []Partition {
	out := make([]Partition, len(ps))
	for i, p := range ps {
		p.Replicas = slices.Clone(p.Replicas)
		p.ISR = slices.Clone(p.ISR)
		out[i] = p
	}
	return out
}
