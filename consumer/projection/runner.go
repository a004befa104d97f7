package projection

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// Errors returned by NewRunner and CreateTables.
var (
	// ErrInvalidConfig is wrapped for a Config that cannot work.
	ErrInvalidConfig = errors.New("projection: invalid config")
	// ErrBadDialect is wrapped for an unknown Dialect.
	ErrBadDialect = errors.New("projection: unknown dialect")
)

// Projection builds a read model from topics.
type Projection interface {
	// Name identifies the projection; its offsets are stored under it.
	Name() string
	// Version numbers the read model's shape; a new version is rebuilt from
	// offset 0 into its own tables (see the package doc).
	Version() int
	// Topics are the topics it folds.
	Topics() []string
	// Apply writes the effect of batch (records of one partition, in offset
	// order) in tx. It must not commit or roll back tx. An error makes the
	// runner look for the poison record (see the package doc).
	Apply(ctx context.Context, tx *sql.Tx, batch []kafka.Message) error
}

// Position is a set of record offsets, for example the offsets of produced
// records, keyed by partition.
type Position map[consumer.TopicPartition]int64

// Config configures a Runner. Brokers, DB, Dialect and Projection are required.
type Config struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// DB holds the read model and the runner's tables.
	DB *sql.DB
	// Dialect is DB's SQL dialect.
	Dialect Dialect
	// Projection is the read model to build.
	Projection Projection
	// GroupID is the consumer group (default weir-projection.<name>.v<version>).
	GroupID string
	// Member names this runner in the liveness table (default random).
	Member string
	// BatchSize bounds the records per Apply (default 500).
	BatchSize int
	// ParkAfter is the number of failed single-record applies before a
	// record is parked (default 3).
	ParkAfter int
	// Backoff is the wait between those attempts.
	Backoff consumer.Backoff
	// HeartbeatInterval is how often the liveness row is written (default 1 s).
	HeartbeatInterval time.Duration
	// StallAfter is how long one Apply may run before the heartbeat stops
	// (default 30 s).
	StallAfter time.Duration
	// PollInterval is how often WaitFor and CutoverWhenCaughtUp read the
	// database (default 5 ms); commits of this runner wake them at once.
	PollInterval time.Duration
	// Group tunes the consumer (timings, IsolationLevel, Logger, Dialer);
	// its Brokers, GroupID, Topics, handlers, Seek and MaxAttempts are set by
	// the runner.
	Group consumer.Config
	// Upcasters, if set, rewrite old events before Apply (see Upcasters).
	Upcasters *Upcasters
	// Logger receives rare events (default slog.Default()).
	Logger *slog.Logger
}

// Runner applies a projection; see the package doc. Run it once; the other
// methods may be called from any goroutine, before, during or after Run.
type Runner struct {
	cfg       Config
	d         Dialect
	p         Projection
	name      string
	version   int
	cons      *consumer.Consumer
	transport *kafka.Transport
	client    *kafka.Client

	busySince atomic.Int64 // unix nanos when the running Apply began, 0 if none

	mu     sync.Mutex
	commit chan struct{} // closed and replaced after each commit
}

// NewRunner checks cfg and returns a Runner. It connects to nothing until Run.
func NewRunner(cfg Config) (*Runner, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, fmt.Errorf("%w: no brokers", ErrInvalidConfig)
	case cfg.DB == nil:
		return nil, fmt.Errorf("%w: no database", ErrInvalidConfig)
	case cfg.Dialect != Postgres && cfg.Dialect != SQLite:
		return nil, fmt.Errorf("%w: %d", ErrBadDialect, cfg.Dialect)
	case cfg.Projection == nil || cfg.Projection.Name() == "" || len(cfg.Projection.Topics()) == 0:
		return nil, fmt.Errorf("%w: a projection with a name and topics is required", ErrInvalidConfig)
	}
	p := cfg.Projection
	if cfg.GroupID == "" {
		cfg.GroupID = fmt.Sprintf("weir-projection.%s.v%d", p.Name(), p.Version())
	}
	if cfg.Member == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.Member = hex.EncodeToString(b[:])
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.ParkAfter <= 0 {
		cfg.ParkAfter = 3
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Runner{cfg: cfg, d: cfg.Dialect, p: p, name: p.Name(), version: p.Version(), commit: make(chan struct{})}
	g := cfg.Group
	g.Brokers, g.GroupID, g.Topics = cfg.Brokers, cfg.GroupID, p.Topics()
	g.Handler, g.BatchHandler, g.Seek = nil, r.handleBatch, r.seek
	g.BatchSize = cfg.BatchSize
	g.MaxAttempts = 1 << 30 // database errors are retried until they pass; Apply errors park
	g.DeadLetterTopic = ""
	if g.Logger == nil {
		g.Logger = cfg.Logger
	}
	cons, err := consumer.New(g)
	if err != nil {
		return nil, fmt.Errorf("projection: %w", err)
	}
	r.cons = cons
	r.transport = &kafka.Transport{DialTimeout: 10 * time.Second}
	r.client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: r.transport, Timeout: 10 * time.Second}
	return r, nil
}

// Run consumes and applies until ctx is cancelled or the consumer fails. It
// makes this version the serving one if the projection has none yet.
func (r *Runner) Run(ctx context.Context) error {
	defer r.transport.CloseIdleConnections()
	_, err := r.cfg.DB.ExecContext(ctx, r.d.sql(`INSERT INTO weir_projection_serving (projection, version, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`),
		r.name, r.version, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("projection: %s: set serving version: %w", r.name, err)
	}
	beatCtx, stopBeat := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.heartbeat(beatCtx) })
	err = r.cons.Run(ctx)
	stopBeat()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("projection: %s: %w", r.name, err)
	}
	return nil
}

