// Package sqlite is the SQLite driver of the outbox relay (modernc.org/sqlite,
// no cgo), the embedded default. SQLite has a single writer: a write
// transaction holds the database's write lock from its first write to its
// commit, so rows get their rowid (the seq column) in commit order and the
// relay reads in seq order with no visibility horizon. It has no
// notifications: the relay polls.
//
// One relay per database file: SQLite offers no session lock that outlives a
// stalled process, so this driver provides no Fence.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/weir-broker/weir/outbox"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Open opens the SQLite database at path (WAL mode, a 5s busy timeout).
func Open(path string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("outbox/sqlite: open %s: %w", path, err)
	}
	return db, nil
}

type names struct {
	table, parkedIdx, publishedIdx string
	cols                           outbox.Columns
}

func namesFor(r *outbox.Routing) (names, error) {
	if strings.Contains(r.Table, ".") {
		return names{}, fmt.Errorf("%w: table %q: no schemas in SQLite", outbox.ErrInvalidOption, r.Table)
	}
	t, err := outbox.QuoteIdent(r.Table)
	if err != nil {
		return names{}, err
	}
	n := names{table: t, parkedIdx: `"` + r.Table + `_parked_key"`, publishedIdx: `"` + r.Table + `_published"`}
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

// Init creates the outbox table and its index, idempotently.
func Init(ctx context.Context, db *sql.DB, r *outbox.Routing) error {
	n, err := namesFor(r)
	if err != nil {
		return err
	}
	c := n.cols
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + n.table + ` (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	` + c.ID + ` TEXT NOT NULL UNIQUE,
	` + c.AggregateType + ` TEXT NOT NULL,
	` + c.Key + ` TEXT NOT NULL,
	` + c.Type + ` TEXT NOT NULL,
	` + c.Payload + ` BLOB,
	headers TEXT,
	` + c.Timestamp + ` INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
	attempts INTEGER NOT NULL DEFAULT 0,
	parked_at INTEGER,
	last_error TEXT,
	published_at INTEGER
)`,
		`CREATE INDEX IF NOT EXISTS ` + n.publishedIdx + ` ON ` + n.table + ` (published_at) WHERE published_at IS NOT NULL`,
		`CREATE INDEX IF NOT EXISTS ` + n.parkedIdx + ` ON ` + n.table + ` (` + c.Key + `) WHERE parked_at IS NOT NULL`,
	}
	if _, err := db.ExecContext(ctx, stmts[0]); err != nil {
		return fmt.Errorf("outbox/sqlite: init %s: %w", r.Table, err)
	}
	// Tables created before retention existed lack published_at.
	var has int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = 'published_at'`, r.Table).Scan(&has); err != nil {
		return fmt.Errorf("outbox/sqlite: init %s: %w", r.Table, err)
	}
	if has == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE `+n.table+` ADD COLUMN published_at INTEGER`); err != nil {
			return fmt.Errorf("outbox/sqlite: init %s: %w", r.Table, err)
		}
	}
	for _, s := range stmts[1:] {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("outbox/sqlite: init %s: %w", r.Table, err)
		}
	}
	return nil
}

// Source reads an outbox table in SQLite. It is safe for concurrent use.
type Source struct {
	db                   *sql.DB
	n                    names
	fetch, stats, parked string
}

// NewSource returns a source over db for the routing's table.
func NewSource(db *sql.DB, r *outbox.Routing) (*Source, error) {
	n, err := namesFor(r)
	if err != nil {
		return nil, err
	}
	c := n.cols
	cols := `o.seq, o.` + c.ID + `, o.` + c.AggregateType + `, o.` + c.Key + `, o.` + c.Type +
		`, o.` + c.Payload + `, o.headers, o.` + c.Timestamp + `, o.attempts`
	return &Source{
		db: db, n: n,
		fetch: `SELECT ` + cols + ` FROM ` + n.table + ` o
WHERE o.parked_at IS NULL AND o.published_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM ` + n.table + ` p WHERE p.parked_at IS NOT NULL AND p.` + c.Key + ` = o.` + c.Key + `)
ORDER BY o.seq LIMIT $1`,
		stats: `SELECT count(*) FILTER (WHERE parked_at IS NULL AND published_at IS NULL),
	min(` + c.Timestamp + `) FILTER (WHERE parked_at IS NULL AND published_at IS NULL),
	count(*) FILTER (WHERE parked_at IS NOT NULL) FROM ` + n.table,
		parked: `SELECT ` + cols + `, o.parked_at, coalesce(o.last_error, '') FROM ` + n.table + ` o
WHERE o.parked_at IS NOT NULL ORDER BY o.seq LIMIT $1`,
	}, nil
}

// Wake implements outbox.Source: SQLite has no notifications.
func (s *Source) Wake() <-chan struct{} { return nil }

