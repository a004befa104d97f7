package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Op is the kind of a saga participant's call.
type Op string

// The two ops of a saga step.
const (
	Action     Op = "action"
	Compensate Op = "compensate"
)

// Outcome says what Barrier.Do did.
type Outcome int

// Outcomes of Barrier.Do.
const (
	// Applied: fn ran (its effects commit with the caller's transaction).
	Applied Outcome = iota + 1
	// Duplicate: the same op of the step was already recorded; fn did not run.
	Duplicate
	// Rejected: an action arrived after its step's compensation; fn did not run.
	Rejected
	// NullCompensation: a compensation arrived before its action; it is
	// recorded (so the late action is Rejected) and fn did not run.
	NullCompensation
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	case NullCompensation:
		return "null-compensation"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ErrBadOp is returned by Do for an Op other than Action and Compensate.
var ErrBadOp = errors.New("inbox: barrier op must be action or compensate")

// Barrier is a table with one row per (saga id, step, op); see the package
// doc. It is safe for concurrent use; concurrent calls for one step
// serialise on the row's primary key in the database.
type Barrier struct {
	d     Dialect
	table string
}

// NewBarrier returns the barrier stored in table (created by CreateTable).
func NewBarrier(d Dialect, table string) (*Barrier, error) {
	if err := checkNames(d, table); err != nil {
		return nil, err
	}
	return &Barrier{d: d, table: table}, nil
}

// CreateTable creates the barrier table if it does not exist. The origin
// column says which op wrote a row: an action row written by a compensation
// is the marker that rejects a late action.
func (b *Barrier) CreateTable(ctx context.Context, db Tx) error {
	q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	saga_id TEXT NOT NULL,
	step TEXT NOT NULL,
	op TEXT NOT NULL,
	origin TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (saga_id, step, op))`, b.table)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("inbox: create barrier %s: %w", b.table, err)
	}
	return nil
}

// insert adds the row (saga, step, op) written by origin and reports
// whether it was new.
func (b *Barrier) insert(ctx context.Context, tx conn, saga, step string, op, origin Op) (bool, error) {
	q := fmt.Sprintf(`INSERT INTO %s (saga_id, step, op, origin, created_at) VALUES (%s, %s, %s, %s, %s)
	ON CONFLICT (saga_id, step, op) DO NOTHING`, b.table, b.d.ph(1), b.d.ph(2), b.d.ph(3), b.d.ph(4), b.d.ph(5))
	n, err := tx.exec(ctx, q, saga, step, string(op), string(origin), time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("inbox: barrier %s/%s %s: %w", saga, step, op, err)
	}
	return n == 1, nil
}

// Do runs fn at most once for (sagaID, step, op) inside the caller's
// transaction tx, and reports what happened. When fn returns an error, Do
// returns it with Applied and the caller must roll tx back (the barrier rows
// are in it too). On any other outcome fn did not run and the caller
// commits as usual.
func (b *Barrier) Do(ctx context.Context, tx Tx, sagaID, step string, op Op, fn func() error) (Outcome, error) {
	return b.do(ctx, sqlConn{tx}, sagaID, step, op, fn)
}

// DoPgx is Do in a pgx transaction, for a Postgres barrier.
func (b *Barrier) DoPgx(ctx context.Context, tx PgxTx, sagaID, step string, op Op, fn func() error) (Outcome, error) {
	if b.d != Postgres {
		return 0, fmt.Errorf("%w: DoPgx needs a Postgres barrier", ErrBadDialect)
	}
	return b.do(ctx, pgxConn{tx}, sagaID, step, op, fn)
}

func (b *Barrier) do(ctx context.Context, tx conn, sagaID, step string, op Op, fn func() error) (Outcome, error) {
	switch op {
	case Action:
		ok, err := b.insert(ctx, tx, sagaID, step, Action, Action)
		if err != nil {
			return 0, err
		}
		if !ok {
			var origin string
			q := fmt.Sprintf(`SELECT origin FROM %s WHERE saga_id = %s AND step = %s AND op = %s`, b.table, b.d.ph(1), b.d.ph(2), b.d.ph(3))
			if err := tx.scan(ctx, q, &origin, sagaID, step, string(Action)); err != nil {
				return 0, fmt.Errorf("inbox: barrier %s/%s: read origin: %w", sagaID, step, err)
			}
			if Op(origin) == Compensate {
				return Rejected, nil
			}
			return Duplicate, nil
		}
	case Compensate:
		// Claim the action row first: if that works, the action never ran
		// and now never will.
		null, err := b.insert(ctx, tx, sagaID, step, Action, Compensate)
		if err != nil {
			return 0, err
		}
		ok, err := b.insert(ctx, tx, sagaID, step, Compensate, Compensate)
		if err != nil {
			return 0, err
		}
		if !ok {
			return Duplicate, nil
		}
		if null {
			return NullCompensation, nil
		}
	default:
		return 0, fmt.Errorf("%w: %q", ErrBadOp, op)
	}
	if err := fn(); err != nil {
		return Applied, err
	}
	return Applied, nil
}

var (
	_ Tx    = (*sql.Tx)(nil)
	_ PgxTx = pgx.Tx(nil)
)
