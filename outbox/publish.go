package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// PublishTx produces recs and records the source position (the last seq) in
// one transaction, and Position reads the committed position back, so a new
// leader resumes after it and a deposed one is fenced by its producer epoch.
// Weir's broker does not serve transactions yet; no implementation ships.
type TxPublisher interface {
	Publisher
	PublishTx(ctx context.Context, recs []Record, position int64) error
	Position(ctx context.Context) (int64, error)
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

// KafkaPublisher publishes through a segmentio/kafka-go Writer with
// acks=all and the Java client's murmur2 partitioner (so keys land on the
// partitions Debezium would pick). It is safe for concurrent use.
type KafkaPublisher struct {
	w *kafka.Writer
}

// NewKafkaPublisher returns a publisher to brokers (host:port list).
func NewKafkaPublisher(brokers []string, timeout time.Duration) *KafkaPublisher {
	return &KafkaPublisher{w: &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		MaxAttempts:            1, // the relay retries with its own backoff and breaker
		BatchSize:              10000,
		BatchBytes:             64 << 20, // the broker's max.message.bytes decides
		BatchTimeout:           time.Millisecond,
		WriteTimeout:           timeout,
		ReadTimeout:            timeout,
		AllowAutoTopicCreation: true,
		Transport:              &kafka.Transport{Dial: (&net.Dialer{Timeout: timeout}).DialContext},
	}}
}

// Publish implements Publisher.
func (p *KafkaPublisher) Publish(ctx context.Context, recs []Record) error {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		hs := make([]kafka.Header, len(r.Headers))
		for j, h := range r.Headers {
			hs[j] = kafka.Header{Key: h.Key, Value: h.Value}
		}
		msgs[i] = kafka.Message{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: hs, Time: time.UnixMilli(r.Time)}
	}
	err := p.w.WriteMessages(ctx, msgs...)
	if err == nil {
		return nil
	}
	if we, ok := errors.AsType[kafka.WriteErrors](err); ok {
		for i, e := range we {
			if e != nil {
				if permanent(e) {
					return &RejectedError{ID: recs[i].ID, Err: e}
				}
				return fmt.Errorf("outbox: publish %s: %w", recs[i].ID, e)
			}
		}
	}
	if permanent(err) && len(recs) > 0 {
		return &RejectedError{ID: recs[0].ID, Err: err}
	}
	return fmt.Errorf("outbox: publish: %w", err)
}

// permanent reports whether err is the broker refusing the record itself.
func permanent(err error) bool {
	if ke, ok := errors.AsType[kafka.Error](err); ok {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.InvalidTopic, kafka.InvalidMessage,
			kafka.InvalidMessageSize, kafka.RecordListTooLarge, kafka.TopicAuthorizationFailed,
			kafka.InvalidRecord, kafka.InvalidRequiredAcks:
			return true
		}
		return false
	}
	_, ok := errors.AsType[kafka.MessageTooLargeError](err)
	return ok
}

// Close flushes and closes the writer.
func (p *KafkaPublisher) Close() error { return p.w.Close() }
