package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"
)

// Errors of the group commands that callers branch on.
var (
	// errUnknownGroup is returned when a named group has neither members
	// nor committed offsets (Kafka reports such a group as Dead).
	errUnknownGroup = errors.New("group: unknown group")
	// errGroupActive is returned by reset-offsets while the group has
	// members, as Kafka's tool refuses then too.
	errGroupActive = errors.New("group: group is active")
	// errGroupFailed is returned when some groups of a delete did not
	// succeed; each was already reported in the output.
	errGroupFailed = errors.New("group: operation failed")
	// errBadAssignment is returned for member assignment bytes that do not
	// parse as Kafka's consumer protocol.
	errBadAssignment = errors.New("group: malformed member assignment")
)

// groupDescription is the JSON/YAML shape of `group describe`.
type groupDescription struct {
	Group        string        `json:"group" yaml:"group"`
	State        string        `json:"state" yaml:"state"`
	ProtocolType string        `json:"protocol_type" yaml:"protocol_type"`
	Protocol     string        `json:"protocol" yaml:"protocol"`
	Members      []groupMember `json:"members" yaml:"members"`
	Offsets      []groupOffset `json:"offsets" yaml:"offsets"`
	// TotalLag sums the lag of the partitions with a committed offset.
	TotalLag int64 `json:"total_lag" yaml:"total_lag"`
}

// groupMember is one member in `group describe`.
type groupMember struct {
	MemberID    string            `json:"member_id" yaml:"member_id"`
	InstanceID  string            `json:"instance_id,omitempty" yaml:"instance_id,omitempty"`
	ClientID    string            `json:"client_id" yaml:"client_id"`
	ClientHost  string            `json:"client_host" yaml:"client_host"`
	Assignments []topicPartitions `json:"assignments" yaml:"assignments"`
	// AssignmentError says why the assignment bytes could not be read.
	AssignmentError string `json:"assignment_error,omitempty" yaml:"assignment_error,omitempty"`
}

// topicPartitions is a topic and some of its partitions.
type topicPartitions struct {
	Topic      string `json:"topic" yaml:"topic"`
	Partitions []int  `json:"partitions" yaml:"partitions"`
}

// groupOffset is one partition's committed offset, log end offset and lag.
type groupOffset struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int    `json:"partition" yaml:"partition"`
	// CommittedOffset is -1 when the group has committed nothing here.
	CommittedOffset int64 `json:"committed_offset" yaml:"committed_offset"`
	// LogEndOffset is the high watermark; -1 when the topic or partition
	// no longer exists (its offsets are still committed).
	LogEndOffset int64 `json:"log_end_offset" yaml:"log_end_offset"`
	// Lag is LogEndOffset - CommittedOffset, absent without a commit.
	Lag      *int64 `json:"lag,omitempty" yaml:"lag,omitempty"`
	MemberID string `json:"member_id,omitempty" yaml:"member_id,omitempty"`
	ClientID string `json:"client_id,omitempty" yaml:"client_id,omitempty"`
}

// describeGroups asks the coordinators of ids for their state and members.
// It uses the raw DescribeGroups message because kafka-go's Client method
// drops the protocol name and the static instance id.
func describeGroups(ctx context.Context, cl *adminClient, ids []string) ([]describegroups.ResponseGroup, error) {
	for {
		m, err := cl.transport.RoundTrip(ctx, cl.Addr, &describegroups.Request{Groups: ids})
		if err != nil {
			return nil, fmt.Errorf("describe groups: %w", err)
		}
		resp, ok := m.(*describegroups.Response)
		if !ok {
			return nil, fmt.Errorf("describe groups: unexpected response %T", m)
		}
		retry := false
		for _, g := range resp.Groups {
			if ke := kafka.Error(g.ErrorCode); g.ErrorCode != 0 && ke.Temporary() {
				retry = true
			}
		}
		if !retry {
			return resp.Groups, nil
		}
		// The coordinator is loading or moving: ask again until --timeout.
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, fmt.Errorf("describe groups: %w", ctx.Err())
		}
	}
}

