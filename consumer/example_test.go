package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/consumer"
)

// ExampleConsumer consumes a topic in a group, one record at a time, with
// retries and a dead-letter topic, and stops gracefully.
func ExampleConsumer() {
	b, err := weirtest.New() // a real `weir serve` on 127.0.0.1
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	cl := &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr}
	if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "orders", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		fmt.Println(err)
		return
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "orders", BatchTimeout: time.Millisecond, Transport: tr}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("o1"), Value: []byte("created")}, kafka.Message{Key: []byte("o1"), Value: []byte("paid")}); err != nil {
		fmt.Println(err)
		return
	}
	w.Close()

	runCtx, stop := context.WithCancel(ctx)
	seen := 0
	c, err := consumer.New(consumer.Config{
		Brokers:         []string{b.Addr()},
		GroupID:         "billing",
		Topics:          []string{"orders"},
		DeadLetterTopic: "orders.dlq",
		Logger:          quiet,
		Handler: func(ctx context.Context, m kafka.Message) error {
			fmt.Printf("%s %s\n", m.Key, m.Value)
			if seen++; seen == 2 {
				stop() // Run finishes in-flight work, commits and returns
			}
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Run(runCtx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// o1 created
	// o1 paid
}

// ExampleBackoff_Delay shows the delays before the retries of a record,
// without jitter (r = 0).
func ExampleBackoff_Delay() {
	b := consumer.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for n := 1; n <= 5; n++ {
		fmt.Println(b.Delay(n, 0))
	}
	// Output:
	// 100ms
	// 200ms
	// 400ms
	// 800ms
	// 1s
}

// ExampleRebalance consumes in cooperative-sticky mode (franz-go backend):
// when members join or leave, only the partitions that move are drained,
// committed and handed over; the others keep flowing. OnRevoked receives
// just the partitions that left this member.
func ExampleRebalance() {
	b, err := weirtest.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	cl := &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr}
	if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "payments", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		fmt.Println(err)
		return
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "payments", BatchTimeout: time.Millisecond, Transport: tr}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("p1"), Value: []byte("authorised")}); err != nil {
		fmt.Println(err)
		return
	}
	w.Close()

	runCtx, stop := context.WithCancel(ctx)
	c, err := consumer.New(consumer.Config{
		Brokers:   []string{b.Addr()},
		GroupID:   "ledger",
		Topics:    []string{"payments"},
		Rebalance: consumer.CooperativeSticky,
		Logger:    quiet,
		Handler: func(ctx context.Context, m kafka.Message) error {
			fmt.Printf("%s %s\n", m.Key, m.Value)
			stop()
			return nil
		},
		OnRevoked: func(ctx context.Context, tps []consumer.TopicPartition) {
			fmt.Println("revoked", tps) // at shutdown: drained and committed first
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Run(runCtx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// p1 authorised
	// revoked [payments/0]
}
