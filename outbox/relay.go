package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Relay. Source and Publisher are required.
type Config struct {
	// Source is the outbox table.
	Source Source
	// Publisher produces to the broker.
	Publisher Publisher
	// Fence, when set, is acquired before publishing and checked before
	// every round; a relay that loses it stops publishing and waits to
	// acquire it again.
	Fence Fence
	// Routing maps rows to records (default: Debezium's defaults).
	Routing *Routing
	// BatchSize is the most rows fetched per round (default 1000).
	BatchSize int
	// Parallelism is the most keys published at once (default 32). Each
	// key has at most one publish call in flight.
	Parallelism int
	// PollInterval is the fallback poll period when the source has no
	// wake-up or none arrives (default 1s).
	PollInterval time.Duration
	// ParkAfter parks a row after this many broker rejections (default 5).
	ParkAfter int
	// Backoff spaces retries after transient failures (default 100ms..10s).
	Backoff Backoff
	// BreakerThreshold consecutive transient failures open the circuit
	// (default 5).
	BreakerThreshold int
	// Retain keeps published rows this long (marked, then deleted in
	// batches of PurgeBatch) instead of deleting them on publish (zero,
	// the default). The Source must implement Retainer.
	Retain time.Duration
	// PurgeBatch is the most rows one retention DELETE removes (default
	// 1000), so cleanup never holds long locks against writers.
	PurgeBatch int
	// PublishTimeout bounds one publish call (default 30s); a round in
	// progress at shutdown is finished within it.
	PublishTimeout time.Duration
	// AtLeastOnce forces the at-least-once path even when Publisher is a
	// TxPublisher. By default a TxPublisher gets the exactly-once path: one
	// transaction per round with its position, resumed by Published.
	AtLeastOnce bool
	// Logger receives state changes (default: discard).
	Logger *slog.Logger
	// Registerer registers the relay's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Validate checks cfg and fills in defaults.
func (c *Config) Validate() error {
	if c.Source == nil || c.Publisher == nil {
		return fmt.Errorf("%w: Source and Publisher are required", ErrInvalidOption)
	}
	if c.Routing == nil {
		c.Routing = DefaultRouting()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BatchSize, 1000)
	def(&c.Parallelism, 32)
	def(&c.ParkAfter, 5)
	def(&c.BreakerThreshold, 5)
	def(&c.PurgeBatch, 1000)
	if c.Retain < 0 {
		return fmt.Errorf("%w: negative Retain", ErrInvalidOption)
	}
	if _, ok := c.Source.(Retainer); c.Retain > 0 && !ok {
		return fmt.Errorf("%w: Retain needs a Source that implements Retainer", ErrInvalidOption)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Backoff.Base <= 0 {
		c.Backoff.Base = 100 * time.Millisecond
	}
	if c.Backoff.Max < c.Backoff.Base {
		c.Backoff.Max = max(10*time.Second, c.Backoff.Base)
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Relay publishes outbox rows. Run drives it from one goroutine; Run may be
// called once.
type Relay struct {
	cfg Config
	m   *metrics

	mu      sync.Mutex // guards breaker
	breaker Breaker
}

// NewRelay validates cfg and returns a relay.
func NewRelay(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{
		cfg:     cfg,
		m:       newMetrics(cfg.Registerer),
		breaker: Breaker{Threshold: cfg.BreakerThreshold, Backoff: cfg.Backoff},
	}, nil
}

// Run publishes until ctx ends, then finishes the round in progress and
// returns nil. Rows are deleted only after the broker acknowledged them, so
// a crash at any point republishes rather than loses.
func (r *Relay) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if f := r.cfg.Fence; f != nil {
			r.cfg.Logger.Info("outbox relay: waiting for leadership")
			if err := f.Acquire(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("outbox: acquire leadership: %w", err)
			}
			r.cfg.Logger.Info("outbox relay: leader")
		}
		err := r.lead(ctx)
		if f := r.cfg.Fence; f != nil {
			_ = f.Release()
		}
		if !errors.Is(err, ErrFenced) {
			return err
		}
		r.m.fenced.Inc()
		r.cfg.Logger.Warn("outbox relay: fenced, stopped publishing", "err", err)
	}
	return nil
}

// lead publishes while this relay is the leader.
func (r *Relay) lead(ctx context.Context) error {
	var lastStats time.Time
	tp, tx := r.cfg.Publisher.(TxPublisher)
	tx = tx && !r.cfg.AtLeastOnce
	recovered := false
	for ctx.Err() == nil {
		if f := r.cfg.Fence; f != nil {
			if err := f.Check(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		if now := time.Now(); now.Sub(lastStats) >= r.cfg.PollInterval {
			r.stats(ctx)
			r.purge(ctx, now)
			lastStats = now
		}
		r.mu.Lock()
		ok, wait := r.breaker.Allow(time.Now())
		r.mu.Unlock()
		if !ok {
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		if tx && !recovered {
			if err := r.recoverTx(ctx, tp); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d := r.failure()
				r.cfg.Logger.Warn("outbox relay: resume from the committed position", "err", err, "retry_in", d)
				if errors.Is(err, ErrFenced) {
					return err
				}
				if !sleep(ctx, d) {
					return nil
				}
				continue
			}
			recovered = true
		}
		rows, err := r.cfg.Source.Fetch(ctx, r.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.cfg.Logger.Warn("outbox relay: fetch", "err", err)
			if !sleep(ctx, r.cfg.Backoff.Delay(2)) {
				return nil
			}
			continue
		}
		if len(rows) == 0 {
			if !r.idle(ctx) {
				return nil
			}
			continue
		}
		if tx {
			wait, err := r.roundTx(ctx, tp, rows)
			if errors.Is(err, ErrFenced) {
				return err
			}
			if err != nil {
				recovered = false // Published starts a fresh producer and deletes what was committed
			}
			if wait > 0 && !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		if wait := r.round(ctx, rows); wait > 0 {
			if !sleep(ctx, wait) {
				return nil
			}
		}
	}
	return nil
}

// recoverTx starts the transactional producer (fencing a deposed relay)
// and removes the rows of the last committed round: rounds are sequential
// and each deletes its rows before the next, so only those can still be in
// the table after a crash.
func (r *Relay) recoverTx(ctx context.Context, tp TxPublisher) error {
	seqs, err := tp.Published(ctx)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	if err := r.done(context.WithoutCancel(ctx), seqs); err != nil {
		return fmt.Errorf("outbox: delete the committed round's rows: %w", err)
	}
	return nil
}

// failure feeds the breaker and waits its backoff.
func (r *Relay) failure() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	d := r.breaker.Failure(now)
	if r.breaker.Open(now) {
		r.m.breaker.Set(1)
	}
	return d
}

// roundTx publishes rows in one transaction with their seqs as the
// position, then deletes them. Each key's rows keep seq order; a row that
// cannot be routed is rejected and its key's later rows wait for the next
// round. A record the broker refuses aborts the round, counts an attempt
// on its row, and the next round runs without it once it is parked. A
// non-nil error means the producer must be started again (Published).
func (r *Relay) roundTx(ctx context.Context, tp TxPublisher, rows []Row) (time.Duration, error) {
	rctx := context.WithoutCancel(ctx)
	blocked := map[string]bool{}
	recs := make([]Record, 0, len(rows))
	seqs := make([]int64, 0, len(rows))
	kept := make([]Row, 0, len(rows))
	for i := range rows {
		row := &rows[i]
		if blocked[row.AggregateID] {
			continue
		}
		rec, err := r.cfg.Routing.Route(row)
		if err != nil {
			r.reject(rctx, row, err)
			blocked[row.AggregateID] = true
			continue
		}
		recs = append(recs, rec)
		seqs = append(seqs, row.Seq)
		kept = append(kept, *row)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	pctx, cancel := context.WithTimeout(rctx, r.cfg.PublishTimeout)
	err := tp.PublishTx(pctx, recs, seqs)
	cancel()
	if err != nil {
		r.m.failures.Inc()
		if rej, ok := errors.AsType[*RejectedError](err); ok {
			for i := range kept {
				if kept[i].ID == rej.ID {
					r.reject(rctx, &kept[i], err)
				}
			}
			return 0, nil
		}
		d := r.failure()
		r.cfg.Logger.Warn("outbox relay: transactional publish failed", "err", err, "retry_in", d)
		return d, err
	}
	r.mu.Lock()
	r.breaker.Success()
	r.m.breaker.Set(0)
	r.mu.Unlock()
	now := time.Now()
	for i := range kept {
		r.m.latency.Observe(now.Sub(kept[i].Timestamp).Seconds())
	}
	if err := r.done(rctx, seqs); err != nil {
		// Committed but not deleted: recovery deletes them before the next round.
		r.cfg.Logger.Warn("outbox relay: delete published rows", "err", err)
		return r.cfg.Backoff.Delay(0), err
	}
	r.m.published.Add(float64(len(seqs)))
	return 0, nil
}

// idle waits for a wake-up or the poll interval; false when ctx ended.
func (r *Relay) idle(ctx context.Context) bool {
	t := time.NewTimer(r.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.cfg.Source.Wake():
	case <-t.C:
	}
	return true
}

func (r *Relay) stats(ctx context.Context) {
	pending, oldest, parked, err := r.cfg.Source.Stats(ctx)
	if err != nil {
		return
	}
	r.m.pending.Set(float64(pending))
	r.m.parked.Set(float64(parked))
	if oldest.IsZero() {
		r.m.oldest.Set(0)
	} else {
		r.m.oldest.Set(time.Since(oldest).Seconds())
	}
}

// round publishes rows, grouped by key: each key's rows go out in seq order
// with one publish in flight per key, keys in parallel. It finishes even
// when ctx ends (bounded by PublishTimeout per call), so claimed rows are
// either acknowledged and deleted or left in the table. It returns how long
// to back off before the next round (zero when nothing failed).
func (r *Relay) round(ctx context.Context, rows []Row) time.Duration {
	var order []string
	byKey := map[string][]Row{}
	for _, row := range rows {
		if _, ok := byKey[row.AggregateID]; !ok {
			order = append(order, row.AggregateID)
		}
		byKey[row.AggregateID] = append(byKey[row.AggregateID], row)
	}
	rctx := context.WithoutCancel(ctx)
	sem := make(chan struct{}, r.cfg.Parallelism)
	var (
		wg      sync.WaitGroup
		waitMu  sync.Mutex
		backoff time.Duration
	)
	for _, k := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if d := r.publishKey(rctx, byKey[k]); d > 0 {
				waitMu.Lock()
				backoff = max(backoff, d)
				waitMu.Unlock()
			}
		})
	}
	wg.Wait()
	return backoff
}

// publishKey publishes one key's rows in order, stopping at the first
// failure (the rest wait for the next round, keeping the key's order). It
// returns the backoff a transient failure asks for.
func (r *Relay) publishKey(ctx context.Context, rows []Row) time.Duration {
	single := false
	for len(rows) > 0 {
		n := callSize(rows)
		if single {
			n = 1
		}
		recs := make([]Record, 0, n)
		for i := range rows[:n] {
			rec, err := r.cfg.Routing.Route(&rows[i])
			if err != nil {
				if i == 0 {
					r.reject(ctx, &rows[0], err)
					return 0
				}
				n = i
				break
			}
			recs = append(recs, rec)
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		err := r.cfg.Publisher.Publish(pctx, recs)
		cancel()
		if err != nil {
			r.m.failures.Inc()
			if _, ok := errors.AsType[*RejectedError](err); ok {
				if n > 1 {
					single = true // find the offender, publishing the rows before it
					continue
				}
				r.reject(ctx, &rows[0], err)
				return 0
			}
			r.mu.Lock()
			now := time.Now()
			d := r.breaker.Failure(now)
			if r.breaker.Open(now) {
				r.m.breaker.Set(1)
			}
			r.mu.Unlock()
			r.cfg.Logger.Warn("outbox relay: publish failed", "err", err, "retry_in", d)
			return d
		}
		r.mu.Lock()
		r.breaker.Success()
		r.m.breaker.Set(0)
		r.mu.Unlock()
		seqs := make([]int64, n)
		now := time.Now()
		for i := range rows[:n] {
			seqs[i] = rows[i].Seq
			r.m.latency.Observe(now.Sub(rows[i].Timestamp).Seconds())
		}
		if err := r.done(ctx, seqs); err != nil {
			// Published but not deleted: the rows go out again (at-least-once).
			r.cfg.Logger.Warn("outbox relay: delete published rows", "err", err)
			return r.cfg.Backoff.Delay(0)
		}
		r.m.published.Add(float64(n))
		rows = rows[n:]
	}
	return 0
}

// done deletes published rows, or marks them when retention is on.
func (r *Relay) done(ctx context.Context, seqs []int64) error {
	if r.cfg.Retain > 0 {
		return r.cfg.Source.(Retainer).MarkPublished(ctx, seqs)
	}
	return r.cfg.Source.Delete(ctx, seqs)
}

// purge deletes rows published more than Retain ago, in batches.
func (r *Relay) purge(ctx context.Context, now time.Time) {
	if r.cfg.Retain <= 0 {
		return
	}
	ret := r.cfg.Source.(Retainer)
	for ctx.Err() == nil {
		n, err := ret.Purge(ctx, now.Add(-r.cfg.Retain), r.cfg.PurgeBatch)
		if err != nil {
			r.cfg.Logger.Warn("outbox relay: purge", "err", err)
			return
		}
		if n < int64(r.cfg.PurgeBatch) {
			return
		}
	}
}

// Limits of one publish call, so a hot key's backlog does not make a batch
// the broker refuses as a whole (max.message.bytes defaults to about 1 MiB).
const (
	maxCallRows  = 500
	maxCallBytes = 512 << 10
)

// callSize returns how many of rows (at least one) go into one publish.
func callSize(rows []Row) int {
	size := 0
	for i, r := range rows {
		size += len(r.Payload) + len(r.AggregateID) + len(r.ID) + 64
		if i > 0 && (i >= maxCallRows || size > maxCallBytes) {
			return i
		}
	}
	return len(rows)
}

// reject counts a broker rejection of row, parking it at ParkAfter.
func (r *Relay) reject(ctx context.Context, row *Row, cause error) {
	park := row.Attempts+1 >= r.cfg.ParkAfter
	if err := r.cfg.Source.Reject(ctx, row.Seq, cause.Error(), park); err != nil {
		r.cfg.Logger.Warn("outbox relay: record rejection", "id", row.ID, "err", err)
		return
	}
	if park {
		r.m.parkedTot.Inc()
		r.cfg.Logger.Warn("outbox relay: row parked", "id", row.ID, "key", row.AggregateID, "err", cause)
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
