package compat

import (
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSarama round-trips messages with IBM sarama configured for a recent
// protocol (Kafka 3.6, idempotent producer, acks=all) and for an old one
// (Kafka 2.1, sarama's producer defaults: acks=1). sarama refuses a broker
// that advertises maximum versions below the ones its Version implies, so
// this also checks the advertised ranges.
func TestSarama(t *testing.T) {
	tests := []struct {
		name       string
		version    sarama.KafkaVersion
		idempotent bool
	}{
		{"V3_6_0_0 idempotent", sarama.V3_6_0_0, true},
		{"V2_1_0_0", sarama.V2_1_0_0, false},
	}
	b := startBroker(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := "sarama-" + tt.version.String()
			cfg := sarama.NewConfig()
			cfg.Version = tt.version
			cfg.ClientID = "weir-compat"
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			cfg.Producer.Return.Successes = true
			cfg.Producer.Timeout = 30 * time.Second
			if tt.idempotent {
				cfg.Producer.Idempotent = true
				cfg.Producer.RequiredAcks = sarama.WaitForAll
				cfg.Net.MaxOpenRequests = 1
			}
			cfg.Consumer.Return.Errors = true
			cfg.Consumer.Offsets.Initial = sarama.OffsetOldest

			topic := topicName("sarama")
			admin, err := sarama.NewClusterAdmin([]string{b.Addr()}, cfg)
			if err != nil {
				t.Fatalf("sarama: admin: %v", err)
			}
			err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
			admin.Close()
			if err != nil {
				t.Fatalf("sarama: create topic %s: %v", topic, err)
			}

			want := messagesFor(client, messages)
			produceSarama(t, b.Addr(), cfg, topic, want)
			checkEndOffsets(t, b.Addr(), topic, messages)
			verify(t, client, consumeSarama(t, b.Addr(), cfg, topic, messages), want)
		})
	}
}

func produceSarama(t *testing.T, addr string, cfg *sarama.Config, topic string, recs []record) {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama: producer: %v", err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		m := &sarama.ProducerMessage{
			Topic:     topic,
			Partition: r.Partition,
			Key:       sarama.StringEncoder(r.Key),
			Value:     sarama.StringEncoder(r.Value),
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: []byte(h.Value)})
		}
		msgs[i] = m
	}
	if err := p.SendMessages(msgs); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) {
			errs := make([]error, len(perrs))
			for i, pe := range perrs {
				errs[i] = pe
			}
			err = errorsJoin(errs, 10)
		}
		t.Fatalf("sarama: produce: %v", err)
	}
	var errs []error
	for i, m := range msgs {
		if m.Partition != recs[i].Partition || m.Offset != recs[i].Offset {
			errs = append(errs, errors.New(recs[i].Key+": acknowledged at "+record{Partition: m.Partition, Offset: m.Offset}.String()))
		}
	}
	if len(errs) > 0 {
		t.Fatalf("sarama: %d messages acknowledged at the wrong place:\n%v", len(errs), errorsJoin(errs, 10))
	}
}

func consumeSarama(t *testing.T, addr string, cfg *sarama.Config, topic string, n int) []record {
	t.Helper()
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama: consumer: %v", err)
	}
	defer c.Close()
	deadline := time.After(opTimeout)
	var out []record
	for p := range int32(partitions) {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama: consume %s/%d: %v", topic, p, err)
		}
		for range countIn(n, p) {
			select {
			case m := <-pc.Messages():
				r := record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
				for _, h := range m.Headers {
					r.Headers = append(r.Headers, header{string(h.Key), string(h.Value)})
				}
				out = append(out, r)
			case err := <-pc.Errors():
				pc.Close()
				t.Fatalf("sarama: consume %s/%d: %v", topic, p, err)
			case <-deadline:
				pc.Close()
				t.Fatalf("sarama: consumed %d of %d records before the deadline", len(out), n)
			}
		}
		if err := pc.Close(); err != nil {
			t.Fatalf("sarama: close partition consumer: %v", err)
		}
	}
	return out
}
