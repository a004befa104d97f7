package compat

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// TestGroupOffsetsSurviveRestart commits offsets with franz-go members,
// stops them, produces more, restarts the broker (SIGTERM at the default
// fsync policy; kill -9 with --fsync always) and checks that the committed
// offsets came back unchanged, never went backwards, and that new members
// resume exactly from them: they process every later message and none
// before it.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	tests := []struct {
		name string
		args []string
		stop func(*weirtest.Broker) error
	}{
		{"SIGTERM", nil, (*weirtest.Broker).Stop},
		{"kill -9 with fsync always", []string{"--fsync", "always"}, (*weirtest.Broker).Kill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBroker(t, weirtest.WithArgs(tt.args...))
			requireProcess(t, b)
			topic := topicName("group-restart")
			createTopic(t, b.Addr(), topic, groupPartitions)
			g := newGroupRun(t, b.Addr(), groupName("restart"), topic)
			const n = 1200
			produceSpread(t, b.Addr(), topic, 0, n)
			for _, name := range []string{"before-1", "before-2"} {
				g.start("franz", name, "")
			}
			waitUntil(t, groupWaitLimit, "first messages processed", func() error { return g.processedAll(n) })
			waitUntil(t, groupWaitLimit, "commits", func() error { return g.committedAll(n) })
			g.stopAll()
			produceSpread(t, b.Addr(), topic, n, 2*n)

			if err := tt.stop(b); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if err := b.Restart(); err != nil {
				t.Fatalf("restart after %s: %v", tt.name, err)
			}
			waitUntil(t, 30*time.Second, "committed offsets after the restart", func() error { return g.committedAll(n) })

			for _, name := range []string{"after-1", "after-2"} {
				g.start("franz", name, "")
			}
			waitUntil(t, groupWaitLimit, "later messages processed", func() error { return g.processedAll(2 * n) })
			first := g.firstProcessed("after-1", "after-2")
			for p := range int32(groupPartitions) {
				if o, ok := first[p]; !ok || o != n/groupPartitions {
					t.Errorf("partition %d: members after the restart started at %d (seen %t), want the committed %d", p, o, ok, n/groupPartitions)
				}
			}
			waitUntil(t, groupWaitLimit, "final commits", func() error { return g.committedAll(2 * n) })
			g.checkViolations()
		})
	}
}

// firstProcessed returns, per partition, the lowest offset the named
// members processed.
func (g *groupRun) firstProcessed(names ...string) map[int32]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[int32]int64{}
	for _, n := range names {
		for _, ev := range g.eventsByName[n] {
			if o, ok := out[ev.P]; ev.Ev == "rec" && (!ok || ev.O < o) {
				out[ev.P] = ev.O
			}
		}
	}
	return out
}

// TestGroupStaticMembership (KIP-345): a franz-go member with a
// group.instance.id is killed with SIGKILL and restarted with the same id
// inside the session timeout. The group must not rebalance: the other
// member sees no revocation or assignment, and the restarted member gets
// the partitions it had, in the same generation.
func TestGroupStaticMembership(t *testing.T) {
	for _, kind := range []string{"franz", "sarama"} {
		t.Run(kind, func(t *testing.T) {
			b := startBroker(t)
			topic := topicName("group-static")
			createTopic(t, b.Addr(), topic, groupPartitions)
			g := newGroupRun(t, b.Addr(), groupName("static-"+kind), topic)
			names := []string{"static-1", "static-2"}
			for _, n := range names {
				g.start(kind, n, n)
			}
			waitUntil(t, groupWaitLimit, "two stable static members", func() error { return g.stableWith(names...) })
			before := g.snapshot()

			g.kill(names[0])
			restarted := time.Now()
			g.start(kind, names[0], names[0])
			waitUntil(t, groupWaitLimit, "restarted member owns its partitions", func() error {
				if err := g.stableWith(names...); err != nil {
					return err
				}
				return g.sameOwnership(before)
			})
			after := g.snapshot()
			if took := time.Since(restarted); took > memberSession {
				t.Logf("the restarted member took %v, longer than the session timeout: the check below may see a rebalance", took)
			}
			if got, want := after.events[names[1]], before.events[names[1]]; got != want {
				t.Errorf("%s saw %d assignment/revocation events after the static restart, want none (a rebalance happened)", names[1], got-want)
			}
			if len(after.gens[names[0]]) == 0 || after.gens[names[0]][len(after.gens[names[0]])-1] != before.gen {
				t.Errorf("restarted member's generations %v, want it to rejoin generation %d", after.gens[names[0]], before.gen)
			}
			g.checkViolations()
		})
	}
}

// groupSnapshot is what the static membership test compares.
type groupSnapshot struct {
	owned  map[string][]int32
	events map[string]int // assigned + revoked events per member
	gens   map[string][]int32
	gen    int32 // latest generation any member reported
}

func (g *groupRun) snapshot() groupSnapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := groupSnapshot{owned: map[string][]int32{}, events: map[string]int{}, gens: map[string][]int32{}}
	for name, ps := range g.owned {
		s.owned[name] = slices.Sorted(maps.Keys(ps))
	}
	for name, evs := range g.eventsByName {
		for _, ev := range evs {
			if ev.Ev == "assigned" || ev.Ev == "revoked" {
				s.events[name]++
			}
		}
	}
	for name, gens := range g.gens {
		s.gens[name] = slices.Clone(gens)
		for _, gen := range gens {
			s.gen = max(s.gen, gen)
		}
	}
	return s
}

// sameOwnership reports nil when every member owns what it owned in s.
func (g *groupRun) sameOwnership(s groupSnapshot) error {
	now := g.snapshot()
	for name, ps := range s.owned {
		if !slices.Equal(now.owned[name], ps) {
			return fmt.Errorf("%s owns %v, owned %v before", name, now.owned[name], ps)
		}
	}
	return nil
}
