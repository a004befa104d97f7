package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// errNoCommittedOffset is returned by --shift-by for a partition where the
// group has committed nothing (Kafka's tool refuses the same).
var errNoCommittedOffset = errors.New("group: no committed offset to shift")

// resetKind is which --to-* option of reset-offsets was given.
type resetKind int

// The reset-offsets targets.
const (
	resetEarliest resetKind = iota + 1
	resetLatest
	resetOffset
	resetDatetime
	resetShift
)

// resetSpec is a parsed reset-offsets target.
type resetSpec struct {
	kind resetKind
	n    int64     // the offset of --to-offset, the delta of --shift-by
	at   time.Time // --to-datetime
}

// partitionState is what a reset plan needs to know of one partition.
type partitionState struct {
	start, end int64 // log start offset and high watermark
	committed  int64 // -1: none
	byTime     int64 // ListOffsets at spec.at; -1: no record at or after it
}

// target returns the offset a partition is reset to: always within
// [start, end], as Kafka's tool clamps out-of-range targets.
func (s resetSpec) target(p partitionState) (int64, error) {
	var off int64
	switch s.kind {
	case resetEarliest:
		off = p.start
	case resetLatest:
		off = p.end
	case resetOffset:
		off = s.n
	case resetDatetime:
		off = p.byTime
		if off < 0 {
			off = p.end
		}
	case resetShift:
		if p.committed < 0 {
			return 0, errNoCommittedOffset
		}
		off = p.committed + s.n
		if s.n > 0 && off < p.committed { // overflow
			off = p.end
		}
	default:
		return 0, fmt.Errorf("group: unknown reset kind %d", s.kind)
	}
	return min(max(off, p.start), p.end), nil
}

// resetRow is one partition of a reset-offsets plan (JSON/YAML shape).
type resetRow struct {
	Group     string `json:"group" yaml:"group"`
	Topic     string `json:"topic" yaml:"topic"`
	Partition int    `json:"partition" yaml:"partition"`
	// CurrentOffset is -1 when nothing is committed.
	CurrentOffset int64 `json:"current_offset" yaml:"current_offset"`
	NewOffset     int64 `json:"new_offset" yaml:"new_offset"`
}

// planReset computes the new offset of every partition of topics (all of a
// topic's partitions unless partitions names some).
func planReset(ctx context.Context, cl *adminClient, group string, topics []string, partitions []int, spec resetSpec) ([]resetRow, error) {
	var rows []resetRow
	for _, t := range topics {
		n, err := partitionCount(ctx, cl, t, false)
		if err != nil {
			return nil, err
		}
		ps := partitions
		if len(ps) == 0 {
			for p := range n {
				ps = append(ps, p)
			}
		}
		for _, p := range ps {
			if p < 0 || p >= n {
				return nil, fmt.Errorf("partition %d out of range: %s has %d", p, t, n)
			}
		}
		ps = slices.Compact(slices.Sorted(slices.Values(ps)))
		offs, err := listOffsets(ctx, cl, t, ps)
		if err != nil {
			return nil, err
		}
		committed, err := committedOffsets(ctx, cl, group, map[string][]int{t: ps})
		if err != nil {
			return nil, err
		}
		var byTime map[int]int64
		if spec.kind == resetDatetime {
			if byTime, err = offsetsForTime(ctx, cl, t, ps, spec.at); err != nil {
				return nil, err
			}
		}
		for _, p := range ps {
			st := partitionState{start: offs[p].start, end: offs[p].end, committed: -1, byTime: -1}
			if c, ok := committed[t][p]; ok {
				st.committed = c
			}
			if o, ok := byTime[p]; ok {
				st.byTime = o
			}
			off, err := spec.target(st)
			if err != nil {
				return nil, fmt.Errorf("%s/%d: %w", t, p, err)
			}
			rows = append(rows, resetRow{Group: group, Topic: t, Partition: p, CurrentOffset: st.committed, NewOffset: off})
		}
	}
	return rows, nil
}

// commitPlan commits the plan's offsets for the group as a simple
// (memberless) commit, generation -1, which the coordinator accepts only
// while the group is empty.
func commitPlan(ctx context.Context, cl *adminClient, group string, rows []resetRow) error {
	req := &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for _, r := range rows {
		req.Topics[r.Topic] = append(req.Topics[r.Topic], kafka.OffsetCommit{Partition: r.Partition, Offset: r.NewOffset})
	}
	resp, err := cl.OffsetCommit(ctx, req)
	if err != nil {
		return fmt.Errorf("commit offsets of group %q: %w", group, err)
	}
	var errs []error
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if err := kafkaErr(p.Error); err != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", t, p.Partition, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("commit offsets of group %q: %w", group, errors.Join(errs...))
	}
	return nil
}
