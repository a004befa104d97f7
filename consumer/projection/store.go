package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// Dialect selects the SQL spoken to the database.
type Dialect int

// The supported databases: PostgreSQL through github.com/jackc/pgx/v5/stdlib
// and SQLite through modernc.org/sqlite (the caller imports the driver).
const (
	Postgres Dialect = iota + 1
	SQLite
)

// sql rewrites the ? placeholders of q for d.
func (d Dialect) sql(q string) string {
	if d != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (d Dialect) blob() string {
	if d == Postgres {
		return "BYTEA"
	}
	return "BLOB"
}

// CreateTables creates the runner's tables (see the package doc) if they do
// not exist. Call it once before the first Runner.
func CreateTables(ctx context.Context, db *sql.DB, d Dialect) error {
	if d != Postgres && d != SQLite {
		return fmt.Errorf("%w: %d", ErrBadDialect, d)
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS weir_projection_offsets (
			projection TEXT NOT NULL, version INTEGER NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
			next_offset BIGINT NOT NULL, updated_at BIGINT NOT NULL,
			PRIMARY KEY (projection, version, topic, part))`,
		`CREATE TABLE IF NOT EXISTS weir_projection_parked (
			projection TEXT NOT NULL, version INTEGER NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
			record_offset BIGINT NOT NULL, record_key ` + d.blob() + ` NOT NULL, record_value ` + d.blob() + `,
			record_headers TEXT NOT NULL, record_time BIGINT NOT NULL, error TEXT NOT NULL, parked_at BIGINT NOT NULL,
			PRIMARY KEY (projection, version, topic, part, record_offset))`,
		`CREATE TABLE IF NOT EXISTS weir_projection_live (
			projection TEXT NOT NULL, version INTEGER NOT NULL, member TEXT NOT NULL,
			beat_at BIGINT NOT NULL, busy_since BIGINT NOT NULL,
			PRIMARY KEY (projection, version, member))`,
		`CREATE TABLE IF NOT EXISTS weir_projection_serving (
			projection TEXT PRIMARY KEY, version INTEGER NOT NULL, since BIGINT NOT NULL)`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("projection: create tables: %w", err)
		}
	}
	return nil
}

// Serving returns the version of the named projection that readers should
// read (set by the first Runner of the projection, then by each cutover),
// or 0 when no runner has started yet.
func Serving(ctx context.Context, db *sql.DB, d Dialect, name string) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, d.sql(`SELECT version FROM weir_projection_serving WHERE projection = ?`), name).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("projection: serving version of %s: %w", name, err)
	}
	return v, nil
}

// loadOffsets reads the stored next offsets of the runner's partitions.
func (r *Runner) loadOffsets(ctx context.Context, q queryer) (map[consumer.TopicPartition]int64, error) {
	rows, err := q.QueryContext(ctx, r.d.sql(`SELECT topic, part, next_offset FROM weir_projection_offsets WHERE projection = ? AND version = ?`), r.name, r.version)
	if err != nil {
		return nil, fmt.Errorf("projection: load offsets: %w", err)
	}
	defer rows.Close()
	out := map[consumer.TopicPartition]int64{}
	for rows.Next() {
		var tp consumer.TopicPartition
		var off int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &off); err != nil {
			return nil, fmt.Errorf("projection: load offsets: %w", err)
		}
		out[tp] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projection: load offsets: %w", err)
	}
	return out, nil
}

// storedOffset reads one partition's next offset in tx, locking its row on
// PostgreSQL so two appliers of one partition serialise. A partition never
// applied gets a placeholder row (-1) first, so there is a row to lock: a
// concurrent insert waits for this transaction and then finds its offset.
// The placeholder is overwritten by storeOffset or rolled back with tx.
func (r *Runner) storedOffset(ctx context.Context, tx *sql.Tx, tp consumer.TopicPartition) (int64, bool, error) {
	_, err := tx.ExecContext(ctx, r.d.sql(`INSERT INTO weir_projection_offsets (projection, version, topic, part, next_offset, updated_at)
		VALUES (?, ?, ?, ?, -1, 0) ON CONFLICT (projection, version, topic, part) DO NOTHING`), r.name, r.version, tp.Topic, tp.Partition)
	if err != nil {
		return 0, false, fmt.Errorf("projection: read offset of %s: %w", tp, err)
	}
	q := `SELECT next_offset FROM weir_projection_offsets WHERE projection = ? AND version = ? AND topic = ? AND part = ?`
	if r.d == Postgres {
		q += ` FOR UPDATE`
	}
	var off int64
	if err := tx.QueryRowContext(ctx, r.d.sql(q), r.name, r.version, tp.Topic, tp.Partition).Scan(&off); err != nil {
		return 0, false, fmt.Errorf("projection: read offset of %s: %w", tp, err)
	}
	return off, off >= 0, nil
}

func (r *Runner) storeOffset(ctx context.Context, tx *sql.Tx, tp consumer.TopicPartition, next int64) error {
	_, err := tx.ExecContext(ctx, r.d.sql(`INSERT INTO weir_projection_offsets (projection, version, topic, part, next_offset, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (projection, version, topic, part) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`),
		r.name, r.version, tp.Topic, tp.Partition, next, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("projection: store offset of %s: %w", tp, err)
	}
	return nil
}

// parkedKeys returns the keys of tp with parked records.
func (r *Runner) parkedKeys(ctx context.Context, tx *sql.Tx, tp consumer.TopicPartition) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, r.d.sql(`SELECT DISTINCT record_key FROM weir_projection_parked WHERE projection = ? AND version = ? AND topic = ? AND part = ?`),
		r.name, r.version, tp.Topic, tp.Partition)
	if err != nil {
		return nil, fmt.Errorf("projection: parked keys of %s: %w", tp, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("projection: parked keys of %s: %w", tp, err)
		}
		out[string(k)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projection: parked keys of %s: %w", tp, err)
	}
	return out, nil
}

func (r *Runner) park(ctx context.Context, tx *sql.Tx, m kafka.Message, reason string) error {
	hdrs, err := json.Marshal(m.Headers)
	if err != nil {
		return fmt.Errorf("projection: park %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	key := m.Key
	if key == nil {
		key = []byte{}
	}
	_, err = tx.ExecContext(ctx, r.d.sql(`INSERT INTO weir_projection_parked
		(projection, version, topic, part, record_offset, record_key, record_value, record_headers, record_time, error, parked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		r.name, r.version, m.Topic, m.Partition, m.Offset, key, m.Value, string(hdrs), m.Time.UnixMilli(), reason, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("projection: park %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return nil
}
