// Package postgres is the PostgreSQL driver of the outbox relay: the table
// DDL (Init), the pgx Write, a Source that reads only below the transaction
// visibility horizon and wakes on LISTEN/NOTIFY, and a Fence built on a
// session-level advisory lock.
//
// Visibility: a bigserial is assigned at INSERT, not at COMMIT, so a reader
// that remembers "last seq seen" skips rows whose transaction commits late.
// Each row records its writer's transaction id (xid8, pg_current_xact_id())
// and the relay reads only rows with xid < pg_snapshot_xmin(
// pg_current_snapshot()): every transaction below that horizon has ended,
// so no row can still appear below it. Rows are published in seq order per
// aggregate: writers that serialize on an aggregate (as any update of it
// does, with a row lock held to commit) insert its rows in commit order.
// The price is that one long transaction anywhere in the database holds the
// horizon, and so the relay, back until it ends.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/weir-broker/weir/outbox"
)

// Execer runs statements: *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Write inserts msgs into the default outbox table within the pgx
// transaction tx (the pgx counterpart of outbox.Write).
func Write(ctx context.Context, tx pgx.Tx, msgs ...outbox.Message) error {
	return WriteTable(ctx, tx, outbox.DefaultTable, msgs...)
}

// WriteTable is Write into the named table.
func WriteTable(ctx context.Context, tx Execer, table string, msgs ...outbox.Message) error {
	q, err := outbox.InsertSQL(table)
	if err != nil {
		return err
	}
	for i := range msgs {
		args, err := outbox.InsertArgs(&msgs[i])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("outbox/postgres: insert %s: %w", msgs[i].ID, err)
		}
	}
	return nil
}

// names are the quoted identifiers derived from a table name.
type names struct {
	table, notifyFn, trigger, seqKey, seqIdx, parkedIdx, publishedIdx, channel string
	cols                                                                       outbox.Columns // quoted
}

func namesFor(r *outbox.Routing) (names, error) {
	t, err := outbox.QuoteIdent(r.Table)
	if err != nil {
		return names{}, err
	}
	base := strings.ReplaceAll(r.Table, ".", "_")
	n := names{
		table: t, notifyFn: `"` + base + `_notify"`, trigger: `"` + base + `_notify"`,
		seqKey: `"` + base + `_seq"`, seqIdx: `"` + base + `_seq_unpublished"`, parkedIdx: `"` + base + `_parked_key"`, publishedIdx: `"` + base + `_published"`,
		channel: "weir_outbox_" + base,
	}
	if i := strings.LastIndex(r.Table, "."); i >= 0 {
		schema, _ := outbox.QuoteIdent(r.Table[:i])
		n.notifyFn = schema + "." + n.notifyFn
	}
	c := r.Columns
	for _, p := range []*string{&c.ID, &c.Key, &c.Type, &c.Payload, &c.Timestamp, &c.AggregateType} {
		q, err := outbox.QuoteIdent(*p)
		if err != nil || strings.Contains(*p, ".") {
			return names{}, fmt.Errorf("%w: column %q", outbox.ErrInvalidOption, *p)
		}
		*p = q
	}
	n.cols = c
	return n, nil
}

