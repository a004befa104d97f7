package main

import (
	"context"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runFranz is a franz-go member: cooperative-sticky, rebalances blocked
// while a polled batch is processed and committed.
func runFranz(ctx context.Context, c config, out *reporter) error {
	report := func(ev string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			_, gen := cl.GroupMetadata()
			out.partitions(ev, gen, m[c.topic])
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokers),
		kgo.ClientID(c.name),
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(c.topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(sessionTimeout),
		kgo.HeartbeatInterval(heartbeatInterval),
		kgo.RebalanceTimeout(rebalanceTimeout),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(report("assigned")),
		kgo.OnPartitionsRevoked(report("revoked")),
		kgo.OnPartitionsLost(report("revoked")),
	}
	if c.instance != "" {
		opts = append(opts, kgo.InstanceID(c.instance))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("franz: new client: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			// A poll blocks rebalances until AllowRebalance, and Close
			// leaves the group through one.
			cl.AllowRebalance()
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "groupmember: fetch %s/%d: %v\n", t, p, err)
		})
		var recs []*kgo.Record
		next := map[int32]int64{}
		fs.EachRecord(func(r *kgo.Record) {
			out.record(r.Partition, r.Offset)
			recs = append(recs, r)
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		})
		if len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				fmt.Fprintf(os.Stderr, "groupmember: commit: %v\n", err)
			} else {
				for p, o := range next {
					out.commit(p, o)
				}
			}
		}
		cl.AllowRebalance()
	}
}
