package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Publisher is the broker side of the relay: Publish returns once the
// broker acknowledged every record (acks=all) or with an error. Records of
// one call share a key and are produced in order.
type Publisher interface {
	Publish(ctx context.Context, recs []Record) error
	Close() error
}

// TxPublisher is the exactly-once path, for brokers with Kafka transactions:
// PublishTx produces a whole round and a position record (the round's seqs,
// in a compacted topic) in one transaction; Published reads the last
// committed position back, so a new leader deletes those rows instead of
// publishing them again, and its producer epoch fences a deposed relay
// (PublishTx then fails with ErrFenced). The relay calls Published when it
// becomes leader and after any PublishTx error. FranzTxPublisher
// implements it.
type TxPublisher interface {
	Publisher
	PublishTx(ctx context.Context, recs []Record, seqs []int64) error
	Published(ctx context.Context) ([]int64, error)
}

// RejectedError reports that the broker refused a record itself (too
// large, invalid topic...): retrying the same bytes cannot succeed, so the
// relay counts it as an attempt toward parking.
type RejectedError struct {
	// ID is the rejected row's id.
	ID string
	// Err is the broker's error.
	Err error
}

// Error implements error.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("outbox: row %s rejected: %v", e.ID, e.Err)
}

// Unwrap returns the broker's error.
func (e *RejectedError) Unwrap() error { return e.Err }

// KafkaPublisher publishes with segmentio/kafka-go's Client: each Publish
// is its own Produce request (acks=all) to the partition the Java client's
// murmur2 partitioner picks for the key, so Debezium and Weir place keys
// alike. (kafka-go's Writer would merge concurrent calls to one partition
// into one batch, and a poison record would then fail its neighbours.) It
// is safe for concurrent use.
type KafkaPublisher struct {
	client    *kafka.Client
	transport *kafka.Transport

	mu    sync.Mutex // guards parts
	parts map[string]topicParts
}

type topicParts struct {
	ids []int
	at  time.Time
}

// partsTTL is how long a topic's partition count is cached.
const partsTTL = 30 * time.Second

// NewKafkaPublisher returns a publisher to brokers (host:port list); timeout
// bounds connecting and each request.
func NewKafkaPublisher(brokers []string, timeout time.Duration) *KafkaPublisher {
	t := &kafka.Transport{ClientID: "weir-outbox", DialTimeout: timeout, MetadataTTL: 5 * time.Second}
	return &KafkaPublisher{
		client:    &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: timeout, Transport: t},
		transport: t,
		parts:     map[string]topicParts{},
	}
}

// partitions returns topic's partition ids, creating the topic with the
// broker's defaults when it does not exist.
func (p *KafkaPublisher) partitions(ctx context.Context, topic string) ([]int, error) {
	p.mu.Lock()
	tp, ok := p.parts[topic]
	p.mu.Unlock()
	if ok && time.Since(tp.at) < partsTTL {
		return tp.ids, nil
	}
	for attempt := 0; ; attempt++ {
		md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, fmt.Errorf("outbox: metadata %s: %w", topic, err)
		}
		var ids []int
		var terr error
		for _, t := range md.Topics {
			if t.Name == topic {
				terr = t.Error
				for _, part := range t.Partitions {
					ids = append(ids, part.ID)
				}
			}
		}
		if len(ids) > 0 && terr == nil {
			slices.Sort(ids)
			p.mu.Lock()
			p.parts[topic] = topicParts{ids: ids, at: time.Now()}
			p.mu.Unlock()
			return ids, nil
		}
		if terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("outbox: metadata %s: %w", topic, terr)
		}
		if attempt > 0 {
			return nil, fmt.Errorf("outbox: topic %s has no partitions after creation", topic)
		}
		res, err := p.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: -1, ReplicationFactor: -1,
		}}})
		if err != nil {
			return nil, fmt.Errorf("outbox: create topic %s: %w", topic, err)
		}
		if e := res.Errors[topic]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			if permanent(e) {
				return nil, e
			}
			return nil, fmt.Errorf("outbox: create topic %s: %w", topic, e)
		}
	}
}

// forget drops a topic's cached partitions (after a leadership or topic
// error).
func (p *KafkaPublisher) forget(topic string) {
	p.mu.Lock()
	delete(p.parts, topic)
	p.mu.Unlock()
}

// Publish implements Publisher: recs must share topic and key.
func (p *KafkaPublisher) Publish(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	topic := recs[0].Topic
	ids, err := p.partitions(ctx, topic)
	if err != nil {
		if permanent(err) {
			return &RejectedError{ID: recs[0].ID, Err: err}
		}
		return err
	}
	part := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: recs[0].Key}, ids...)
	krecs := make([]kafka.Record, len(recs))
	for i, r := range recs {
		hs := make([]kafka.Header, len(r.Headers))
		for j, h := range r.Headers {
			hs[j] = kafka.Header{Key: h.Key, Value: h.Value}
		}
		krecs[i] = kafka.Record{Time: time.UnixMilli(r.Time), Key: kafka.NewBytes(r.Key), Headers: hs}
		if r.Value != nil {
			krecs[i].Value = kafka.NewBytes(r.Value)
		}
	}
	res, err := p.client.Produce(ctx, &kafka.ProduceRequest{
		Topic: topic, Partition: part, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(krecs...),
	})
	if err == nil {
		err = res.Error
		for i, e := range res.RecordErrors {
			if e != nil && i < len(recs) {
				return &RejectedError{ID: recs[i].ID, Err: e}
			}
		}
	}
	if err == nil {
		return nil
	}
	if permanent(err) {
		return &RejectedError{ID: recs[0].ID, Err: err}
	}
	p.forget(topic)
	return fmt.Errorf("outbox: publish to %s/%d: %w", topic, part, err)
}

// permanent reports whether err is the broker refusing the record itself.
func permanent(err error) bool {
	for _, code := range []kafka.Error{kafka.MessageSizeTooLarge, kafka.InvalidTopic, kafka.InvalidMessage,
		kafka.InvalidMessageSize, kafka.RecordListTooLarge, kafka.TopicAuthorizationFailed,
		kafka.InvalidRecord, kafka.InvalidRequiredAcks, kafka.PolicyViolation} {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// Close releases the client's connections.
func (p *KafkaPublisher) Close() error {
	p.transport.CloseIdleConnections()
	return nil
}
