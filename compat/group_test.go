package compat

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"
)

// groupName returns a group id unique to this run.
func groupName(base string) string {
	var b [3]byte
	rand.Read(b[:])
	return "compat-" + base + "-" + hex.EncodeToString(b[:])
}

// TestGroupMembers runs three members of one group per client over a
// 6-partition topic: confluent-kafka-python (librdkafka's range/roundrobin
// assignors), franz-go (cooperative-sticky, KIP-429) and IBM sarama (eager
// range). Each member is a process. The test checks that every partition is
// owned by exactly one member once the group is stable and that members
// process only partitions they own; kills one member with SIGKILL and
// checks that the survivors own every partition within the session timeout
// plus one rebalance; produces more; and checks that every message was
// processed at least once, that committed offsets never moved backwards and
// that the final commits cover everything.
func TestGroupMembers(t *testing.T) {
	for _, kind := range []string{"confluent", "franz", "sarama"} {
		t.Run(kind, func(t *testing.T) {
			b := startBroker(t)
			topic := topicName("group-" + kind)
			createTopic(t, b.Addr(), topic, groupPartitions)
			g := newGroupRun(t, b.Addr(), groupName(kind), topic)
			const phase = 1200
			produceSpread(t, b.Addr(), topic, 0, phase)
			names := []string{kind + "-1", kind + "-2", kind + "-3"}
			for _, n := range names {
				g.start(kind, n, "")
			}
			joined := waitUntil(t, groupWaitLimit, "three stable members", func() error { return g.stableWith(names...) })
			t.Logf("%s: three members stable after %v", kind, joined.Round(10*time.Millisecond))
			waitUntil(t, groupWaitLimit, "first messages processed", func() error { return g.processedAll(phase) })
			g.checkViolations()

			g.kill(names[0])
			took := waitUntil(t, takeoverLimit, "survivors own every partition after kill -9", func() error {
				return g.stableWith(names[1:]...)
			})
			t.Logf("%s: survivors owned every partition %v after kill -9 (session timeout %v)", kind, took.Round(10*time.Millisecond), memberSession)

			produceSpread(t, b.Addr(), topic, phase, 2*phase)
			waitUntil(t, groupWaitLimit, "every message processed", func() error { return g.processedAll(2 * phase) })
			waitUntil(t, groupWaitLimit, "final commits", func() error { return g.committedAll(2 * phase) })
			g.checkViolations()
		})
	}
}
