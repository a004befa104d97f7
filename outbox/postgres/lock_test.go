package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/postgres"
)

// TestLockFencedWhenSessionEnds: while one Lock holds the advisory lock a
// second waits; when the holder's session is terminated, the holder's
// Check reports ErrFenced and the second acquires.
func TestLockFencedWhenSessionEnds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := postgres.LockKey("outbox")
	a := postgres.NewLock(e.dsn, key, time.Second)
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	if err := a.Check(ctx); err != nil {
		t.Fatalf("holder: %v", err)
	}
	b := postgres.NewLock(e.dsn, key, time.Second)
	defer b.Release()
	got := make(chan error, 1)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { got <- b.Acquire(bctx) }()
	select {
	case err := <-got:
		t.Fatalf("second lock acquired while the first holds it: %v", err)
	case <-time.After(time.Second): // a few acquisition attempts
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the holder's session: %d %v", n, err)
	}
	waitFor(t, 10*time.Second, "holder fenced", func() (bool, error) {
		err := a.Check(ctx)
		return errors.Is(err, outbox.ErrFenced) && errors.Is(err, postgres.ErrLockNotHeld), nil
	})
	if err := <-got; err != nil {
		t.Fatalf("second lock: %v", err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("new holder: %v", err)
	}
	if err := postgres.NewLock("postgres://bad host", key, 0).Acquire(ctx); err == nil {
		t.Fatal("a malformed DSN acquired")
	}
}
