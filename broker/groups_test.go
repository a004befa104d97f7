package broker

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
)

// produceN writes n records with values "0".."n-1" round-robin over the
// topic's partitions.
func produceN(t *testing.T, s *Server, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = kgo.StringRecord(strconv.Itoa(i))
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// groupConsumer is one kgo consumer group member polling in a goroutine.
type groupConsumer struct {
	cl   *kgo.Client
	done chan struct{}
}

// consumeAll runs members consumers of group on topic until every value of
// 0..n-1 has been seen, commits, and returns the consumers (still members).
func consumeAll(t *testing.T, s *Server, groupID, topic string, members, n int, opts ...kgo.Opt) []*kgo.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]bool{}
	all := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var clients []*kgo.Client
	for i := range members {
		o := append([]kgo.Opt{
			kgo.SeedBrokers(s.Addr().String()),
			kgo.ConsumerGroup(groupID),
			kgo.ConsumeTopics(topic),
			kgo.ClientID(fmt.Sprintf("member-%d", i)),
			kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		}, opts...)
		cl, err := kgo.NewClient(o...)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)] = true
					if len(seen) == n {
						once.Do(func() { close(all) })
					}
					mu.Unlock()
				})
				select {
				case <-all:
					return
				default:
				}
			}
		}()
	}
	select {
	case <-all:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	mu.Lock()
	got := len(seen)
	mu.Unlock()
	if got != n {
		for _, cl := range clients {
			cl.Close()
		}
		t.Fatalf("consumed %d distinct records of %d", got, n)
	}
	for _, cl := range clients {
		if err := cl.CommitUncommittedOffsets(ctxT(t)); err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	return clients
}

// TestGroupConsumeKgo runs two kgo members of one group, eager (range) and
// cooperative-sticky, over a 4-partition topic: every record is consumed,
// both members get partitions, the commits land and survive a restart.
func TestGroupConsumeKgo(t *testing.T) {
	tests := []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := startServer(t, func(c *Config) { c.DataDir = dir })
			mustCreate(t, s, "events", 4)
			const n = 200
			produceN(t, s, "events", n)
			clients := consumeAll(t, s, "g", "events", 2, n, kgo.Balancers(tt.balancer))
			adm := newAdmin(t, s)
			// The second member may have joined after the first consumed
			// everything: wait for the rebalance that gives it partitions.
			waitFor(t, "a Stable group of 2 members with 2 partitions each", func() bool {
				dg, err := adm.DescribeGroups(ctxT(t), "g")
				if err != nil {
					return false
				}
				g := dg["g"]
				if g.State != "Stable" || len(g.Members) != 2 {
					return false
				}
				for _, m := range g.Members {
					a, ok := m.Assigned.AsConsumer()
					if !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) != 2 {
						return false
					}
				}
				return true
			})
			for _, cl := range clients {
				cl.Close() // leaves the group
			}
			checkCommitted(t, adm, "g", "events", n/4)
			lags, err := s.GroupLag("g")
			if err != nil || len(lags) != 4 {
				t.Fatalf("GroupLag: %v %+v", err, lags)
			}
			for _, l := range lags {
				if l.Lag != 0 || l.LogEnd != n/4 {
					t.Fatalf("lag %+v, want 0 at log end %d", l, n/4)
				}
			}

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := startServer(t, func(c *Config) { c.DataDir = dir })
			checkCommitted(t, newAdmin(t, s2), "g", "events", n/4)
		})
	}
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// checkCommitted asserts every partition of topic has offset want committed.
func checkCommitted(t *testing.T, adm *kadm.Client, groupID, topic string, want int64) {
	t.Helper()
	offs, err := adm.FetchOffsets(ctxT(t), groupID)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if err := offs.Error(); err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	ps := offs[topic]
	if len(ps) != 4 {
		t.Fatalf("committed partitions %v, want 4", offs)
	}
	for p, o := range ps {
		if o.At != want {
			t.Fatalf("partition %d committed %d, want %d", p, o.At, want)
		}
	}
}

// TestOffsetsTopicReadable reads __consumer_offsets as a lag exporter or
// Burrow does: the commit of a group is in partition
// abs(javaHashCode(group)) % partitions, as an offset key v1 with an offset
// value v3, and the group's metadata record follows a rebalance.
func TestOffsetsTopicReadable(t *testing.T) {
	s := startServer(t)
	mustCreate(t, s, "events", 4)
	produceN(t, s, "events", 8)
	for _, cl := range consumeAll(t, s, "burrow-check", "events", 1, 8) {
		cl.Close()
	}
	p := group.PartitionFor("burrow-check", 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{group.Topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offsets, groups := map[int32]int64{}, 0
	ctx := ctxT(t)
	for len(offsets) < 4 || groups == 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch %s: %v (offsets %v, group records %d)", group.Topic, err, offsets, groups)
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case len(r.Key) >= 2 && r.Key[1] == 1:
				var k kmsg.OffsetCommitKey
				var v kmsg.OffsetCommitValue
				if err := k.ReadFrom(r.Key); err != nil || k.Group != "burrow-check" {
					t.Fatalf("offset key %v %+v", err, k)
				}
				if err := v.ReadFrom(r.Value); err != nil || v.Version != 3 {
					t.Fatalf("offset value %v version %d", err, v.Version)
				}
				offsets[k.Partition] = v.Offset
			case len(r.Key) >= 2 && r.Key[1] == 2:
				var v kmsg.GroupMetadataValue
				if err := v.ReadFrom(r.Value); err != nil || v.Version != 1 {
					t.Fatalf("group value %v version %d", err, v.Version)
				}
				groups++
			}
		})
	}
	for part, o := range offsets {
		if o != 2 {
			t.Fatalf("partition %d: committed %d in the topic, want 2", part, o)
		}
	}
}
