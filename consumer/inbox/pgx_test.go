package inbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/weir-broker/weir/consumer/inbox"
	"github.com/weir-broker/weir/internal/pgtest"
)

// TestPgxNativeClaimAndBarrier runs Claim and the barrier through pgx's own
// transactions (no database/sql), and refuses them for a SQLite inbox.
func TestPgxNativeClaimAndBarrier(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t).DSN(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	ib, _ := inbox.New(inbox.Postgres, "inbox")
	b, _ := inbox.NewBarrier(inbox.Postgres, "saga_barrier")
	// CreateTable takes database/sql; the same DDL runs through pgx here.
	for _, q := range []string{
		`CREATE TABLE inbox (id TEXT PRIMARY KEY, processed_at BIGINT NOT NULL)`,
		`CREATE TABLE saga_barrier (saga_id TEXT NOT NULL, step TEXT NOT NULL, op TEXT NOT NULL, origin TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (saga_id, step, op))`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []bool{true, false} {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first, err := ib.ClaimPgx(ctx, tx, "m1")
		if err != nil || first != want {
			t.Fatalf("claim %d = %v, %v; want %v", i, first, err, want)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, step := range []struct {
		op   inbox.Op
		want inbox.Outcome
	}{{inbox.Compensate, inbox.NullCompensation}, {inbox.Action, inbox.Rejected}, {inbox.Compensate, inbox.Duplicate}} {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out, err := b.DoPgx(ctx, tx, "s1", "pay", step.op, func() error { return nil })
		if err != nil || out != step.want {
			t.Fatalf("delivery %d (%s) = %v, %v; want %v", i, step.op, out, err, step.want)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	lite, _ := inbox.New(inbox.SQLite, "inbox")
	if _, err := lite.ClaimPgx(ctx, c, "x"); !errors.Is(err, inbox.ErrBadDialect) {
		t.Fatalf("ClaimPgx on a SQLite inbox = %v, want ErrBadDialect", err)
	}
}
