package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/postgres"
)

// load is the writers' scenario: concurrent transactions over many
// aggregates with random delays, each taking its xid before it takes its
// aggregate (so xid order differs from commit order), some rolled back, and
// one transaction holding an early xid open while later ones commit.
type load struct {
	writers, rows, aggregates int
	holdOpen                  time.Duration

	mu         sync.Mutex
	want       map[string][]string // aggregate -> ids in commit order
	rolledBack map[string]bool
	committed  int
}

func newLoad() *load {
	l := &load{writers: 8, rows: 3000, aggregates: 100, holdOpen: 2 * time.Second}
	if soak() {
		l.writers, l.rows, l.aggregates, l.holdOpen = 32, 100_000, 1000, 10*time.Second
	}
	l.want, l.rolledBack = map[string][]string{}, map[string]bool{}
	return l
}

// run writes the rows; it returns when every transaction has ended, with
// the first error.
func (l *load) run(e *env) error {
	ctx := context.Background()
	aggMu := make([]sync.Mutex, l.aggregates)
	var wg sync.WaitGroup
	errs := make(chan error, l.writers+1)

	// The long transaction: an early xid and seq, committed last.
	wg.Go(func() {
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			errs <- err
			return
		}
		defer tx.Rollback(ctx)
		m := outbox.Message{ID: outbox.NewID(), AggregateType: "load", AggregateID: "long", Type: "early"}
		if err := postgres.Write(ctx, tx, m); err != nil {
			errs <- err
			return
		}
		<-time.After(l.holdOpen) // the scenario: keep the transaction open
		if err := tx.Commit(ctx); err != nil {
			errs <- err
			return
		}
		l.mu.Lock()
		l.want["long"] = append(l.want["long"], m.ID)
		l.committed++
		l.mu.Unlock()
	})

	var next sync.Mutex
	written := 0
	for w := range l.writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				next.Lock()
				if written >= l.rows {
					next.Unlock()
					return
				}
				n := min(1+rng.IntN(3), l.rows-written)
				written += n
				next.Unlock()
				if err := l.txn(ctx, e, rng, aggMu, n); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// txn writes n rows for one aggregate in one transaction.
func (l *load) txn(ctx context.Context, e *env, rng *rand.Rand, aggMu []sync.Mutex, n int) error {
	a := rng.IntN(l.aggregates)
	agg := fmt.Sprint("agg-", a)
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil { // take the xid now
		return err
	}
	if rng.IntN(4) == 0 {
		<-time.After(time.Duration(rng.IntN(2000)) * time.Microsecond) // commit delay
	}
	// Writers of one aggregate serialize, as updates of one aggregate do.
	aggMu[a].Lock()
	defer aggMu[a].Unlock()
	msgs := make([]outbox.Message, n)
	for i := range msgs {
		msgs[i] = outbox.Message{AggregateType: "load", AggregateID: agg, Type: "e", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	if err := postgres.Write(ctx, tx, msgs...); err != nil {
		return err
	}
	if rng.IntN(10) == 0 {
		if err := tx.Rollback(ctx); err != nil {
			return err
		}
		l.mu.Lock()
		for _, m := range msgs {
			l.rolledBack[m.ID] = true
		}
		l.mu.Unlock()
		return nil
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	for _, m := range msgs {
		l.want[agg] = append(l.want[agg], m.ID)
	}
	l.committed += n
	l.mu.Unlock()
	return nil
}

// check consumes the load's topic and verifies: every committed row
// delivered (exactly once after dedup on the id header), no rolled-back
// row, per-aggregate order of first deliveries = commit order. It returns
// the number of duplicate deliveries.
func (l *load) check(t *testing.T, b *weirtest.Broker, partitions int) int {
	t.Helper()
	got := consume(t, b.Addr(), "outbox.event.load", partitions, l.committed)
	seen := map[string]bool{}
	order := map[string][]string{}
	dups := 0
	for _, m := range got {
		if l.rolledBack[m.id] {
			t.Fatalf("rolled-back row %s delivered", m.id)
		}
		if seen[m.id] {
			dups++
			continue
		}
		seen[m.id] = true
		order[m.key] = append(order[m.key], m.id)
	}
	if len(seen) != l.committed {
		t.Fatalf("delivered %d distinct rows, committed %d", len(seen), l.committed)
	}
	for agg, ids := range l.want {
		if !slices.Equal(order[agg], ids) {
			t.Fatalf("aggregate %s: delivered %d ids in a different order than committed (%d)", agg, len(order[agg]), len(ids))
		}
	}
	return dups
}

// TestConcurrentWritersCommitOrder runs the writers' scenario against an
// in-process relay.
func TestConcurrentWritersCommitOrder(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t, weirtest.WithArgs("--default-partitions", "4"))
	startRelay(t, relayConfig(t, e, b))
	l := newLoad()
	if err := l.run(e); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "outbox drained", pending(e))
	dups := l.check(t, b, 4)
	t.Logf("%d rows committed, %d rolled back, %d duplicate deliveries", l.committed, len(l.rolledBack), dups)
	if dups != 0 {
		t.Fatalf("%d duplicates without any crash", dups)
	}
}
