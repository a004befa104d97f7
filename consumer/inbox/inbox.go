// Package inbox makes the side effects of consumed records effectively-once:
// the handler records the record's id in an inbox table inside its own
// database transaction, so a redelivered record (a retry, a rebalance, a
// replay from offset 0) finds its id and changes nothing.
//
// The id is the record's `id` header (the outbox relay sets it to the row
// id), else topic/partition/offset. Ids older than a retention are deleted by
// Purge; a redelivery after that is no longer recognised, so keep the
// retention longer than any replay you intend.
//
// The Barrier is the same idea for saga participants: one row per (saga id,
// step, op) makes an action or a compensation run once, rejects an action
// that arrives after its compensation (anti-hanging), and records a
// compensation that arrives before its action (a null compensation) so the
// late action is rejected too.
//
// Both work on database/sql with PostgreSQL (github.com/jackc/pgx/v5/stdlib,
// driver "pgx") and SQLite (modernc.org/sqlite, driver "sqlite"), and on
// pgx's native API for PostgreSQL (ClaimPgx, DoPgx); the caller opens the
// database and owns the transaction. The package registers no driver.
package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// Errors returned by the constructors.
var (
	// ErrBadTable is returned for a table name that is not a plain SQL
	// identifier (letters, digits, underscores; optionally schema.table).
	ErrBadTable = errors.New("inbox: bad table name")
	// ErrBadDialect is returned for an unknown Dialect.
	ErrBadDialect = errors.New("inbox: unknown dialect")
)

// Dialect selects the SQL spoken to the database.
type Dialect int

// The supported databases.
const (
	Postgres Dialect = iota + 1
	SQLite
)

// ph returns the n-th (1-based) placeholder.
func (d Dialect) ph(n int) string {
	if d == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// Tx is what the inbox needs from the caller's transaction: *sql.Tx,
// *sql.DB and *sql.Conn satisfy it.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// PgxTx is the same for pgx's native API: pgx.Tx, *pgx.Conn and
// *pgxpool.Pool satisfy it.
type PgxTx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// conn runs the statements of Claim and Do on either API.
type conn interface {
	exec(ctx context.Context, q string, args ...any) (rowsAffected int64, err error)
	scan(ctx context.Context, q string, dest any, args ...any) error
}

type sqlConn struct{ tx Tx }

func (c sqlConn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqlConn) scan(ctx context.Context, q string, dest any, args ...any) error {
	return c.tx.QueryRowContext(ctx, q, args...).Scan(dest)
}

type pgxConn struct{ tx PgxTx }

func (c pgxConn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := c.tx.Exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (c pgxConn) scan(ctx context.Context, q string, dest any, args ...any) error {
	return c.tx.QueryRow(ctx, q, args...).Scan(dest)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func checkNames(d Dialect, table string) error {
	if d != Postgres && d != SQLite {
		return fmt.Errorf("%w: %d", ErrBadDialect, d)
	}
	if !identRE.MatchString(table) {
		return fmt.Errorf("%w: %q", ErrBadTable, table)
	}
	return nil
}

// Inbox is a table of processed record ids. It holds no state besides its
// names and is safe for concurrent use.
type Inbox struct {
	d     Dialect
	table string
}

// New returns the inbox stored in table (created by CreateTable).
func New(d Dialect, table string) (*Inbox, error) {
	if err := checkNames(d, table); err != nil {
		return nil, err
	}
	return &Inbox{d: d, table: table}, nil
}

// CreateTable creates the inbox table if it does not exist.
func (i *Inbox) CreateTable(ctx context.Context, db Tx) error {
	q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id TEXT PRIMARY KEY,
	processed_at BIGINT NOT NULL)`, i.table)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("inbox: create %s: %w", i.table, err)
	}
	idx := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s_processed_at ON %s (processed_at)`, indexName(i.table), i.table)
	if _, err := db.ExecContext(ctx, idx); err != nil {
		return fmt.Errorf("inbox: create index on %s: %w", i.table, err)
	}
	return nil
}

// indexName turns schema.table into schema_table for an index name.
func indexName(table string) string {
	b := []byte(table)
	for j, c := range b {
		if c == '.' {
			b[j] = '_'
		}
	}
	return string(b)
}

// Claim records id as processed in tx and reports whether this is the first
// time: false means the record was already processed (in a committed
// transaction) and its side effects must be skipped.
func (i *Inbox) Claim(ctx context.Context, tx Tx, id string) (bool, error) {
	return i.claim(ctx, sqlConn{tx}, id)
}

// ClaimPgx is Claim in a pgx transaction (pgx.Tx, *pgx.Conn, *pgxpool.Pool)
// for a Postgres inbox.
func (i *Inbox) ClaimPgx(ctx context.Context, tx PgxTx, id string) (bool, error) {
	if i.d != Postgres {
		return false, fmt.Errorf("%w: ClaimPgx needs a Postgres inbox", ErrBadDialect)
	}
	return i.claim(ctx, pgxConn{tx}, id)
}

func (i *Inbox) claim(ctx context.Context, c conn, id string) (bool, error) {
	q := fmt.Sprintf(`INSERT INTO %s (id, processed_at) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING`,
		i.table, i.d.ph(1), i.d.ph(2))
	n, err := c.exec(ctx, q, id, time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("inbox: claim %q: %w", id, err)
	}
	return n == 1, nil
}

// Purge deletes the ids processed before before and returns how many.
func (i *Inbox) Purge(ctx context.Context, db Tx, before time.Time) (int64, error) {
	q := fmt.Sprintf(`DELETE FROM %s WHERE processed_at < %s`, i.table, i.d.ph(1))
	res, err := db.ExecContext(ctx, q, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("inbox: purge %s: %w", i.table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inbox: purge %s: %w", i.table, err)
	}
	return n, nil
}

// HeaderID is the record header that carries a message id.
const HeaderID = "id"

// MessageID is the id of a record: its `id` header if it has a non-empty
// one, else topic/partition/offset.
func MessageID(m kafka.Message) string {
	for _, h := range m.Headers {
		if h.Key == HeaderID && len(h.Value) > 0 {
			return string(h.Value)
		}
	}
	return m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
}

// TxFunc is a record handler that runs inside the inbox's transaction.
type TxFunc func(ctx context.Context, tx *sql.Tx, m kafka.Message) error

// Handler returns a consumer.Handler that, for each record, begins a
// transaction on db, claims the record's MessageID, calls fn only on the
// first claim, and commits. An error from fn rolls everything back, so the
// consumer's retry finds the id unclaimed.
func (i *Inbox) Handler(db *sql.DB, fn TxFunc) consumer.Handler {
	return func(ctx context.Context, m kafka.Message) (err error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("inbox: begin: %w", err)
		}
		defer func() {
			if err != nil {
				_ = tx.Rollback()
			}
		}()
		first, err := i.Claim(ctx, tx, MessageID(m))
		if err != nil {
			return err
		}
		if first {
			if err := fn(ctx, tx, m); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("inbox: commit: %w", err)
		}
		return nil
	}
}
