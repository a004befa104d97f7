package broker

import (
	"github.com/weir-broker/weir/broker/metadata"
)

// partitionStore is what the server's admin paths need of the partitions on
// this node. The replica manager backs it in production.
type partitionStore interface {
	// ensure opens or creates this node's partitions of t with t's configs.
	ensure(nodeID int32, t *metadata.Topic) error
	// deleteTopic closes and removes every partition of the topic.
	deleteTopic(name string) error
	// setConfigs applies t's configs to its live partitions.
	setConfigs(t *metadata.Topic) error
	// validateConfigs checks topic config overrides; errors map to
	// INVALID_CONFIG.
	validateConfigs(m map[string]string) error
	// acceptsConfig reports whether the partitions honour a topic config.
	acceptsConfig(name string) bool
	// close closes every partition (clean shutdown checkpoints).
	close() error
}

// memoryStore keeps no partitions: it backs the metadata paths until the
// replica manager is wired in.
type memoryStore struct{}

func (memoryStore) ensure(int32, *metadata.Topic) error     { return nil }
func (memoryStore) deleteTopic(string) error                { return nil }
func (memoryStore) setConfigs(*metadata.Topic) error        { return nil }
func (memoryStore) validateConfigs(map[string]string) error { return nil }
func (memoryStore) acceptsConfig(string) bool               { return true }
func (memoryStore) close() error                            { return nil }

// openPartitionStore opens the partitions of this node.
func openPartitionStore(s *Server) (partitionStore, error) { return openReplicaStore(s) }