// Init creates the outbox table, the relay's bookkeeping columns, indexes
// and the NOTIFY trigger, idempotently. On an existing Debezium outbox
// table it only adds what is missing (seq, xid, attempts, parked_at,
// last_error, the timestamp column, headers).
func Init(ctx context.Context, db Execer, r *outbox.Routing) error {
	n, err := namesFor(r)
	if err != nil {
		return err
	}
	c := n.cols
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + n.table + ` (
	` + c.ID + ` uuid PRIMARY KEY,
	` + c.AggregateType + ` varchar(255) NOT NULL,
	` + c.Key + ` varchar(255) NOT NULL,
	` + c.Type + ` varchar(255) NOT NULL,
	` + c.Payload + ` jsonb
)`,
		`ALTER TABLE ` + n.table + `
	ADD COLUMN IF NOT EXISTS headers jsonb,
	ADD COLUMN IF NOT EXISTS ` + c.Timestamp + ` timestamptz NOT NULL DEFAULT now(),
	ADD COLUMN IF NOT EXISTS seq bigserial NOT NULL,
	ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
	ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
	ADD COLUMN IF NOT EXISTS parked_at timestamptz,
	ADD COLUMN IF NOT EXISTS last_error text,
	ADD COLUMN IF NOT EXISTS published_at timestamptz`,
		`CREATE UNIQUE INDEX IF NOT EXISTS ` + n.seqKey + ` ON ` + n.table + ` (seq)`,
		`CREATE INDEX IF NOT EXISTS ` + n.publishedIdx + ` ON ` + n.table + ` (published_at) WHERE published_at IS NOT NULL`,
		`CREATE INDEX IF NOT EXISTS ` + n.seqIdx + ` ON ` + n.table + ` (seq) WHERE parked_at IS NULL AND published_at IS NULL`,
		`CREATE INDEX IF NOT EXISTS ` + n.parkedIdx + ` ON ` + n.table + ` (` + c.Key + `) WHERE parked_at IS NOT NULL`,
		`CREATE OR REPLACE FUNCTION ` + n.notifyFn + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('` + n.channel + `', ''); RETURN NULL; END $$`,
		`CREATE OR REPLACE TRIGGER ` + n.trigger + ` AFTER INSERT ON ` + n.table + ` FOR EACH STATEMENT EXECUTE FUNCTION ` + n.notifyFn + `()`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(ctx, s); err != nil {
			return fmt.Errorf("outbox/postgres: init %s: %w", r.Table, err)
		}
	}
	return nil
}

// Source reads an outbox table through a pgx pool. It is safe for
// concurrent use; Close stops its listener.
type Source struct {
	pool                 *pgxpool.Pool
	n                    names
	fetch, stats, parked string
	wake                 chan struct{}
	cancel               context.CancelFunc
	done                 chan struct{}
}

// NewSource returns a source over pool for the routing's table, and starts
// a LISTEN on the table's channel on a dedicated connection (a failed
// listener leaves the relay polling).
func NewSource(pool *pgxpool.Pool, r *outbox.Routing) (*Source, error) {
	n, err := namesFor(r)
	if err != nil {
		return nil, err
	}
	c := n.cols
	cols := `o.seq, o.` + c.ID + `::text, o.` + c.AggregateType + `, o.` + c.Key + `, o.` + c.Type +
		`, o.` + c.Payload + `::text, o.headers::text, o.` + c.Timestamp + `, o.attempts`
	s := &Source{
		pool: pool, n: n, wake: make(chan struct{}, 1), done: make(chan struct{}),
		// A row is fetched once its transaction is below the horizon and no
		// row of its key with a lower seq is still above it: a writer can
		// take its xid early and its key late, so a committed row with a
		// higher xid can precede it in commit (and seq) order.
		fetch: `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
held AS (SELECT q.` + c.Key + ` AS k, min(q.seq) AS seq FROM ` + n.table + ` q, h
  WHERE q.parked_at IS NULL AND q.published_at IS NULL AND q.xid >= h.xmin GROUP BY q.` + c.Key + `)
SELECT ` + cols + ` FROM ` + n.table + ` o CROSS JOIN h LEFT JOIN held ON held.k = o.` + c.Key + `
WHERE o.parked_at IS NULL AND o.published_at IS NULL
  AND o.xid < h.xmin AND (held.seq IS NULL OR o.seq < held.seq)
  AND NOT EXISTS (SELECT 1 FROM ` + n.table + ` p WHERE p.parked_at IS NOT NULL AND p.` + c.Key + ` = o.` + c.Key + `)
ORDER BY o.seq LIMIT $1`,
		stats: `SELECT count(*) FILTER (WHERE parked_at IS NULL AND published_at IS NULL),
	min(` + c.Timestamp + `) FILTER (WHERE parked_at IS NULL AND published_at IS NULL),
	count(*) FILTER (WHERE parked_at IS NOT NULL) FROM ` + n.table,
		parked: `SELECT ` + cols + `, o.parked_at, coalesce(o.last_error, '') FROM ` + n.table + ` o
WHERE o.parked_at IS NOT NULL ORDER BY o.seq LIMIT $1`,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.listen(ctx)
	return s, nil
}

// listen forwards notifications to the wake channel until ctx ends,
// reconnecting after a pause when the connection fails.
func (s *Source) listen(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		conn, err := s.pool.Acquire(ctx)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN "`+s.n.channel+`"`); err == nil {
				s.signal() // rows may have arrived before LISTEN
				for {
					if _, err = conn.Conn().WaitForNotification(ctx); err != nil {
						break
					}
					s.signal()
				}
			}
			// The connection may still be listening: drop it from the pool.
			_ = conn.Hijack().Close(context.Background())
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Source) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the listener (the pool stays the caller's).
func (s *Source) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// Wake implements outbox.Source.
func (s *Source) Wake() <-chan struct{} { return s.wake }

// Fetch implements outbox.Source.
func (s *Source) Fetch(ctx context.Context, limit int) ([]outbox.Row, error) {
	rows, err := s.pool.Query(ctx, s.fetch, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox/postgres: fetch: %w", err)
	}
	defer rows.Close()
	var out []outbox.Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox/postgres: fetch: %w", err)
	}
	return out, nil
}

