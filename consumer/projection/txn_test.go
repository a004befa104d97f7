package projection_test

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weir-broker/weir/consumer/projection"
)

// TestRunnerReadCommitted: a franz-go transactional producer commits some
// transactions and aborts others (the last one commits on every
// partition); a runner reading read_committed folds exactly the committed
// records (applied_v1 is unique per offset, so a double apply would park).
func TestRunnerReadCommitted(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic, parts = "ledger", 3
		e.createTopic(t, topic, parts)
		p := newBalances(topic, 1)
		p.create(t, d.db)

		cl, err := kgo.NewClient(kgo.SeedBrokers(e.b.Addr()), kgo.TransactionalID("tx-"+t.Name()),
			kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var committed []kafka.Message
		const txns = 7
		for i := range txns {
			commit := i%2 == 0 || i == txns-1
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			var recs []kafka.Message
			for j := range 5 {
				for part := range parts {
					key := "acct" + strconv.Itoa(part*10+j%3)
					val := strconv.Itoa(i*7 + j - 9)
					if err := cl.ProduceSync(ctx, &kgo.Record{Partition: int32(part), Key: []byte(key), Value: []byte(val)}).FirstErr(); err != nil {
						t.Fatalf("produce in transaction %d: %v", i, err)
					}
					recs = append(recs, kafka.Message{Topic: topic, Partition: part, Key: []byte(key), Value: []byte(val)})
				}
			}
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatalf("end transaction %d: %v", i, err)
			}
			if commit {
				committed = append(committed, recs...)
			}
		}

		_, _ = start(t, e, d, p, func(c *projection.Config) { c.Group.IsolationLevel = kafka.ReadCommitted })
		want := fold(committed)
		// Every partition ends with committed records, after the aborted
		// ones: once the fold matches, no aborted record can still come.
		waitFor(t, 30*time.Second, "the committed fold", func() bool {
			return maps.Equal(readModel(t, d.db, p.table()), want)
		})
	})
}
