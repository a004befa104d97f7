package compat

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaGo round-trips messages with segmentio/kafka-go: CreateTopics and
// the Writer through its Transport (the protocol package), the Reader
// through its Conn (pinned request versions).
func TestKafkaGo(t *testing.T) {
	b := startBroker(t)
	const client = "kafka-go"
	topic := topicName("kafkago")
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()

	ctx := timeout(t)
	kc := &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr}
	resp, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("kafka-go: create topic %s: %v", topic, err)
	}

	want := messagesFor(client, messages)
	w := &kafka.Writer{
		Addr:         kafka.TCP(b.Addr()),
		Topic:        topic,
		Balancer:     keyBalancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    500,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    tr,
	}
	msgs := make([]kafka.Message, len(want))
	for i, r := range want {
		msgs[i] = kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value)}
		for _, h := range r.Headers {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: h.Key, Value: []byte(h.Value)})
		}
	}
	err = w.WriteMessages(ctx, msgs...)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("kafka-go: write: %v", err)
	}
	checkEndOffsets(t, b.Addr(), topic, messages)

	var got []record
	for p := range int32(partitions) {
		got = append(got, readKafkaGo(t, ctx, b.Addr(), topic, p, countIn(messages, p))...)
	}
	verify(t, client, got, want)
}

// keyBalancer sends message i (key "k%06d") to partition i%3, as message()
// does; kafka-go's Writer ignores Message.Partition.
type keyBalancer struct{}

// Balance implements kafka.Balancer.
func (keyBalancer) Balance(msg kafka.Message, parts ...int) int {
	i, err := strconv.Atoi(strings.TrimPrefix(string(msg.Key), "k"))
	if err != nil {
		return parts[0]
	}
	return parts[i%len(parts)]
}

func readKafkaGo(t *testing.T, ctx context.Context, addr, topic string, p int32, n int) []record {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{addr},
		Topic:     topic,
		Partition: int(p),
		MinBytes:  1,
		MaxBytes:  10 << 20,
		MaxWait:   500 * time.Millisecond,
	})
	defer r.Close()
	out := make([]record, 0, n)
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go: read %s/%d after %d records: %v", topic, p, len(out), err)
		}
		rec := record{Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
		for _, h := range m.Headers {
			rec.Headers = append(rec.Headers, header{h.Key, string(h.Value)})
		}
		out = append(out, rec)
	}
	return out
}
