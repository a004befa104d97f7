package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// Errors returned by New and Run.
var (
	// ErrInvalidConfig is wrapped by New for a Config that cannot work.
	ErrInvalidConfig = errors.New("consumer: invalid config")
	// ErrClosed is returned by Run when it is called a second time.
	ErrClosed = errors.New("consumer: already run")
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	// Topic is the topic name.
	Topic string
	// Partition is the partition number.
	Partition int
}

// String formats tp as topic/partition.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// Handler handles one record. A nil error marks it done; an error makes the
// consumer retry it.
type Handler func(ctx context.Context, m kafka.Message) error

// BatchHandler handles records of one partition, in offset order. A nil
// error marks them all done; an error makes the consumer retry them all.
type BatchHandler func(ctx context.Context, tp TopicPartition, batch []kafka.Message) error

// SeekFunc returns the offset to start each assigned partition at. A
// partition missing from the map starts at the group's committed offset
// (or Config.StartOffset when the group has none).
type SeekFunc func(ctx context.Context, assigned []TopicPartition) (map[TopicPartition]int64, error)

// RebalanceFunc is a rebalance hook: it receives the partitions assigned to
// this member (OnAssigned) or taken from it (OnRevoked).
type RebalanceFunc func(ctx context.Context, partitions []TopicPartition)

// Config configures a Consumer. Brokers, GroupID, Topics and exactly one of
// Handler and BatchHandler are required; the rest have defaults.
type Config struct {
	// Brokers are the bootstrap addresses (host:port).
	Brokers []string
	// GroupID is the consumer group.
	GroupID string
	// Topics are the topics to consume.
	Topics []string

	// Handler is called once per record.
	Handler Handler
	// BatchHandler is called with up to BatchSize records of one partition.
	BatchHandler BatchHandler
	// BatchSize bounds a batch (default 100).
	BatchSize int
	// BatchWait is how long a batch waits for more records once it has one
	// (default 5 ms).
	BatchWait time.Duration

	// Concurrency is the number of per-key workers per partition for Handler
	// (default 4). Records of one key always go to the same worker.
	Concurrency int
	// MaxAttempts is the number of calls before a record is dead-lettered
	// (default 5). Zero or less means the default; use a huge value to retry
	// practically forever.
	MaxAttempts int
	// Backoff is the delay between attempts.
	Backoff Backoff
	// DeadLetterTopic receives the records that failed MaxAttempts times.
	// Empty: Run returns a *HandlerError instead.
	DeadLetterTopic string

	// Rebalance chooses eager (default, kafka-go) or cooperative-sticky
	// (franz-go) rebalancing; see the package doc.
	Rebalance Rebalance

	// Seek, if set, chooses the start offset of each assigned partition.
	Seek SeekFunc
	// OnAssigned is called when a generation starts, before any fetch.
	OnAssigned RebalanceFunc
	// OnRevoked is called when a generation ends, after in-flight work
	// finished and the offsets were committed.
	OnRevoked RebalanceFunc

	// StartOffset is where a partition without a committed offset starts:
	// kafka.FirstOffset (default) or kafka.LastOffset.
	StartOffset int64
	// IsolationLevel is kafka.ReadUncommitted (default) or
	// kafka.ReadCommitted, which runs on the franz-go backend (see the
	// package doc).
	IsolationLevel kafka.IsolationLevel
	// CommitInterval is how often handled offsets are committed (default
	// 1 s). Offsets are always committed when a generation ends.
	CommitInterval time.Duration
	// SessionTimeout, RebalanceTimeout and HeartbeatInterval are the group
	// timings (defaults 10 s, 30 s, 1 s).
	SessionTimeout, RebalanceTimeout, HeartbeatInterval time.Duration
	// ShutdownTimeout bounds the wait for in-flight calls when a generation
	// ends (default 30 s); then their context is cancelled.
	ShutdownTimeout time.Duration
	// MaxWait is the longest a fetch waits for new records (default 250 ms).
	MaxWait time.Duration
	// Logger receives rare events (generation changes, dead letters);
	// default slog.Default().
	Logger *slog.Logger
	// Dialer is used for every connection; default a 10 s timeout dialer.
	Dialer *kafka.Dialer
}

// Backoff is exponential backoff with jitter: the delay before attempt n+1
// is min(Max, Initial*Multiplier^(n-1)), reduced by a random fraction of up
// to Jitter of itself.
type Backoff struct {
	// Initial is the first delay (default 100 ms).
	Initial time.Duration
	// Max caps the delay (default 10 s).
	Max time.Duration
	// Multiplier grows the delay (default 2).
	Multiplier float64
	// Jitter in [0,1] is the largest fraction removed at random (default 0.2).
	Jitter float64
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 5 * time.Millisecond
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Dialer == nil {
		c.Dialer = &kafka.Dialer{ClientID: "weir-consumer", Timeout: 10 * time.Second}
	}
	return c
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		b.Jitter = 0.2
	}
	return b
}

// Validate reports the first problem that makes c unusable.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return fmt.Errorf("%w: no brokers", ErrInvalidConfig)
	case c.GroupID == "":
		return fmt.Errorf("%w: no group id", ErrInvalidConfig)
	case len(c.Topics) == 0:
		return fmt.Errorf("%w: no topics", ErrInvalidConfig)
	case (c.Handler == nil) == (c.BatchHandler == nil):
		return fmt.Errorf("%w: exactly one of Handler and BatchHandler must be set", ErrInvalidConfig)
	case c.StartOffset != 0 && c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset:
		return fmt.Errorf("%w: StartOffset must be kafka.FirstOffset or kafka.LastOffset", ErrInvalidConfig)
	case c.Rebalance != Eager && c.Rebalance != CooperativeSticky:
		return fmt.Errorf("%w: unknown Rebalance %d", ErrInvalidConfig, int(c.Rebalance))
	case c.IsolationLevel != kafka.ReadUncommitted && c.IsolationLevel != kafka.ReadCommitted:
		return fmt.Errorf("%w: unknown IsolationLevel %d", ErrInvalidConfig, int(c.IsolationLevel))
	case c.DeadLetterTopic != "" && slices.Contains(c.Topics, c.DeadLetterTopic):
		return fmt.Errorf("%w: the dead-letter topic %s is also consumed", ErrInvalidConfig, c.DeadLetterTopic)
	}
	return nil
}

// Delay returns the wait before the attempt after attempt number n (1 for
// the first failure); r in [0,1) is the random draw that picks the jitter.
// It is pure, so tests can check its bounds.
func (b Backoff) Delay(n int, r float64) time.Duration {
	b = b.withDefaults()
	d := float64(b.Initial)
	for i := 1; i < n && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	return time.Duration(d * (1 - b.Jitter*r))
}
