package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// partitionOffsets is the log start offset and high watermark of one
// partition.
type partitionOffsets struct {
	start, end int64
}

// listOffsets returns the log start offset and high watermark of each of
// the given partitions of topic.
func listOffsets(ctx context.Context, cl *adminClient, topic string, partitions []int) (map[int]partitionOffsets, error) {
	var reqs []kafka.OffsetRequest
	for _, p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := make(map[int]partitionOffsets, len(partitions))
	for _, po := range resp.Topics[topic] {
		if err := kafkaErr(po.Error); err != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, err)
		}
		out[po.Partition] = partitionOffsets{start: po.FirstOffset, end: po.LastOffset}
	}
	for _, p := range partitions {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("list offsets of %s/%d: no answer", topic, p)
		}
	}
	return out, nil
}

// offsetsForTime returns, per partition, the first offset whose timestamp
// is at or after t; a partition with none maps to -1.
func offsetsForTime(ctx context.Context, cl *adminClient, topic string, partitions []int, t time.Time) (map[int]int64, error) {
	var reqs []kafka.OffsetRequest
	for _, p := range partitions {
		reqs = append(reqs, kafka.TimeOffsetOf(p, t))
	}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s at %s: %w", topic, t.Format(time.RFC3339), err)
	}
	out := make(map[int]int64, len(partitions))
	for _, po := range resp.Topics[topic] {
		if err := kafkaErr(po.Error); err != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, err)
		}
		out[po.Partition] = -1
		for off := range po.Offsets {
			out[po.Partition] = off
		}
	}
	return out, nil
}
