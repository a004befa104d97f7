package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/postgres"
)

// countingPublisher counts acknowledged records and their commit-to-ack
// latency.
type countingPublisher struct {
	outbox.Publisher
	n    atomic.Int64
	mu   sync.Mutex
	lags []time.Duration
	at   chan struct{}
	want atomic.Int64
}

func (p *countingPublisher) Publish(ctx context.Context, recs []outbox.Record) error {
	if err := p.Publisher.Publish(ctx, recs); err != nil {
		return err
	}
	p.count(recs)
	return nil
}

// count records recs as acknowledged now.
func (p *countingPublisher) count(recs []outbox.Record) {
	now := time.Now()
	p.mu.Lock()
	for _, r := range recs {
		p.lags = append(p.lags, now.Sub(time.UnixMilli(r.Time)))
	}
	p.mu.Unlock()
	if p.n.Add(int64(len(recs))) >= p.want.Load() {
		select {
		case p.at <- struct{}{}:
		default:
		}
	}
}

// countingTxPublisher counts what a transactional publisher committed.
type countingTxPublisher struct {
	*outbox.FranzTxPublisher
	c *countingPublisher
}

func (p countingTxPublisher) PublishTx(ctx context.Context, recs []outbox.Record, seqs []int64) error {
	if err := p.FranzTxPublisher.PublishTx(ctx, recs, seqs); err != nil {
		return err
	}
	p.c.count(recs)
	return nil
}

// BenchmarkRelayThroughputTx compares the exactly-once path (one broker
// transaction per round with its position record) with the at-least-once
// one (parallelism 32) in the same run: each iteration commits 2,000 rows
// over 200 aggregates and waits until the relay has published them all.
func BenchmarkRelayThroughputTx(b *testing.B) {
	for _, mode := range []string{"at-least-once", "exactly-once"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnvB(b)
			br := newBroker(b)
			c := &countingPublisher{Publisher: outbox.NewKafkaPublisher([]string{br.Addr()}, 5*time.Second), at: make(chan struct{}, 1)}
			var pub outbox.Publisher = c
			if mode == "exactly-once" {
				tx := outbox.NewFranzTxPublisher([]string{br.Addr()}, "weir-outbox/bench", "weir-outbox-position.bench", "outbox", 5*time.Second)
				defer tx.Close()
				pub = countingTxPublisher{FranzTxPublisher: tx, c: c}
			}
			stop := startRelayB(b, relayConfigB(e, pub))
			defer stop()
			const rows, payload = 2000, 100
			b.SetBytes(rows * payload)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				c.want.Add(rows)
				if _, err := e.pool.Exec(context.Background(), `INSERT INTO outbox (id, aggregatetype, aggregateid, "type", payload)
					SELECT gen_random_uuid(), 'bench', 'agg-' || (i % 200), 'e', to_jsonb(repeat('x', $1 - 2))
					FROM generate_series(1, $2) i`, payload, rows); err != nil {
					b.Fatal(err)
				}
				for c.n.Load() < c.want.Load() {
					<-c.at
				}
			}
			b.ReportMetric(float64(c.n.Load())/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// pollOnly hides the source's LISTEN wake-up.
type pollOnly struct{ outbox.Source }

func (pollOnly) Wake() <-chan struct{} { return nil }

// BenchmarkRelayThroughput measures rows/s from commit to broker
// acknowledgment: each iteration commits 2,000 rows over 200 aggregates in
// one INSERT and waits until the relay has published them all.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, par := range []int{1, 32} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) {
			e := newEnvB(b)
			br := newBroker(b)
			pub := &countingPublisher{Publisher: outbox.NewKafkaPublisher([]string{br.Addr()}, 5*time.Second), at: make(chan struct{}, 1)}
			cfg := relayConfigB(e, pub)
			cfg.Parallelism = par
			stop := startRelayB(b, cfg)
			defer stop()
			const rows, payload = 2000, 100
			b.SetBytes(rows * payload)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				pub.want.Add(rows)
				if _, err := e.pool.Exec(context.Background(), `INSERT INTO outbox (id, aggregatetype, aggregateid, "type", payload)
					SELECT gen_random_uuid(), 'bench', 'agg-' || (i % 200), 'e', to_jsonb(repeat('x', $1 - 2))
					FROM generate_series(1, $2) i`, payload, rows); err != nil {
					b.Fatal(err)
				}
				for pub.n.Load() < pub.want.Load() {
					<-pub.at
				}
			}
			b.ReportMetric(float64(pub.n.Load())/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkOutboxLag writes one row per transaction at a fixed rate (500
// rows/s for 2 s per iteration) and reports the commit-to-acknowledgment
// lag percentiles, woken by LISTEN/NOTIFY or by polling alone (every 100ms).
func BenchmarkOutboxLag(b *testing.B) {
	for _, mode := range []string{"notify", "poll-100ms"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnvB(b)
			br := newBroker(b)
			pub := &countingPublisher{Publisher: outbox.NewKafkaPublisher([]string{br.Addr()}, 5*time.Second), at: make(chan struct{}, 1)}
			cfg := relayConfigB(e, pub)
			cfg.PollInterval = 100 * time.Millisecond
			if mode != "notify" {
				cfg.Source = pollOnly{e.src}
			}
			stop := startRelayB(b, cfg)
			defer stop()
			const rate, dur = 500, 2 * time.Second
			b.ReportAllocs()
			for b.Loop() {
				tick := time.NewTicker(time.Second / rate)
				for range int(dur.Seconds() * rate) {
					<-tick.C
					pub.want.Add(1)
					tx, err := e.pool.Begin(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if err := postgres.Write(context.Background(), tx, outbox.Message{AggregateType: "lag", AggregateID: "k", Type: "e", Payload: []byte(`1`)}); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				tick.Stop()
				for pub.n.Load() < pub.want.Load() {
					<-pub.at
				}
			}
			pub.mu.Lock()
			lags := slices.Clone(pub.lags)
			pub.mu.Unlock()
			slices.Sort(lags)
			pct := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
