package consumer_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// BenchmarkConsume reads the same pre-produced records (4 partitions, 100
// byte values) with this package's Consumer and with a bare kafka-go group
// Reader, in the same run (the Consumer on kafka-go, eager, and on
// franz-go, cooperative-sticky); each iteration is a new group reading all of
// them from offset 0. The metric records/s compares the two.
func BenchmarkConsume(b *testing.B) {
	e := newEnv(b)
	const topic, parts, n, size = "bench", 4, 40_000, 100
	e.createTopic(b, topic, parts)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(strconv.Itoa(i % 1000)), Value: make([]byte, size)}
	}
	for i := 0; i < n; i += 5000 {
		e.produce(b, topic, msgs[i:i+5000]...)
	}
	group := 0
	for _, mode := range []consumer.Rebalance{consumer.Eager, consumer.CooperativeSticky} {
		b.Run("consumer-"+mode.String(), func(b *testing.B) { benchConsumer(b, e, topic, mode, n, size, &group) })
	}
	b.Run("kafka-go-reader", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(n * size)
		for b.Loop() {
			group++
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.b.Addr()}, GroupID: "bench-r" + strconv.Itoa(group), Topic: topic,
				StartOffset: kafka.FirstOffset, CommitInterval: time.Second, MaxWait: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			for range n {
				if _, err := r.ReadMessage(ctx); err != nil {
					b.Fatal(err)
				}
			}
			cancel()
			r.Close()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// benchConsumer is one Consumer sub-benchmark of BenchmarkConsume.
func benchConsumer(b *testing.B, e *testEnv, topic string, mode consumer.Rebalance, n, size int, group *int) {
	b.ReportAllocs()
	b.SetBytes(int64(n * size))
	for b.Loop() {
		*group++
		var got atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		cfg := fastConfig(e.b.Addr(), "bench-c"+strconv.Itoa(*group), topic)
		cfg.CommitInterval = time.Second
		cfg.Rebalance = mode
		cfg.Handler = func(context.Context, kafka.Message) error {
			if got.Add(1) == int64(n) {
				cancel()
			}
			return nil
		}
		c, err := consumer.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Run(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
