// Package outbox implements the transactional outbox pattern for Weir: a
// service writes its business rows and an outbox row in one database
// transaction (Write), and a Relay publishes the outbox rows to Weir topics
// and deletes them once the broker has acknowledged them (acks=all).
//
// The conventions are those of Debezium's Outbox Event Router, so an
// existing outbox table and connector configuration map one to one: columns
// id, aggregatetype, aggregateid, type, payload (plus optional headers and
// timestamp); topic outbox.event.<aggregatetype>; record key aggregateid;
// header id = the row id; value = the payload bytes as stored.
//
// The relay core works over a Source (the database side: fetch visible
// rows, delete published ones, count attempts and park poison rows) and a
// Publisher (the broker side). Drivers live in outbox/postgres (xid8
// visibility horizon, LISTEN/NOTIFY wake-up, advisory-lock fencing) and
// outbox/sqlite (single writer, the embedded default).
//
// Delivery is exactly-once when the Publisher is a TxPublisher
// (FranzTxPublisher): each round is produced in one Kafka transaction
// together with a position record (the round's seqs, in a compacted topic),
// and a restarted or new leader reads that position back and deletes those
// rows instead of publishing them again; the producer epoch bump fences a
// deposed relay. FranzTxPublisher uses franz-go's kgo, because
// segmentio/kafka-go, the client of the at-least-once KafkaPublisher, has no
// transactional producer. With KafkaPublisher (a broker without
// transactions, or Config.AtLeastOnce) delivery is at-least-once: a relay
// that crashes between the broker's acknowledgment and the delete publishes
// those rows again, so consumers deduplicate on the id header.
package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by this package.
var (
	// ErrInvalidMessage reports a message Write cannot store.
	ErrInvalidMessage = errors.New("outbox: invalid message")
	// ErrInvalidOption reports an unknown or malformed configuration option.
	ErrInvalidOption = errors.New("outbox: invalid option")
	// ErrFenced reports that this relay lost its leadership (its lock
	// session ended) and stopped publishing.
	ErrFenced = errors.New("outbox: relay fenced")
)

// DefaultTable is the outbox table name used when none is configured.
const DefaultTable = "outbox"

// Message is one event to publish, written by the service in its own
// transaction.
type Message struct {
	// ID is the event id (a UUID); Write generates a random one when empty.
	ID string
	// AggregateType routes the event: topic outbox.event.<AggregateType>.
	AggregateType string
	// AggregateID is the record key; events of one aggregate keep their order.
	AggregateID string
	// Type is the event type.
	Type string
	// Payload is the record value, published as stored (nil: a tombstone).
	Payload []byte
	// Headers are extra record headers.
	Headers map[string]string
}

// Tx is what Write needs of a transaction: *sql.Tx satisfies it. For pgx
// transactions use postgres.Write.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Write inserts msgs into the default outbox table within tx, so they are
// published if and only if tx commits.
func Write(ctx context.Context, tx Tx, msgs ...Message) error {
	return WriteTable(ctx, tx, DefaultTable, msgs...)
}

// WriteTable is Write into the named table.
func WriteTable(ctx context.Context, tx Tx, table string, msgs ...Message) error {
	q, err := InsertSQL(table)
	if err != nil {
		return err
	}
	for i := range msgs {
		args, err := InsertArgs(&msgs[i])
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("outbox: insert %s: %w", msgs[i].ID, err)
		}
	}
	return nil
}

// InsertSQL returns the INSERT statement Write uses for table, with $1..$6
// placeholders (id, aggregatetype, aggregateid, type, payload, headers). It
// is exported for the drivers' own Write functions.
func InsertSQL(table string) (string, error) {
	t, err := QuoteIdent(table)
	if err != nil {
		return "", err
	}
	return "INSERT INTO " + t + ` (id, aggregatetype, aggregateid, "type", payload, headers) VALUES ($1, $2, $3, $4, $5, $6)`, nil
}

