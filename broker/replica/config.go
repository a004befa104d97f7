package replica

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/weir-broker/weir/log"
)

// TimestampType is a topic's message.timestamp.type.
type TimestampType int8

// The two timestamp types Kafka defines.
const (
	CreateTime    TimestampType = iota // keep the producer's timestamps
	LogAppendTime                      // the broker stamps its own clock on append
)

// String returns the Kafka config value.
func (t TimestampType) String() string {
	if t == LogAppendTime {
		return "LogAppendTime"
	}
	return "CreateTime"
}

// Config is a partition's configuration: the log's settings plus the topic
// configs the broker enforces itself.
type Config struct {
	Log               log.Config
	MaxMessageBytes   int32         // max.message.bytes: largest batch accepted
	TimestampType     TimestampType // message.timestamp.type
	MinInsyncReplicas int           // min.insync.replicas: ISR size needed for acks=all
}

// Defaults of the broker-enforced configs, as in Kafka.
const (
	DefaultMaxMessageBytes   = 1048588
	DefaultMinInsyncReplicas = 1
)

// Broker-enforced config names.
const (
	keyMaxMessageBytes   = "max.message.bytes"
	keyTimestampType     = "message.timestamp.type"
	keyMinInsyncReplicas = "min.insync.replicas"
)

// ErrInvalidConfig is the sentinel every config error unwraps to; the broker
// maps it to INVALID_CONFIG.
var ErrInvalidConfig = errors.New("replica: invalid config")

// DefaultConfig returns the log defaults with Kafka's broker defaults.
func DefaultConfig() Config {
	return Config{
		Log:               log.DefaultConfig(),
		MaxMessageBytes:   DefaultMaxMessageBytes,
		TimestampType:     CreateTime,
		MinInsyncReplicas: DefaultMinInsyncReplicas,
	}
}

// Validate checks the broker-enforced fields and the log config.
func (c Config) Validate() error {
	if c.MaxMessageBytes <= 0 {
		return fmt.Errorf("%w: %s %d must be positive", ErrInvalidConfig, keyMaxMessageBytes, c.MaxMessageBytes)
	}
	if c.MinInsyncReplicas < 1 {
		return fmt.Errorf("%w: %s %d must be at least 1", ErrInvalidConfig, keyMinInsyncReplicas, c.MinInsyncReplicas)
	}
	if c.TimestampType != CreateTime && c.TimestampType != LogAppendTime {
		return fmt.Errorf("%w: %s %d", ErrInvalidConfig, keyTimestampType, c.TimestampType)
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// ConfigKeys returns every topic config name With accepts: the log's and the
// broker-enforced ones.
func ConfigKeys() []string {
	keys := append(slices.Clone(log.ConfigKeys()), keyMaxMessageBytes, keyTimestampType, keyMinInsyncReplicas)
	slices.Sort(keys)
	return slices.Compact(keys)
}

// With returns c with the Kafka-named settings in m applied. Unknown names
// are an error wrapping ErrInvalidConfig.
func (c Config) With(m map[string]string) (Config, error) {
	logKeys := log.ConfigKeys()
	logPart := map[string]string{}
	for k, v := range m {
		switch k {
		case keyMaxMessageBytes:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return c, fmt.Errorf("%w: %s=%q: %w", ErrInvalidConfig, k, v, err)
			}
			c.MaxMessageBytes = int32(n)
		case keyMinInsyncReplicas:
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("%w: %s=%q: %w", ErrInvalidConfig, k, v, err)
			}
			c.MinInsyncReplicas = n
		case keyTimestampType:
			switch v {
			case "CreateTime":
				c.TimestampType = CreateTime
			case "LogAppendTime":
				c.TimestampType = LogAppendTime
			default:
				return c, fmt.Errorf("%w: %s=%q", ErrInvalidConfig, k, v)
			}
		default:
			if !slices.Contains(logKeys, k) {
				return c, fmt.Errorf("%w: unknown config %q", ErrInvalidConfig, k)
			}
			logPart[k] = v
		}
	}
	if len(logPart) > 0 {
		lc, err := c.Log.With(logPart)
		if err != nil {
			return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		c.Log = lc
	}
	return c, c.Validate()
}
