package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/weir-broker/weir/consumer/inbox"
	"pgregory.net/rapid"
)

// deliver runs one barrier call in its own transaction and, when fn runs,
// appends op to the effects table of the step.
func deliver(t fataler, db *sql.DB, b *inbox.Barrier, saga, step string, op inbox.Op) inbox.Outcome {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	out, err := b.Do(ctx, tx, saga, step, op, func() error {
		_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, step, op) VALUES ('`+saga+`', '`+step+`', '`+string(op)+`')`)
		return err
	})
	if err != nil {
		t.Fatalf("Do(%s %s %s): %v", saga, step, op, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return out
}

func newBarrier(t testing.TB, d testDB) *inbox.Barrier {
	t.Helper()
	ctx := context.Background()
	b, err := inbox.NewBarrier(d.dialect, "saga_barrier")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTable(ctx, d.db); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS effects (saga TEXT, step TEXT, op TEXT)`); err != nil {
		t.Fatal(err)
	}
	return b
}

func effects(t fataler, db *sql.DB, saga string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT op FROM effects WHERE saga = '` + saga + `'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var op string
		if err := rows.Scan(&op); err != nil {
			t.Fatal(err)
		}
		out = append(out, op)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBarrierSequences(t *testing.T) {
	A, C := inbox.Action, inbox.Compensate
	tests := []struct {
		name    string
		ops     []inbox.Op
		want    []inbox.Outcome
		effects string
	}{
		{"action once", []inbox.Op{A, A}, []inbox.Outcome{inbox.Applied, inbox.Duplicate}, "[action]"},
		{"action then compensation", []inbox.Op{A, C, C}, []inbox.Outcome{inbox.Applied, inbox.Applied, inbox.Duplicate}, "[action compensate]"},
		{"compensation first", []inbox.Op{C, A, C}, []inbox.Outcome{inbox.NullCompensation, inbox.Rejected, inbox.Duplicate}, "[]"},
		{"late action after compensation", []inbox.Op{A, C, A}, []inbox.Outcome{inbox.Applied, inbox.Applied, inbox.Duplicate}, "[action compensate]"},
	}
	eachDB(t, func(t *testing.T, d testDB) {
		b := newBarrier(t, d)
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				saga := fmt.Sprintf("s%d", i)
				for j, op := range tc.ops {
					if got := deliver(t, d.db, b, saga, "reserve", op); got != tc.want[j] {
						t.Fatalf("delivery %d (%s) = %v, want %v", j, op, got, tc.want[j])
					}
				}
				if got := fmt.Sprint(effects(t, d.db, saga)); got != tc.effects {
					t.Fatalf("effects = %s, want %s", got, tc.effects)
				}
			})
		}
		if _, err := b.Do(context.Background(), d.db, "s", "x", "undo", func() error { return nil }); !errors.Is(err, inbox.ErrBadOp) {
			t.Fatalf("bad op: %v", err)
		}
	})
}

// TestBarrierProperties delivers a random interleaving of duplicated actions
// and compensations and checks dtm's barrier properties: each effect at most
// once; a compensation effect only after an action effect; no action effect
// after a compensation was delivered.
func TestBarrierProperties(t *testing.T) {
	d := testDB{"sqlite", inbox.SQLite, openSQLite(t)}
	b := newBarrier(t, d)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		saga := fmt.Sprintf("p%d", n)
		ops := rapid.SliceOfN(rapid.SampledFrom([]inbox.Op{inbox.Action, inbox.Compensate}), 1, 8).Draw(rt, "ops")
		compensated := false
		for _, op := range ops {
			out := deliver(rt, d.db, b, saga, "step", op)
			if op == inbox.Action && compensated && out == inbox.Applied {
				rt.Fatalf("action applied after its compensation: %v", ops)
			}
			if op == inbox.Compensate {
				compensated = true
			}
		}
		eff := effects(rt, d.db, saga)
		actions, comps := 0, 0
		for i, e := range eff {
			switch inbox.Op(e) {
			case inbox.Action:
				actions++
			case inbox.Compensate:
				comps++
				if actions == 0 {
					rt.Fatalf("compensation effect %d without an action: %v from %v", i, eff, ops)
				}
			}
		}
		if actions > 1 || comps > 1 {
			rt.Fatalf("effects %v from %v", eff, ops)
		}
		if ops[0] == inbox.Action && actions != 1 {
			rt.Fatalf("first delivery was the action, effects %v", eff)
		}
	})
}

// fataler is the part of testing.TB that *rapid.T has too.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
