package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weir-broker/weir/outbox"
)

// Lock is an outbox.Fence on a session-level advisory lock held by a
// dedicated connection. The session runs with idle_session_timeout = Lease
// and a heartbeat queries it every Lease/4, so a relay that stops (SIGSTOP,
// a network partition) loses its session, and with it the lock, within
// Lease; on resuming it finds its connection gone and stops publishing.
//
// The fence is checked before each round: a relay resumed in the middle of a
// round can still publish that round's rows, which the new leader may also
// publish (consumers deduplicate on the id header). Producer-epoch fencing
// closes this window once the broker serves transactions.
//
// Lock is safe for concurrent use.
type Lock struct {
	// Logger, when set before Acquire, receives failed acquisition attempts.
	Logger *slog.Logger

	dsn   string
	key   int64
	lease time.Duration

	mu     sync.Mutex // guards conn and lost
	conn   *pgx.Conn
	lost   error
	cancel context.CancelFunc
	done   chan struct{}
}

// NewLock returns a fence on the advisory lock key (see LockKey) of the
// database at dsn. lease <= 0 means 5s.
func NewLock(dsn string, key int64, lease time.Duration) *Lock {
	if lease <= 0 {
		lease = 5 * time.Second
	}
	return &Lock{dsn: dsn, key: key, lease: lease}
}

// Acquire implements outbox.Fence: it polls pg_try_advisory_lock every
// Lease/4 until it holds the lock.
func (l *Lock) Acquire(ctx context.Context) error {
	if _, err := pgx.ParseConfig(l.dsn); err != nil {
		return fmt.Errorf("outbox/postgres: lock: %w", err)
	}
	for {
		ok, err := l.try(ctx)
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && l.Logger != nil { // retried: the database may be restarting
			l.Logger.Warn("outbox relay: leadership attempt failed", "err", err)
		}
		t := time.NewTimer(l.lease / 4)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (l *Lock) try(ctx context.Context) (bool, error) {
	cfg, err := pgx.ParseConfig(l.dsn)
	if err != nil {
		return false, fmt.Errorf("outbox/postgres: lock: %w", err)
	}
	cfg.RuntimeParams["idle_session_timeout"] = fmt.Sprint(l.lease.Milliseconds())
	cfg.RuntimeParams["application_name"] = "weir-outbox-relay"
	cctx, cancel := context.WithTimeout(ctx, l.lease)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return false, fmt.Errorf("outbox/postgres: lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&ok); err != nil || !ok {
		conn.Close(context.Background())
		if err != nil {
			return false, fmt.Errorf("outbox/postgres: lock: %w", err)
		}
		return false, nil
	}
	hctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.conn, l.lost, l.cancel, l.done = conn, nil, cancel, make(chan struct{})
	done := l.done
	l.mu.Unlock()
	go l.heartbeat(hctx, done)
	return true, nil
}

// heartbeat pings the lock session every Lease/4 until ctx ends or a ping
// fails, which marks the lock lost.
func (l *Lock) heartbeat(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(l.lease / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.ping(ctx); err != nil {
			return
		}
	}
}

func (l *Lock) ping(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if l.conn == nil {
		return fmt.Errorf("%w: %w", outbox.ErrFenced, ErrLockNotHeld)
	}
	pctx, cancel := context.WithTimeout(ctx, l.lease)
	defer cancel()
	if _, err := l.conn.Exec(pctx, `SELECT 1`); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.lost = fmt.Errorf("%w: %w: %w", outbox.ErrFenced, ErrLockNotHeld, err)
		return l.lost
	}
	return nil
}

// Check implements outbox.Fence: it pings the lock session.
func (l *Lock) Check(ctx context.Context) error { return l.ping(ctx) }

// Release implements outbox.Fence: it stops the heartbeat and closes the
// session, which releases the lock.
func (l *Lock) Release() error {
	l.mu.Lock()
	conn, cancel, done := l.conn, l.cancel, l.done
	l.conn, l.cancel, l.done = nil, nil, nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if conn != nil {
		return conn.Close(context.Background())
	}
	return nil
}
