package broker_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-broker/weir/broker"
)

// Example runs a broker inside the program, as a test of your own code
// would: on a free loopback port with a temporary data directory. A real
// Kafka client (franz-go) produces a record, creating the topic on first
// use, and consumes it back.
func Example() {
	dir, err := os.MkdirTemp("", "weir-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	srv, err := broker.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Close()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(srv.Addr().String()),
		kgo.DefaultProduceTopic("greetings"),
		kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("greetings"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		panic(err)
	}
	defer cl.Close()

	if err := cl.ProduceSync(ctx, kgo.StringRecord("hello, weir")).FirstErr(); err != nil {
		panic(err)
	}
	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		panic(err)
	}
	fetches.EachRecord(func(r *kgo.Record) {
		fmt.Printf("%s[%d]@%d: %s\n", r.Topic, r.Partition, r.Offset, r.Value)
	})
	// Output: greetings[0]@0: hello, weir
}
