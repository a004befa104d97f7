// Package metadata holds the cluster metadata a broker serves from: an
// immutable Image of brokers, topics (with their UUIDs and configs),
// partitions (leader, replicas, ISR, leader epoch) and dynamic broker
// configs (cluster-wide default and per broker), changed only by applying
// Records, which yields a new Image. A Store owns the current Image and
// swaps it atomically; FileStore is the single-node Store that persists the
// Image in the data directory, and the raft controller of a later issue is
// another Store over the same Records.
package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"maps"
	"slices"
	"strings"
)

// UUID is a Kafka UUID (topic ids, cluster ids), 16 bytes.
type UUID [16]byte

// String returns the UUID as Kafka prints it: unpadded URL-safe base64.
func (u UUID) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

// IsZero reports whether u is the zero UUID, which Kafka reserves.
func (u UUID) IsZero() bool { return u == UUID{} }

// NewUUID returns a random UUID that, like Kafka's, is never zero and never
// prints with a leading '-'.
func NewUUID() UUID {
	for {
		var u UUID
		_, _ = rand.Read(u[:])  // crypto/rand.Read never fails
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // variant
		if !u.IsZero() && !strings.HasPrefix(u.String(), "-") {
			return u
		}
	}
}

// Broker is one registered broker.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string // empty: none
}

// Partition is one partition's replica placement and leadership.
type Partition struct {
	Partition      int32
	Leader         int32 // -1: none
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
}

// Topic is one topic. Configs holds only the topic-level overrides, by
// Kafka name; defaults are not stored.
type Topic struct {
	Name       string
	ID         UUID
	Partitions []Partition // index i is partition i
	Configs    map[string]string
}

// Image is one immutable version of the cluster metadata. Never modify an
// Image or anything reachable from it: build a new one with Apply. An Image
// is safe for concurrent reads.
type Image struct {
	// ClusterID identifies the cluster (Kafka's cluster.id).
	ClusterID string
	// ControllerID is the active controller's node id.
	ControllerID int32
	// Version counts the records applied since the cluster was created.
	Version int64

	brokers []Broker // sorted by NodeID
	topics  map[string]*Topic
	byID    map[UUID]*Topic
	// brokerConfigs holds the dynamic broker configs by resource name:
	// "" for the cluster-wide default, a node id for one broker.
	brokerConfigs map[string]map[string]string
}

// NewImage returns an empty image for a new cluster.
func NewImage(clusterID string, controllerID int32) *Image {
	return &Image{
		ClusterID:     clusterID,
		ControllerID:  controllerID,
		topics:        map[string]*Topic{},
		byID:          map[UUID]*Topic{},
		brokerConfigs: map[string]map[string]string{},
	}
}

// Brokers returns the registered brokers sorted by node id. The slice is
// shared: do not modify it.
func (im *Image) Brokers() []Broker { return im.brokers }

// Broker returns the broker with node id id.
func (im *Image) Broker(id int32) (Broker, bool) {
	i, ok := slices.BinarySearchFunc(im.brokers, id, func(b Broker, id int32) int { return int(b.NodeID) - int(id) })
	if !ok {
		return Broker{}, false
	}
	return im.brokers[i], true
}

// Topic returns the topic named name.
func (im *Image) Topic(name string) (*Topic, bool) {
	t, ok := im.topics[name]
	return t, ok
}

// TopicByID returns the topic with id id.
func (im *Image) TopicByID(id UUID) (*Topic, bool) {
	t, ok := im.byID[id]
	return t, ok
}

// Topics returns every topic sorted by name.
func (im *Image) Topics() []*Topic {
	ts := make([]*Topic, 0, len(im.topics))
	for _, t := range im.topics {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *Topic) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

// BrokerConfigs returns the dynamic broker configs set on one resource, by
// Kafka name: resource "" is the cluster-wide default (Kafka's
// DYNAMIC_DEFAULT_BROKER_CONFIG), a node id in decimal is that broker's own
// (DYNAMIC_BROKER_CONFIG). The map is shared: do not modify it. It is nil
// when nothing is set.
func (im *Image) BrokerConfigs(resource string) map[string]string {
	return im.brokerConfigs[resource]
}

// TopicCount returns the number of topics.
func (im *Image) TopicCount() int { return len(im.topics) }

// clone returns a shallow copy whose maps and slices may be changed.
func (im *Image) clone() *Image {
	c := *im
	c.brokers = slices.Clone(im.brokers)
	c.topics = make(map[string]*Topic, len(im.topics)+1)
	for k, v := range im.topics {
		c.topics[k] = v
	}
	c.byID = make(map[UUID]*Topic, len(im.byID)+1)
	for k, v := range im.byID {
		c.byID[k] = v
	}
	c.brokerConfigs = maps.Clone(im.brokerConfigs)
	if c.brokerConfigs == nil {
		c.brokerConfigs = map[string]map[string]string{}
	}
	return &c
}