// Lag is the consumer's lag of the partitions this runner owns.
func (r *Runner) Lag() []consumer.PartitionLag { return r.cons.Lag() }

// seek starts every assigned partition at its stored offset, and partitions
// without one at offset 0.
func (r *Runner) seek(ctx context.Context, assigned []consumer.TopicPartition) (map[consumer.TopicPartition]int64, error) {
	stored, err := r.loadOffsets(ctx, r.cfg.DB)
	if err != nil {
		return nil, err
	}
	out := make(map[consumer.TopicPartition]int64, len(assigned))
	for _, tp := range assigned {
		if off, ok := stored[tp]; ok {
			out[tp] = off
		} else {
			out[tp] = kafka.FirstOffset
		}
	}
	return out, nil
}

// applyError marks an error returned by the projection's Apply.
type applyError struct{ err error }

// Error implements error.
func (e *applyError) Error() string { return "projection: apply: " + e.err.Error() }

// Unwrap returns Apply's error.
func (e *applyError) Unwrap() error { return e.err }

// handleBatch is the consumer's batch handler.
func (r *Runner) handleBatch(ctx context.Context, tp consumer.TopicPartition, batch []kafka.Message) error {
	err := r.applyTx(ctx, tp, batch)
	if _, ok := errors.AsType[*applyError](err); !ok {
		return err
	}
	// Find the poison: one record at a time.
	for _, m := range batch {
		for attempt := 1; ; attempt++ {
			err := r.applyTx(ctx, tp, []kafka.Message{m})
			if err == nil {
				break
			}
			if _, ok := errors.AsType[*applyError](err); !ok {
				return err
			}
			if attempt >= r.cfg.ParkAfter {
				if err := r.parkTx(ctx, tp, m, err); err != nil {
					return err
				}
				r.cfg.Logger.Warn("projection: parked", "projection", r.name, "partition", tp, "offset", m.Offset, "err", err)
				break
			}
			t := time.NewTimer(r.cfg.Backoff.Delay(attempt, mrand.Float64()))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
	return nil
}

// applyTx applies batch and stores the next offset in one transaction,
// skipping records already applied and parking those of parked keys.
func (r *Runner) applyTx(ctx context.Context, tp consumer.TopicPartition, batch []kafka.Message) (err error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stored, ok, err := r.storedOffset(ctx, tx, tp)
	if err != nil {
		return err
	}
	if ok {
		for len(batch) > 0 && batch[0].Offset < stored {
			batch = batch[1:] // applied already (by a previous owner)
		}
	}
	if len(batch) == 0 {
		return tx.Rollback()
	}
	parked, err := r.parkedKeys(ctx, tx, tp)
	if err != nil {
		return err
	}
	apply := batch
	if len(parked) > 0 {
		apply = make([]kafka.Message, 0, len(batch))
		for _, m := range batch {
			if parked[string(m.Key)] {
				if err := r.park(ctx, tx, m, "key parked behind an earlier record"); err != nil {
					return err
				}
				continue
			}
			apply = append(apply, m)
		}
	}
	if len(apply) > 0 {
		apply, err := r.upcast(apply)
		if err != nil {
			return &applyError{err}
		}
		r.busySince.Store(time.Now().UnixNano())
		err = r.p.Apply(ctx, tx, apply)
		r.busySince.Store(0)
		if err != nil {
			return &applyError{err}
		}
	}
	if err := r.storeOffset(ctx, tx, tp, batch[len(batch)-1].Offset+1); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection: commit: %w", err)
	}
	r.committed()
	return nil
}

// parkTx parks m and consumes its offset in one transaction.
func (r *Runner) parkTx(ctx context.Context, tp consumer.TopicPartition, m kafka.Message, cause error) (err error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stored, ok, err := r.storedOffset(ctx, tx, tp)
	if err != nil {
		return err
	}
	if ok && m.Offset < stored {
		return tx.Rollback()
	}
	if err := r.park(ctx, tx, m, cause.Error()); err != nil {
		return err
	}
	if err := r.storeOffset(ctx, tx, tp, m.Offset+1); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection: commit: %w", err)
	}
	r.committed()
	return nil
}

// committed wakes the waiters of WaitFor and CutoverWhenCaughtUp.
func (r *Runner) committed() {
	r.mu.Lock()
	close(r.commit)
	r.commit = make(chan struct{})
	r.mu.Unlock()
}

func (r *Runner) commitChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commit
}

// WaitFor returns once every record in pos is applied (or parked): the
// stored next offset of each partition is past its position. Rows written by
// those records are visible to any transaction that starts afterwards.
func (r *Runner) WaitFor(ctx context.Context, pos Position) error {
	return r.poll(ctx, func() (bool, error) {
		stored, err := r.loadOffsets(ctx, r.cfg.DB)
		if err != nil {
			return false, err
		}
		for tp, off := range pos {
			if stored[tp] <= off {
				return false, nil
			}
		}
		return true, nil
	})
}

// poll calls cond after each commit of this runner and every PollInterval
// until it returns true, an error, or ctx ends.
func (r *Runner) poll(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		wake := r.commitChan()
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projection: wait: %w", ctx.Err())
		case <-wake:
		case <-t.C:
		}
	}
}
