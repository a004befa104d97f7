package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weir-broker/weir/consumer"
)

// produceTxns writes txns transactions with a franz-go transactional
// producer, each with one record per partition per round; even transactions
// commit, odd ones abort, and the last one commits (so every partition ends
// with committed records). It returns the committed values and the aborted
// ones.
func produceTxns(t testing.TB, addr, topic string, partitions, txns, rounds int) (committed, aborted []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("tx-"+topic),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range txns {
		commit := i%2 == 0 || i == txns-1
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin transaction %d: %v", i, err)
		}
		var vals []string
		for r := range rounds {
			for p := range partitions {
				v := fmt.Sprintf("t%d.p%d.r%d", i, p, r)
				vals = append(vals, v)
				rec := &kgo.Record{Partition: int32(p), Key: []byte(v), Value: []byte(v)}
				if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
					t.Fatalf("produce in transaction %d: %v", i, err)
				}
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d (commit %v): %v", i, commit, err)
		}
		if commit {
			committed = append(committed, vals...)
		} else {
			aborted = append(aborted, vals...)
		}
	}
	return committed, aborted
}

// TestConsumerReadCommitted: a transactional producer commits some
// transactions and aborts others; a read_committed Consumer (both
// rebalance modes) handles exactly the committed records, once each.
func TestConsumerReadCommitted(t *testing.T) {
	e := newEnv(t)
	const topic, parts = "txn", 3
	e.createTopic(t, topic, parts)
	committed, aborted := produceTxns(t, e.b.Addr(), topic, parts, 7, 4)
	for _, mode := range []consumer.Rebalance{consumer.Eager, consumer.CooperativeSticky} {
		t.Run(mode.String(), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			total := 0
			cfg := fastConfig(e.b.Addr(), "g-txn-"+mode.String(), topic)
			cfg.Rebalance = mode
			cfg.IsolationLevel = kafka.ReadCommitted
			cfg.Handler = func(_ context.Context, m kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				seen[string(m.Value)]++
				total++
				return nil
			}
			c, err := consumer.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			stop := runConsumer(t, c)
			// The last transaction commits on every partition, after all
			// the aborted ones: once its records are in, the aborted ones
			// have been read past.
			waitFor(t, 30*time.Second, "the committed records", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) >= len(committed)
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range committed {
				if seen[v] != 1 {
					t.Errorf("committed %s handled %d times", v, seen[v])
				}
			}
			for _, v := range aborted {
				if seen[v] != 0 {
					t.Errorf("aborted %s handled %d times", v, seen[v])
				}
			}
			if total != len(committed) {
				t.Errorf("handled %d records, want the %d committed", total, len(committed))
			}
		})
	}
}
