package group

// Records of the __consumer_offsets topic, in Kafka's formats (the kmsg
// types OffsetCommitKey/Value and GroupMetadataKey/Value):
//
//	key version 0 or 1: an offset commit   key = (group, topic, partition)
//	key version 2:      group metadata     key = (group)
//	null value:         a tombstone (compaction removes the key)
//
// Written versions, chosen for the tools that read the topic directly
// (Burrow 1.2.1 decodes offset values v0/v1/v3 and group metadata v0/v1):
//   - offset keys v1 and offset values v3 (leader epoch; no expire
//     timestamp), what Kafka 2.1+ writes;
//   - group metadata v1 while no member is static, v3 (instance ids,
//     KIP-345) once one is: a reader that skips v3 group records still
//     reads every offset, which live in their own records.

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// ErrBadRecord is returned for a record of the offsets topic that does not
// decode.
var ErrBadRecord = errors.New("group: undecodable offsets topic record")

func offsetKey(group string, tp TopicPartition) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = 1, group, tp.Topic, tp.Partition
	return k.AppendTo(make([]byte, 0, 2+2+len(group)+2+len(tp.Topic)+4))
}

func offsetRecord(group string, tp TopicPartition, o Offset) batch.Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata = o.Offset, o.LeaderEpoch, o.Metadata
	v.CommitTimestamp = o.CommitTime.UnixMilli()
	value := v.AppendTo(make([]byte, 0, 2+8+4+2+len(o.Metadata)+8))
	return batch.Record{Key: offsetKey(group, tp), Value: value, Timestamp: o.CommitTime.UnixMilli()}
}

func offsetTombstone(group string, tp TopicPartition, now time.Time) batch.Record {
	return batch.Record{Key: offsetKey(group, tp), Timestamp: now.UnixMilli()}
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version, k.Group = 2, group
	return k.AppendTo(nil)
}

func groupTombstone(group string, now time.Time) batch.Record {
	return batch.Record{Key: groupKey(group), Timestamp: now.UnixMilli()}
}

// groupRecord is the group's metadata as of now.
func groupRecord(g *Group, now time.Time) batch.Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 1
	v.ProtocolType, v.Generation = g.protocolType, g.generation
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		mv := kmsg.NewGroupMetadataValueMember()
		mv.MemberID, mv.ClientID, mv.ClientHost = m.ID, m.ClientID, m.ClientHost
		mv.RebalanceTimeoutMillis = int32(m.RebalanceTimeout.Milliseconds())
		mv.SessionTimeoutMillis = int32(m.SessionTimeout.Milliseconds())
		mv.Subscription, mv.Assignment = nonNil(m.metadataFor(g.protocol)), nonNil(m.Assignment)
		if m.InstanceID != "" {
			mv.InstanceID = kmsg.StringPtr(m.InstanceID)
			v.Version = 3
		}
		v.Members = append(v.Members, mv)
	}
	return batch.Record{Key: groupKey(g.ID), Value: v.AppendTo(nil), Timestamp: now.UnixMilli()}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// buildBatch encodes records as one uncompressed batch.
func buildBatch(recs []batch.Record) ([]byte, error) {
	b, err := batch.AppendBuild(nil, batch.Options{}, recs...)
	if err != nil {
		return nil, fmt.Errorf("group: build batch: %w", err)
	}
	return b, nil
}

// loaded is one decoded record of the offsets topic.
type loaded struct {
	group     string
	isOffset  bool
	tp        TopicPartition
	offset    *Offset                  // nil: tombstone
	metadata  *kmsg.GroupMetadataValue // nil: tombstone
	timestamp time.Time
}

// decodeRecord decodes one record of the offsets topic.
func decodeRecord(key, value []byte) (loaded, error) {
	var out loaded
	if len(key) < 2 {
		return out, fmt.Errorf("%w: key of %d bytes", ErrBadRecord, len(key))
	}
	version := int16(key[0])<<8 | int16(key[1])
	switch version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return out, fmt.Errorf("%w: offset key: %w", ErrBadRecord, err)
		}
		out.group, out.isOffset, out.tp = k.Group, true, TopicPartition{k.Topic, k.Partition}
		if value == nil {
			return out, nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return out, fmt.Errorf("%w: offset value: %w", ErrBadRecord, err)
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		out.offset = &Offset{Offset: v.Offset, LeaderEpoch: epoch, Metadata: v.Metadata, CommitTime: time.UnixMilli(v.CommitTimestamp)}
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return out, fmt.Errorf("%w: group key: %w", ErrBadRecord, err)
		}
		out.group = k.Group
		if value == nil {
			return out, nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(value); err != nil {
			return out, fmt.Errorf("%w: group value: %w", ErrBadRecord, err)
		}
		out.metadata = v
	default:
		return out, fmt.Errorf("%w: key version %d", ErrBadRecord, version)
	}
	return out, nil
}

// restore sets the group's membership from a metadata record (appended at
// written) read back at startup. A group with members comes back Stable: its
// members' sessions start now, so members that are gone expire after their
// session timeout. The group has been in its state since the record's
// CurrentStateTimestamp (v2+) or, in the v1 we write, since the record was
// written (we write one on every change of state that matters for expiry).
func (g *Group) restore(v *kmsg.GroupMetadataValue, written, now time.Time) {
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	g.protocol, g.leader = "", ""
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	clear(g.members)
	clear(g.static)
	for _, mv := range v.Members {
		m := &Member{ID: mv.MemberID, ClientID: mv.ClientID, ClientHost: mv.ClientHost,
			SessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
			RebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
			Protocols:        []Protocol{{Name: g.protocol, Metadata: mv.Subscription}},
			Assignment:       mv.Assignment,
		}
		if m.RebalanceTimeout <= 0 {
			m.RebalanceTimeout = m.SessionTimeout
		}
		m.deadline = now.Add(m.SessionTimeout)
		if mv.InstanceID != nil && *mv.InstanceID != "" {
			m.InstanceID = *mv.InstanceID
			g.static[m.InstanceID] = m.ID
		}
		g.members[m.ID] = m
	}
	g.state, g.stateSince = Empty, now
	switch {
	case v.Version >= 2 && v.CurrentStateTimestamp > 0:
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	case written.After(time.UnixMilli(0)) && written.Before(now):
		g.stateSince = written
	}
	if len(g.members) > 0 {
		g.state = Stable
		if g.members[g.leader] == nil {
			g.leader = g.memberIDs()[0]
		}
	}
}
