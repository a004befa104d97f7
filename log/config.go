package log

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Config holds the Kafka topic configs the log honours, under their Kafka
// names (see ConfigKeys). Durations are milliseconds as in Kafka; -1 means
// unlimited where Kafka allows it.
type Config struct {
	SegmentBytes           int64   // segment.bytes: roll when the active segment would exceed it
	SegmentMs              int64   // segment.ms: roll when the active segment's first batch is older
	SegmentJitterMs        int64   // segment.jitter.ms: each segment rolls up to this much before segment.ms
	SegmentIndexBytes      int64   // segment.index.bytes: roll when the offset index would exceed it
	IndexIntervalBytes     int64   // index.interval.bytes: bytes between offset index entries
	RetentionMs            int64   // retention.ms: delete segments whose newest timestamp is older (-1: never)
	RetentionBytes         int64   // retention.bytes: delete oldest segments above this size (-1: never)
	CleanupPolicy          string  // cleanup.policy: "delete", "compact" or "compact,delete"
	DeleteRetentionMs      int64   // delete.retention.ms: how long compaction keeps tombstones
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio
	MinCompactionLagMs     int64   // min.compaction.lag.ms
	MaxCompactionLagMs     int64   // max.compaction.lag.ms
	FlushMessages          int64   // flush.messages: fsync after this many messages (MaxInt64: never)
	FlushMs                int64   // flush.ms: fsync data older than this (MaxInt64: never)
	FileDeleteDelayMs      int64   // file.delete.delay.ms: accepted; deleted files are unlinked at once and closed when the last reader lets go
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentMs:              7 * 24 * time.Hour.Milliseconds(),
		SegmentIndexBytes:      10 << 20,
		IndexIntervalBytes:     4096,
		RetentionMs:            7 * 24 * time.Hour.Milliseconds(),
		RetentionBytes:         -1,
		CleanupPolicy:          "delete",
		DeleteRetentionMs:      24 * time.Hour.Milliseconds(),
		MinCleanableDirtyRatio: 0.5,
		MaxCompactionLagMs:     math.MaxInt64,
		FlushMessages:          math.MaxInt64,
		FlushMs:                math.MaxInt64,
		FileDeleteDelayMs:      60000,
	}
}

// minSegmentBytes is Kafka's lower bound for segment.bytes (14 bytes, the
// empty-batch overhead); we require room for one batch header.
const minSegmentBytes = 61

// Validate reports the first config value out of range.
func (c Config) Validate() error {
	bad := func(key string, v any) error {
		return fmt.Errorf("%w: %s = %v", ErrInvalidConfig, key, v)
	}
	switch {
	case c.SegmentBytes < minSegmentBytes || c.SegmentBytes > math.MaxInt32:
		return bad("segment.bytes", c.SegmentBytes)
	case c.SegmentMs < 1:
		return bad("segment.ms", c.SegmentMs)
	case c.SegmentJitterMs < 0:
		return bad("segment.jitter.ms", c.SegmentJitterMs)
	case c.SegmentIndexBytes < 4*offsetEntrySize || c.SegmentIndexBytes > math.MaxInt32:
		return bad("segment.index.bytes", c.SegmentIndexBytes)
	case c.IndexIntervalBytes < 0 || c.IndexIntervalBytes > math.MaxInt32:
		return bad("index.interval.bytes", c.IndexIntervalBytes)
	case c.RetentionMs < -1:
		return bad("retention.ms", c.RetentionMs)
	case c.RetentionBytes < -1:
		return bad("retention.bytes", c.RetentionBytes)
	case !slices.Contains([]string{"delete", "compact", "compact,delete", "delete,compact"}, c.CleanupPolicy):
		return bad("cleanup.policy", c.CleanupPolicy)
	case c.DeleteRetentionMs < 0:
		return bad("delete.retention.ms", c.DeleteRetentionMs)
	case c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 || math.IsNaN(c.MinCleanableDirtyRatio):
		return bad("min.cleanable.dirty.ratio", c.MinCleanableDirtyRatio)
	case c.MinCompactionLagMs < 0:
		return bad("min.compaction.lag.ms", c.MinCompactionLagMs)
	case c.MaxCompactionLagMs < 1:
		return bad("max.compaction.lag.ms", c.MaxCompactionLagMs)
	case c.FlushMessages < 1:
		return bad("flush.messages", c.FlushMessages)
	case c.FlushMs < 0:
		return bad("flush.ms", c.FlushMs)
	case c.FileDeleteDelayMs < 0:
		return bad("file.delete.delay.ms", c.FileDeleteDelayMs)
	}
	return nil
}

// Compact reports whether cleanup.policy includes compaction.
func (c Config) Compact() bool {
	return c.CleanupPolicy == "compact" || c.CleanupPolicy == "compact,delete" || c.CleanupPolicy == "delete,compact"
}

// Delete reports whether cleanup.policy includes time and size retention.
func (c Config) Delete() bool {
	return c.CleanupPolicy == "delete" || c.CleanupPolicy == "compact,delete" || c.CleanupPolicy == "delete,compact"
}

type configKey struct {
	name string
	set  func(c *Config, v string) error
}

func int64Key(name string, field func(*Config) *int64) configKey {
	return configKey{name, func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s = %q: not an integer", ErrInvalidConfig, name, v)
		}
		*field(c) = n
		return nil
	}}
}

var configKeys = []configKey{
	int64Key("segment.bytes", func(c *Config) *int64 { return &c.SegmentBytes }),
	int64Key("segment.ms", func(c *Config) *int64 { return &c.SegmentMs }),
	int64Key("segment.jitter.ms", func(c *Config) *int64 { return &c.SegmentJitterMs }),
	int64Key("segment.index.bytes", func(c *Config) *int64 { return &c.SegmentIndexBytes }),
	int64Key("index.interval.bytes", func(c *Config) *int64 { return &c.IndexIntervalBytes }),
	int64Key("retention.ms", func(c *Config) *int64 { return &c.RetentionMs }),
	int64Key("retention.bytes", func(c *Config) *int64 { return &c.RetentionBytes }),
	{"cleanup.policy", func(c *Config, v string) error { c.CleanupPolicy = v; return nil }},
	int64Key("delete.retention.ms", func(c *Config) *int64 { return &c.DeleteRetentionMs }),
	{"min.cleanable.dirty.ratio", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%w: min.cleanable.dirty.ratio = %q: not a number", ErrInvalidConfig, v)
		}
		c.MinCleanableDirtyRatio = f
		return nil
	}},
	int64Key("min.compaction.lag.ms", func(c *Config) *int64 { return &c.MinCompactionLagMs }),
	int64Key("max.compaction.lag.ms", func(c *Config) *int64 { return &c.MaxCompactionLagMs }),
	int64Key("flush.messages", func(c *Config) *int64 { return &c.FlushMessages }),
	int64Key("flush.ms", func(c *Config) *int64 { return &c.FlushMs }),
	int64Key("file.delete.delay.ms", func(c *Config) *int64 { return &c.FileDeleteDelayMs }),
}

// ConfigKeys returns the Kafka config names With accepts.
func ConfigKeys() []string {
	keys := make([]string, len(configKeys))
	for i, k := range configKeys {
		keys[i] = k.name
	}
	return keys
}

// With returns c with the values in m applied, by Kafka config name, and
// validated. Names the log does not know are ignored: they are the caller's
// business (the broker owns max.message.bytes and friends).
func (c Config) With(m map[string]string) (Config, error) {
	for _, k := range configKeys {
		v, ok := m[k.name]
		if !ok {
			continue
		}
		if err := k.set(&c, v); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
