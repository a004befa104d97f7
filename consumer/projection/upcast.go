package projection

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/segmentio/kafka-go"
)

// Headers read by Upcasters: the event type and the version of its schema
// (no header: version 1).
const (
	HeaderType          = "type"
	HeaderSchemaVersion = "schema.version"
)

// ErrUpcast is wrapped by the errors of Upcasters.Upcast.
var ErrUpcast = errors.New("projection: upcast")

// UpcastFunc turns the value of an event of one schema version into the
// value of the next version.
type UpcastFunc func(value []byte) ([]byte, error)

type upcastKey struct {
	eventType string
	from      int
}

// Upcasters rewrite old events to the current schema before Apply sees
// them, in the live runner, in a rebuild and in Retry alike, so a rebuild
// from offset 0 folds the same values as the live projection. The zero
// value is ready; it is safe for concurrent use.
type Upcasters struct {
	mu sync.RWMutex
	m  map[upcastKey]UpcastFunc
}

// Register adds the step from version from to from+1 of eventType.
func (u *Upcasters) Register(eventType string, from int, fn UpcastFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[upcastKey]UpcastFunc{}
	}
	u.m[upcastKey{eventType, from}] = fn
}

// Upcast applies the registered steps to m, from its schema.version header
// (1 when absent) while a step exists, and sets the header to the version
// reached. A record without a type header, or already current, is returned
// unchanged. A step's error, or an unparsable version, wraps ErrUpcast; the
// runner treats it as an Apply error (the record parks).
func (u *Upcasters) Upcast(m kafka.Message) (kafka.Message, error) {
	var typ string
	version, vIdx := 1, -1
	for i, h := range m.Headers {
		switch h.Key {
		case HeaderType:
			typ = string(h.Value)
		case HeaderSchemaVersion:
			v, err := strconv.Atoi(string(h.Value))
			if err != nil {
				return m, fmt.Errorf("%w: %s/%d@%d: schema.version %q", ErrUpcast, m.Topic, m.Partition, m.Offset, h.Value)
			}
			version, vIdx = v, i
		}
	}
	if typ == "" {
		return m, nil
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	start := version
	for {
		fn, ok := u.m[upcastKey{typ, version}]
		if !ok {
			break
		}
		v, err := fn(m.Value)
		if err != nil {
			return m, fmt.Errorf("%w: %s v%d at %s/%d@%d: %w", ErrUpcast, typ, version, m.Topic, m.Partition, m.Offset, err)
		}
		m.Value = v
		version++
		if version > start+1000 {
			return m, fmt.Errorf("%w: %s: more than 1000 steps from v%d", ErrUpcast, typ, start)
		}
	}
	if version == start {
		return m, nil
	}
	hs := make([]kafka.Header, len(m.Headers), len(m.Headers)+1)
	copy(hs, m.Headers)
	vh := kafka.Header{Key: HeaderSchemaVersion, Value: []byte(strconv.Itoa(version))}
	if vIdx >= 0 {
		hs[vIdx] = vh
	} else {
		hs = append(hs, vh)
	}
	m.Headers = hs
	return m, nil
}

// upcast applies r's upcasters to batch (a copy when any record changes).
func (r *Runner) upcast(batch []kafka.Message) ([]kafka.Message, error) {
	if r.cfg.Upcasters == nil {
		return batch, nil
	}
	out := make([]kafka.Message, len(batch))
	for i, m := range batch {
		u, err := r.cfg.Upcasters.Upcast(m)
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}