// describeGroup returns the full description of one group, with the log
// end offset and lag of every partition it has committed or been assigned.
func describeGroup(ctx context.Context, cl *adminClient, id string) (groupDescription, error) {
	d := groupDescription{Group: id, Members: []groupMember{}, Offsets: []groupOffset{}}
	gs, err := describeGroups(ctx, cl, []string{id})
	if err != nil {
		return d, err
	}
	if len(gs) != 1 {
		return d, fmt.Errorf("describe group %q: %d answers", id, len(gs))
	}
	g := gs[0]
	if err := kafkaErr(kafka.Error(g.ErrorCode)); err != nil {
		return d, fmt.Errorf("describe group %q: %w", id, err)
	}
	d.State, d.ProtocolType, d.Protocol = g.GroupState, g.ProtocolType, g.ProtocolData
	owner := map[string]map[int]*groupMember{}
	for _, m := range g.Members {
		gm := groupMember{MemberID: m.MemberID, InstanceID: m.GroupInstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Assignments: []topicPartitions{}}
		if g.ProtocolType == "consumer" || g.ProtocolType == "" {
			as, err := decodeAssignment(m.MemberAssignment)
			if err != nil {
				gm.AssignmentError = err.Error()
			}
			gm.Assignments = as
		}
		d.Members = append(d.Members, gm)
	}
	slices.SortFunc(d.Members, func(a, b groupMember) int {
		return cmp.Or(strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.MemberID, b.MemberID))
	})
	for i := range d.Members {
		for _, tp := range d.Members[i].Assignments {
			if owner[tp.Topic] == nil {
				owner[tp.Topic] = map[int]*groupMember{}
			}
			for _, p := range tp.Partitions {
				owner[tp.Topic][p] = &d.Members[i]
			}
		}
	}
	committed, err := committedOffsets(ctx, cl, id, nil)
	if errors.Is(err, kafka.GroupIdNotFound) {
		committed, err = nil, nil // some brokers answer so for a group they do not know
	}
	if err != nil {
		return d, err
	}
	if len(d.Members) == 0 && len(committed) == 0 && (d.State == "Dead" || d.State == "") {
		return d, fmt.Errorf("%w %q", errUnknownGroup, id)
	}
	parts := map[string]map[int]bool{}
	add := func(t string, p int) {
		if parts[t] == nil {
			parts[t] = map[int]bool{}
		}
		parts[t][p] = true
	}
	for t, ps := range committed {
		for p := range ps {
			add(t, p)
		}
	}
	for t, ps := range owner {
		for p := range ps {
			add(t, p)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(parts)) {
		ps := slices.Sorted(maps.Keys(parts[t]))
		ends, err := listOffsets(ctx, cl, t, ps)
		gone := errors.Is(err, kafka.UnknownTopicOrPartition)
		if err != nil && !gone {
			return d, err
		}
		for _, p := range ps {
			o := groupOffset{Topic: t, Partition: p, CommittedOffset: -1, LogEndOffset: -1}
			if e, ok := ends[p]; ok && !gone {
				o.LogEndOffset = e.end
			}
			if c, ok := committed[t][p]; ok {
				o.CommittedOffset = c
				if o.LogEndOffset >= 0 {
					lag := max(o.LogEndOffset-c, 0)
					o.Lag = &lag
					d.TotalLag += lag
				}
			}
			if m := owner[t][p]; m != nil {
				o.MemberID, o.ClientID = m.MemberID, m.ClientID
			}
			d.Offsets = append(d.Offsets, o)
		}
	}
	return d, nil
}

// committedOffsets returns the group's committed offsets by topic and
// partition; topics nil asks for every topic. Partitions without a commit
// are left out.
func committedOffsets(ctx context.Context, cl *adminClient, id string, topics map[string][]int) (map[string]map[int]int64, error) {
	resp, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: id, Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", id, err)
	}
	if err := kafkaErr(resp.Error); err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", id, err)
	}
	out := map[string]map[int]int64{}
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if err := kafkaErr(p.Error); err != nil {
				return nil, fmt.Errorf("fetch offsets of group %q, %s/%d: %w", id, t, p.Partition, err)
			}
			if p.CommittedOffset < 0 {
				continue
			}
			if out[t] == nil {
				out[t] = map[int]int64{}
			}
			out[t][p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// decodeAssignment parses a member assignment in Kafka's consumer protocol
// (version int16, [topic string, [partition int32]], user data bytes,
// then fields of later versions, which are ignored). Empty input is no
// assignment. It never panics; malformed input returns errBadAssignment and
// the topics read so far.
func decodeAssignment(b []byte) ([]topicPartitions, error) {
	out := []topicPartitions{}
	if len(b) == 0 {
		return out, nil
	}
	r := assignmentReader{b: b}
	if v := r.int16(); v < 0 {
		return out, fmt.Errorf("%w: version %d", errBadAssignment, v)
	}
	n := r.int32()
	if n < 0 || int(n) > len(r.b) {
		return out, fmt.Errorf("%w: %d topics in %d bytes", errBadAssignment, n, len(b))
	}
	for range n {
		tp := topicPartitions{Topic: r.string(), Partitions: []int{}}
		np := r.int32()
		if r.err != nil || np < 0 || int(np) > len(r.b)/4 {
			return out, fmt.Errorf("%w: truncated topic %q", errBadAssignment, tp.Topic)
		}
		for range np {
			tp.Partitions = append(tp.Partitions, int(r.int32()))
		}
		slices.Sort(tp.Partitions)
		out = append(out, tp)
	}
	if r.err != nil {
		return out, fmt.Errorf("%w: %v", errBadAssignment, r.err)
	}
	slices.SortFunc(out, func(a, b topicPartitions) int { return strings.Compare(a.Topic, b.Topic) })
	return out, nil
}

// errShort is what assignmentReader records when its input ends early.
var errShort = errors.New("input ends early")

// assignmentReader reads big-endian Kafka primitives; after the input ends
// every read returns zero and err is set.
type assignmentReader struct {
	b   []byte
	err error
}

func (r *assignmentReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *assignmentReader) int16() int16 {
	if s := r.take(2); s != nil {
		return int16(binary.BigEndian.Uint16(s))
	}
	return 0
}

func (r *assignmentReader) int32() int32 {
	if s := r.take(4); s != nil {
		return int32(binary.BigEndian.Uint32(s))
	}
	return 0
}

func (r *assignmentReader) string() string {
	n := r.int16()
	if n < 0 {
		return ""
	}
	return string(r.take(int(n)))
}
