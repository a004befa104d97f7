package group

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32 // -1: unknown
	Metadata    string
	CommitTime  time.Time
}

// CheckCommit says whether a member may commit offsets now, with Kafka's
// rules: a commit without a generation (-1) is allowed only while the group
// is Empty (a simple consumer or an admin reset); otherwise the member must
// be known, not fenced, in the current generation, and no assignment may be
// in flight.
func (g *Group) CheckCommit(generation int32, memberID, instanceID string) error {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if instanceID != "" {
		if id, ok := g.static[instanceID]; ok && id != memberID {
			return kerr.FencedInstanceID
		}
	}
	if generation < 0 && g.state == Empty {
		return nil
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID
	}
	if generation != g.generation {
		return kerr.IllegalGeneration
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// CheckOffsetMetadata enforces offset.metadata.max.bytes.
func (g *Group) CheckOffsetMetadata(meta string) error {
	if len(meta) > g.rules.MaxOffsetMetadata {
		return fmt.Errorf("%w: %d bytes, limit %d", kerr.OffsetMetadataTooLarge, len(meta), g.rules.MaxOffsetMetadata)
	}
	return nil
}

// Commit records a committed offset; a commit by a member also counts as a
// heartbeat, as in Kafka.
func (g *Group) Commit(now time.Time, memberID string, tp TopicPartition, o Offset) {
	g.offsets[tp] = o
	if m := g.members[memberID]; m != nil && m.joinReply == 0 && m.syncReply == 0 {
		m.deadline = now.Add(m.SessionTimeout)
	}
}

// DeleteOffset forgets a committed offset.
func (g *Group) DeleteOffset(tp TopicPartition) { delete(g.offsets, tp) }

// Offset returns a committed offset.
func (g *Group) Offset(tp TopicPartition) (Offset, bool) {
	o, ok := g.offsets[tp]
	return o, ok
}

// Offsets returns every committed offset, sorted by topic and partition.
func (g *Group) Offsets() []TopicOffset {
	out := make([]TopicOffset, 0, len(g.offsets))
	for tp, o := range g.offsets {
		out = append(out, TopicOffset{TopicPartition: tp, Offset: o})
	}
	slices.SortFunc(out, func(a, b TopicOffset) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// TopicOffset is a committed offset with its partition.
type TopicOffset struct {
	TopicPartition
	Offset
}

// Expired returns the offsets to expire at now: only an Empty group's
// offsets expire, retention after the later of their commit and the group
// becoming empty (Kafka 2.1+, KIP-211).
func (g *Group) Expired(now time.Time, retention time.Duration) []TopicPartition {
	if g.state != Empty {
		return nil
	}
	var out []TopicPartition
	for tp, o := range g.offsets {
		since := o.CommitTime
		if g.stateSince.After(since) {
			since = g.stateSince
		}
		if !now.Before(since.Add(retention)) {
			out = append(out, tp)
		}
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// Removable reports whether the group holds nothing worth keeping: Empty,
// no offsets. Its metadata can then be deleted.
func (g *Group) Removable() bool {
	return g.state == Empty && len(g.offsets) == 0 && len(g.pending) == 0
}

// SubscribedTopics returns the topics the members subscribe to, decoded
// from their consumer protocol metadata; for a group of another protocol
// type, or undecodable metadata, ok is false.
func (g *Group) SubscribedTopics() (topics map[string]bool, ok bool) {
	if g.protocolType != "consumer" || len(g.members) == 0 {
		return nil, len(g.members) == 0
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics, true
}