func scan(rows *sql.Rows, extra ...any) (outbox.Row, error) {
	var r outbox.Row
	var headers sql.NullString
	var ts int64
	dest := append([]any{&r.Seq, &r.ID, &r.AggregateType, &r.AggregateID, &r.Type, &r.Payload, &headers, &ts, &r.Attempts}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return r, fmt.Errorf("outbox/sqlite: scan: %w", err)
	}
	r.Timestamp = time.UnixMilli(ts)
	if headers.Valid {
		r.Headers = outbox.DecodeHeaders([]byte(headers.String))
	}
	return r, nil
}

// Fetch implements outbox.Source.
func (s *Source) Fetch(ctx context.Context, limit int) ([]outbox.Row, error) {
	rows, err := s.db.QueryContext(ctx, s.fetch, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox/sqlite: fetch: %w", err)
	}
	defer rows.Close()
	var out []outbox.Row
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox/sqlite: fetch: %w", err)
	}
	return out, nil
}

// Delete implements outbox.Source.
func (s *Source) Delete(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	args := make([]any, len(seqs))
	marks := make([]string, len(seqs))
	for i, v := range seqs {
		args[i], marks[i] = v, "?"
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM `+s.n.table+` WHERE seq IN (`+strings.Join(marks, ",")+`)`, args...); err != nil {
		return fmt.Errorf("outbox/sqlite: delete: %w", err)
	}
	return nil
}

// seqList returns "?,?,..." and the arguments for seqs.
func seqList(seqs []int64) (string, []any) {
	args := make([]any, len(seqs))
	marks := make([]string, len(seqs))
	for i, v := range seqs {
		args[i], marks[i] = v, "?"
	}
	return strings.Join(marks, ","), args
}

// MarkPublished implements outbox.Retainer.
func (s *Source) MarkPublished(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	marks, args := seqList(seqs)
	args = append([]any{time.Now().UnixMilli()}, args...)
	if _, err := s.db.ExecContext(ctx, `UPDATE `+s.n.table+` SET published_at = ? WHERE seq IN (`+marks+`)`, args...); err != nil {
		return fmt.Errorf("outbox/sqlite: mark published: %w", err)
	}
	return nil
}

// Purge implements outbox.Retainer.
func (s *Source) Purge(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM `+s.n.table+` WHERE seq IN (SELECT seq FROM `+s.n.table+`
	WHERE published_at IS NOT NULL AND published_at < $1 LIMIT $2)`, before.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("outbox/sqlite: purge: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Reject implements outbox.Source.
func (s *Source) Reject(ctx context.Context, seq int64, reason string, park bool) error {
	var parked any
	if park {
		parked = time.Now().UnixMilli()
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE `+s.n.table+` SET attempts = attempts + 1, last_error = $2,
	parked_at = $3 WHERE seq = $1`, seq, reason, parked); err != nil {
		return fmt.Errorf("outbox/sqlite: reject: %w", err)
	}
	return nil
}

// Stats implements outbox.Source.
func (s *Source) Stats(ctx context.Context) (pending int64, oldest time.Time, parked int64, err error) {
	var old sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.stats).Scan(&pending, &old, &parked); err != nil {
		return 0, time.Time{}, 0, fmt.Errorf("outbox/sqlite: stats: %w", err)
	}
	if old.Valid {
		oldest = time.UnixMilli(old.Int64)
	}
	return pending, oldest, parked, nil
}

// Parked implements outbox.Admin.
func (s *Source) Parked(ctx context.Context, limit int) ([]outbox.ParkedRow, error) {
	rows, err := s.db.QueryContext(ctx, s.parked, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox/sqlite: parked: %w", err)
	}
	defer rows.Close()
	var out []outbox.ParkedRow
	for rows.Next() {
		var p outbox.ParkedRow
		var at int64
		r, err := scan(rows, &at, &p.LastError)
		if err != nil {
			return nil, err
		}
		p.Row, p.ParkedAt = r, time.UnixMilli(at)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox/sqlite: parked: %w", err)
	}
	return out, nil
}

func (s *Source) byIDs(ctx context.Context, op, stmt string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, v := range ids {
		args[i], marks[i] = v, "?"
	}
	res, err := s.db.ExecContext(ctx, stmt+` WHERE parked_at IS NOT NULL AND `+s.n.cols.ID+` IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox/sqlite: %s: %w", op, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Retry implements outbox.Admin.
func (s *Source) Retry(ctx context.Context, ids ...string) (int64, error) {
	return s.byIDs(ctx, "retry", `UPDATE `+s.n.table+` SET parked_at = NULL, attempts = 0`, ids)
}

// Discard implements outbox.Admin.
func (s *Source) Discard(ctx context.Context, ids ...string) (int64, error) {
	return s.byIDs(ctx, "discard", `DELETE FROM `+s.n.table, ids)
}
