package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// TestConsumerRebalanceHandsOver runs one member, adds a second while records
// flow, then stops the first: every record is handled exactly once, the
// hooks see the assignments, and a partition is never in two members' hands
// at once (OnAssigned of one member never overlaps the other's ownership).
func TestConsumerRebalanceHandsOver(t *testing.T) {
	e := newEnv(t)
	const topic, parts = "rebal", 4
	e.createTopic(t, topic, parts)

	var mu sync.Mutex
	seen := map[string]int{}
	owner := map[consumer.TopicPartition]string{}
	var violations []string
	assignedCalls := map[string]int{}
	member := func(name string) *consumer.Consumer {
		cfg := fastConfig(e.b.Addr(), "g-rebal", topic)
		cfg.Handler = func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			tp := consumer.TopicPartition{Topic: m.Topic, Partition: m.Partition}
			if owner[tp] != name {
				violations = append(violations, name+" handled "+tp.String()+" owned by "+owner[tp])
			}
			seen[string(m.Value)]++
			return nil
		}
		cfg.OnAssigned = func(_ context.Context, tps []consumer.TopicPartition) {
			mu.Lock()
			defer mu.Unlock()
			assignedCalls[name]++
			for _, tp := range tps {
				if o := owner[tp]; o != "" {
					violations = append(violations, name+" assigned "+tp.String()+" still owned by "+o)
				}
				owner[tp] = name
			}
		}
		cfg.OnRevoked = func(_ context.Context, tps []consumer.TopicPartition) {
			mu.Lock()
			defer mu.Unlock()
			for _, tp := range tps {
				delete(owner, tp)
			}
		}
		c, err := consumer.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	produced := 0
	produce := func(n int) {
		msgs := keyed(n, 16)
		for i := range msgs {
			msgs[i].Value = []byte(time.Now().Format("150405.000000000") + string(msgs[i].Value))
		}
		e.produce(t, topic, msgs...)
		produced += n
	}

	stopA := runConsumer(t, member("a"))
	produce(100)
	waitFor(t, 30*time.Second, "a handles the first records", func() bool { return count() == produced })
	stopB := runConsumer(t, member("b"))
	waitFor(t, 30*time.Second, "b joins", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return assignedCalls["b"] > 0 && len(owner) == parts
	})
	produce(100)
	waitFor(t, 30*time.Second, "both handle the second records", func() bool { return count() == produced })
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	produce(100)
	waitFor(t, 30*time.Second, "b handles the third records", func() bool { return count() == produced })
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
	}
	if len(violations) > 0 {
		t.Errorf("ownership violations: %v", violations)
	}
}
