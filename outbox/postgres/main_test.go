package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/internal/pgtest"
	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/postgres"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Shutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// soak reports whether the full-size scenarios run (WEIR_OUTBOX_SOAK=1,
// `make outbox-soak`); by default they run scaled down.
func soak() bool { return os.Getenv("WEIR_OUTBOX_SOAK") != "" }

// env is a database with an initialised outbox table.
type env struct {
	dsn  string
	pool *pgxpool.Pool
	src  *postgres.Source
}

func newEnv(t *testing.T) *env { return newEnvB(t) }

// newEnvB is newEnv for tests and benchmarks.
func newEnvB(t testing.TB) *env {
	t.Helper()
	dsn := pgtest.Start(t).DSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Init(ctx, pool, outbox.DefaultRouting()); err != nil {
		t.Fatal(err)
	}
	src, err := postgres.NewSource(pool, outbox.DefaultRouting())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return &env{dsn: dsn, pool: pool, src: src}
}

// write commits msgs in one transaction.
func (e *env) write(t *testing.T, msgs ...outbox.Message) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Write(ctx, tx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// startRelay runs a relay in the background until the test ends (or the
// returned stop is called).
func startRelay(t *testing.T, cfg outbox.Config) (stop func()) { return startRelayB(t, cfg) }

// startRelayB is startRelay for tests and benchmarks.
func startRelayB(t testing.TB, cfg outbox.Config) (stop func()) {
	t.Helper()
	r, err := outbox.NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
			cfg.Publisher.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// msg is a consumed record.
type msg struct {
	topic, key, id, value string
	partition             int
	offset                int64
	headers               []kafka.Header
}

// consume reads topic's partitions from the start until want distinct ids
// arrived (or fails after a deadline), and returns every record read, with
// duplicates, in partition-offset order.
func consume(t *testing.T, addr, topic string, partitions, want int) []msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		out  []msg
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	var closeOnce sync.Once
	for p := range partitions {
		wg.Go(func() {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p,
				MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			rctx, rcancel := context.WithCancel(ctx)
			defer rcancel()
			go func() {
				select {
				case <-done:
				case <-rctx.Done():
				}
				rcancel()
			}()
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					return
				}
				g := msg{topic: m.Topic, key: string(m.Key), value: string(m.Value), partition: m.Partition, offset: m.Offset, headers: m.Headers}
				for _, h := range m.Headers {
					if h.Key == "id" {
						g.id = string(h.Value)
					}
				}
				mu.Lock()
				out = append(out, g)
				seen[g.id] = true
				if len(seen) >= want {
					closeOnce.Do(func() { close(done) })
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	closeOnce.Do(func() { close(done) })
	if len(seen) < want {
		t.Fatalf("consumed %d distinct ids from %s, want %d", len(seen), topic, want)
	}
	slices.SortFunc(out, func(a, b msg) int {
		if a.partition != b.partition {
			return a.partition - b.partition
		}
		return int(a.offset - b.offset)
	})
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pending(e *env) func() (bool, error) {
	return func() (bool, error) {
		n, _, _, err := e.src.Stats(context.Background())
		return n == 0, err
	}
}

func newBroker(t testing.TB, opts ...weirtest.Option) *weirtest.Broker {
	t.Helper()
	return weirtest.Start(t, opts...)
}

func relayConfig(t *testing.T, e *env, b *weirtest.Broker) outbox.Config {
	cfg := relayConfigB(e, outbox.NewKafkaPublisher([]string{b.Addr()}, 5*time.Second))
	cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil))
	return cfg
}

// relayConfigB is the relay configuration of the tests, without logging.
func relayConfigB(e *env, pub outbox.Publisher) outbox.Config {
	return outbox.Config{
		Source: e.src, Publisher: pub,
		PollInterval: 200 * time.Millisecond, Backoff: outbox.Backoff{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond},
	}
}

func poolFor(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// tWriter sends log lines to the test log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
