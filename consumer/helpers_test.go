package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// testEnv is a broker plus a client whose connections the test closes.
type testEnv struct {
	b         *weirtest.Broker
	transport *kafka.Transport
	client    *kafka.Client
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	b := weirtest.Start(t)
	tr := &kafka.Transport{DialTimeout: 5 * time.Second}
	e := &testEnv{b: b, transport: tr, client: &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr, Timeout: 10 * time.Second}}
	t.Cleanup(tr.CloseIdleConnections)
	return e
}

func (e *testEnv) createTopic(t testing.TB, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := e.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produce writes msgs to topic with acks=all, partitioned by key hash.
func (e *testEnv) produce(t testing.TB, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.b.Addr()), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000, Transport: e.transport}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d records to %s: %v", len(msgs), topic, err)
	}
}

// keyed returns n records over keys k0..k(keys-1) whose values are key:seq.
func keyed(n, keys int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		k := "k" + strconv.Itoa(i%keys)
		msgs[i] = kafka.Message{Key: []byte(k), Value: fmt.Appendf(nil, "%s:%d", k, i/keys)}
	}
	return msgs
}

// committed returns the group's committed offset per partition of topic.
func (e *testEnv) committed(t testing.TB, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatalf("offset fetch %s: %v", group, err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// readAll reads every record of topic's partitions 0..n-1 up to the end.
func (e *testEnv) readAll(t testing.TB, topic string, partitions int) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := range partitions {
		conn, err := (&kafka.Dialer{Timeout: 5 * time.Second}).DialLeader(context.Background(), "tcp", e.b.Addr(), topic, p)
		if err != nil {
			t.Fatalf("dial %s/%d: %v", topic, p, err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			conn.Close()
			t.Fatalf("last offset %s/%d: %v", topic, p, err)
		}
		conn.Close()
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.b.Addr()}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}
