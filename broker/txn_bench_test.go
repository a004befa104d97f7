package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkTxnProduce measures kgo producing 100-byte records to one
// partition over loopback in units of n records: "idempotent" produces
// them and flushes (the baseline, no transaction); "transactional"
// wraps them in one transaction (AddPartitionsToTxn, produce, EndTxn with
// its marker). records/s is the throughput to compare; each iteration is
// one unit.
func BenchmarkTxnProduce(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		for _, txn := range []bool{false, true} {
			name := "idempotent"
			if txn {
				name = "transactional"
			}
			b.Run(fmt.Sprintf("%s/records=%d", name, n), func(b *testing.B) {
				s := startServer(b, func(c *Config) { c.Groups.Transactions.StateTopicPartitions = 1 })
				if _, err := s.createTopic(topicSpec{name: "bench", partitions: 1, replicationFactor: 1}, false); err != nil {
					b.Fatal(err)
				}
				opts := []kgo.Opt{kgo.SeedBrokers(s.Addr().String()), kgo.DefaultProduceTopic("bench"),
					kgo.ProducerLinger(0), kgo.MaxBufferedRecords(20_000)}
				if txn {
					opts = append(opts, kgo.TransactionalID("bench"), kgo.TransactionTimeout(time.Minute))
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				ctx := context.Background()
				value := make([]byte, 100)
				b.SetBytes(int64(n * len(value)))
				b.ReportAllocs()
				for b.Loop() {
					if txn {
						if err := cl.BeginTransaction(); err != nil {
							b.Fatal(err)
						}
					}
					for range n {
						cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
							if err != nil {
								b.Error(err)
							}
						})
					}
					if err := cl.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					if txn {
						if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