// InsertArgs validates m (filling in a missing ID) and returns the
// arguments of InsertSQL.
func InsertArgs(m *Message) ([]any, error) {
	if m.ID == "" {
		m.ID = NewID()
	}
	if m.AggregateType == "" || m.AggregateID == "" {
		return nil, fmt.Errorf("%w: %s: aggregatetype and aggregateid are required", ErrInvalidMessage, m.ID)
	}
	var headers any
	if len(m.Headers) > 0 {
		b, err := json.Marshal(m.Headers)
		if err != nil {
			return nil, fmt.Errorf("%w: headers: %v", ErrInvalidMessage, err)
		}
		headers = string(b)
	}
	var payload any
	if m.Payload != nil {
		payload = string(m.Payload)
	}
	return []any{m.ID, m.AggregateType, m.AggregateID, m.Type, payload, headers}, nil
}

// NewID returns a random (version 4) UUID in its canonical text form.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// QuoteIdent quotes a (possibly schema-qualified) SQL identifier. Names with
// a quote or a NUL byte are refused rather than escaped.
func QuoteIdent(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "\"\x00") {
		return "", fmt.Errorf("%w: identifier %q", ErrInvalidOption, name)
	}
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: identifier %q", ErrInvalidOption, name)
		}
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, "."), nil
}

// Row is an outbox row as the relay reads it.
type Row struct {
	// Seq is the insert sequence number (PostgreSQL bigserial, SQLite rowid).
	Seq int64
	// ID is the event id.
	ID string
	// AggregateType, AggregateID and Type are the routing columns.
	AggregateType, AggregateID, Type string
	// Payload is the value as stored.
	Payload []byte
	// Headers are the extra headers stored with the row.
	Headers map[string]string
	// Timestamp is when the row was written.
	Timestamp time.Time
	// Attempts counts the broker rejections of this row so far.
	Attempts int
}

// ParkedRow is a row set aside after too many rejected attempts.
type ParkedRow struct {
	Row
	// ParkedAt is when the row was parked.
	ParkedAt time.Time
	// LastError is the last rejection.
	LastError string
}

// Source is the database side of the relay. Implementations are safe for
// concurrent use.
type Source interface {
	// Fetch returns up to limit rows that are safe to publish, in seq
	// order: committed, below the visibility horizon, not parked, and of a
	// key with no parked row.
	Fetch(ctx context.Context, limit int) ([]Row, error)
	// Delete removes published rows.
	Delete(ctx context.Context, seqs []int64) error
	// Reject records a broker rejection of a row; with park set the row is
	// parked (its key's later rows wait behind it).
	Reject(ctx context.Context, seq int64, reason string, park bool) error
	// Wake returns a channel that receives when new rows may be visible, or
	// nil when the source only supports polling.
	Wake() <-chan struct{}
	// Stats reports pending (unparked) rows, the oldest pending row's write
	// time (zero when none) and the number of parked rows.
	Stats(ctx context.Context) (pending int64, oldest time.Time, parked int64, err error)
}

// Retainer is implemented by sources that can keep published rows for a
// while (Config.Retain) instead of deleting them at once.
type Retainer interface {
	// MarkPublished marks rows published: Fetch and Stats skip them.
	MarkPublished(ctx context.Context, seqs []int64) error
	// Purge deletes up to limit rows published before before, returning
	// how many it deleted.
	Purge(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Fence is the relay's leadership: only the holder publishes.
type Fence interface {
	// Acquire blocks until this relay holds the leadership or ctx ends.
	Acquire(ctx context.Context) error
	// Check returns ErrFenced (wrapped) when the leadership is lost.
	Check(ctx context.Context) error
	// Release gives the leadership up.
	Release() error
}

// Admin manages parked rows.
type Admin interface {
	// Parked lists parked rows, oldest first.
	Parked(ctx context.Context, limit int) ([]ParkedRow, error)
	// Retry unparks rows (attempts reset), so they and their key's later
	// rows flow again.
	Retry(ctx context.Context, ids ...string) (int64, error)
	// Discard deletes parked rows without publishing them.
	Discard(ctx context.Context, ids ...string) (int64, error)
}

// DecodeHeaders decodes a headers column (a JSON object); non-string values
// keep their JSON text, and anything but an object decodes to nil.
func DecodeHeaders(b []byte) map[string]string {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out
}