func scanRow(rows pgx.Rows, extra ...any) (outbox.Row, error) {
	var r outbox.Row
	var payload, headers *string
	dest := append([]any{&r.Seq, &r.ID, &r.AggregateType, &r.AggregateID, &r.Type, &payload, &headers, &r.Timestamp, &r.Attempts}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return r, fmt.Errorf("outbox/postgres: scan: %w", err)
	}
	if payload != nil {
		r.Payload = []byte(*payload)
	}
	if headers != nil {
		r.Headers = outbox.DecodeHeaders([]byte(*headers))
	}
	return r, nil
}

// Delete implements outbox.Source.
func (s *Source) Delete(ctx context.Context, seqs []int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.n.table+` WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("outbox/postgres: delete: %w", err)
	}
	return nil
}

// MarkPublished implements outbox.Retainer.
func (s *Source) MarkPublished(ctx context.Context, seqs []int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE `+s.n.table+` SET published_at = now() WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("outbox/postgres: mark published: %w", err)
	}
	return nil
}

// Purge implements outbox.Retainer: one bounded DELETE, so writers never
// wait behind a long cleanup.
func (s *Source) Purge(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.n.table+` WHERE seq IN (SELECT seq FROM `+s.n.table+`
	WHERE published_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("outbox/postgres: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Reject implements outbox.Source.
func (s *Source) Reject(ctx context.Context, seq int64, reason string, park bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE `+s.n.table+` SET attempts = attempts + 1, last_error = $2,
	parked_at = CASE WHEN $3 THEN now() END WHERE seq = $1`, seq, reason, park)
	if err != nil {
		return fmt.Errorf("outbox/postgres: reject: %w", err)
	}
	return nil
}

// Stats implements outbox.Source.
func (s *Source) Stats(ctx context.Context) (pending int64, oldest time.Time, parked int64, err error) {
	var old *time.Time
	if err := s.pool.QueryRow(ctx, s.stats).Scan(&pending, &old, &parked); err != nil {
		return 0, time.Time{}, 0, fmt.Errorf("outbox/postgres: stats: %w", err)
	}
	if old != nil {
		oldest = *old
	}
	return pending, oldest, parked, nil
}

// Parked implements outbox.Admin.
func (s *Source) Parked(ctx context.Context, limit int) ([]outbox.ParkedRow, error) {
	rows, err := s.pool.Query(ctx, s.parked, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox/postgres: parked: %w", err)
	}
	defer rows.Close()
	var out []outbox.ParkedRow
	for rows.Next() {
		var p outbox.ParkedRow
		r, err := scanRow(rows, &p.ParkedAt, &p.LastError)
		if err != nil {
			return nil, err
		}
		p.Row = r
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox/postgres: parked: %w", err)
	}
	return out, nil
}

// Retry implements outbox.Admin.
func (s *Source) Retry(ctx context.Context, ids ...string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.n.table+` SET parked_at = NULL, attempts = 0
	WHERE parked_at IS NOT NULL AND `+s.n.cols.ID+`::text = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("outbox/postgres: retry: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Discard implements outbox.Admin.
func (s *Source) Discard(ctx context.Context, ids ...string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.n.table+`
	WHERE parked_at IS NOT NULL AND `+s.n.cols.ID+`::text = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("outbox/postgres: discard: %w", err)
	}
	return tag.RowsAffected(), nil
}

// LockKey is the advisory lock key of a table's relay.
func LockKey(table string) int64 {
	h := fnv.New64a()
	h.Write([]byte("weir-outbox/" + table))
	return int64(h.Sum64())
}

// ErrLockNotHeld is wrapped by Lock.Check when the lock session ended.
var ErrLockNotHeld = errors.New("outbox/postgres: advisory lock not held")
