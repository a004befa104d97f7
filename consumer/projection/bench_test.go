package projection_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/weir-broker/weir/consumer/projection"
)

// benchProjection is balances under a name of its own, so each iteration
// builds a fresh read model from offset 0.
type benchProjection struct {
	*balances
	name string
}

func (p benchProjection) Name() string { return p.name }

// benchRuns numbers the read models the benchmark builds, across runs.
var benchRuns atomic.Int64

// BenchmarkProjection measures projection throughput (events/s applied into
// the read model, offsets in the same transaction) into SQLite and
// PostgreSQL: each iteration applies the same pre-produced events from
// offset 0 under a new projection name and waits for the last one.
func BenchmarkProjection(b *testing.B) {
	e := newEnv(b)
	const topic, parts, n = "bench", 4, 20_000
	e.createTopic(b, topic, parts)
	var size int64
	for _, m := range e.produceMany(b, topic, parts, n, 1000) {
		size += int64(len(m.Key) + len(m.Value))
	}
	for _, open := range []func(testing.TB) testDB{openSQLite, openPostgres} {
		d := open(b)
		if err := projection.CreateTables(context.Background(), d.db, d.dialect); err != nil {
			b.Fatal(err)
		}
		name := "sqlite"
		if d.dialect == projection.Postgres {
			name = "postgres"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size) // key and value bytes of the events
			for b.Loop() {
				i := int(benchRuns.Add(1))
				p := &balances{topic: topic, version: 100 + i}
				p.create(b, d.db)
				r, err := projection.NewRunner(projection.Config{Brokers: []string{e.b.Addr()}, DB: d.db, Dialect: d.dialect,
					Projection: benchProjection{p, "bench" + strconv.Itoa(i)}, Group: groupConfig(), Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- r.Run(ctx) }()
				if err := r.WaitFor(waitCtx(b), ends(parts, e, b, topic)); err != nil {
					b.Fatal(err)
				}
				cancel()
				if err := <-errc; err != nil {
					b.Fatal(fmt.Errorf("run: %w", err))
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
