package projection_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-broker/weir/consumer"
	"github.com/weir-broker/weir/consumer/projection"
	"github.com/weir-broker/weir/internal/pgtest"
	"go.uber.org/goleak"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type shutdownM struct{ *testing.M }

func (m shutdownM) Run() int {
	code := m.M.Run()
	pgtest.Shutdown()
	return code
}

func TestMain(m *testing.M) {
	if os.Getenv(envWorker) != "" {
		os.Exit(runWorker())
	}
	goleak.VerifyTestMain(shutdownM{m})
}

// TestRunnerFoldsExactlyOnceAcrossRestarts applies a topic, stops, produces
// more, applies again with a new runner: the read model equals the offline
// fold, each stored offset is one past the last record, and nothing was
// applied twice (applied_v1 is unique per offset; a double apply would fail
// Apply and park the record).
func TestRunnerFoldsExactlyOnceAcrossRestarts(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic, parts = "accounts", 3
		e.createTopic(t, topic, parts)
		p := newBalances(topic, 1)
		p.create(t, d.db)
		all := e.produceMany(t, topic, parts, 300, 17)
		r, stop := start(t, e, d, p, nil)
		if err := r.WaitFor(waitCtx(t), ends(parts, e, t, topic)); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		all = append(all, e.produceMany(t, topic, parts, 200, 17)...)
		r2, _ := start(t, e, d, p, nil)
		pos := ends(parts, e, t, topic)
		if err := r2.WaitFor(waitCtx(t), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := readModel(t, d.db, "balances_v1"), fold(all); !maps.Equal(got, want) {
			t.Fatalf("read model differs from the fold:\n got %v\nwant %v", got, want)
		}
		parked, err := r2.Parked(context.Background())
		if err != nil || len(parked) != 0 {
			t.Fatalf("parked = %v, %v; want none", parked, err)
		}
		for tp, last := range pos {
			var next int64
			if err := d.db.QueryRow(`SELECT next_offset FROM weir_projection_offsets WHERE topic = '` + tp.Topic + `' AND part = ` + strconv.Itoa(tp.Partition)).Scan(&next); err != nil || next != last+1 {
				t.Errorf("%s stored %d, %v; want %d", tp, next, err, last+1)
			}
		}
	})
}

// TestWaitForSeesTheRow produces one record at a time and reads the row
// right after WaitFor returns: it must already count the record.
func TestWaitForSeesTheRow(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic = "rw"
		e.createTopic(t, topic, 2)
		p := newBalances(topic, 1)
		p.create(t, d.db)
		r, _ := start(t, e, d, p, nil)
		n := 100
		if os.Getenv(EnvSoak) == "1" {
			n = 10_000
		}
		for i := range n {
			m := e.produce(t, topic, i%2, "acct"+strconv.Itoa(i%2), "1")
			pos := projection.Position{{Topic: topic, Partition: m.Partition}: m.Offset}
			if err := r.WaitFor(waitCtx(t), pos); err != nil {
				t.Fatal(err)
			}
			var events int64
			if err := d.db.QueryRow(`SELECT events FROM balances_v1 WHERE account = 'acct` + strconv.Itoa(i%2) + `'`).Scan(&events); err != nil {
				t.Fatalf("iteration %d: row not visible after WaitFor: %v", i, err)
			}
			if want := int64(i/2 + 1); events != want {
				t.Fatalf("iteration %d: events = %d after WaitFor, want %d", i, events, want)
			}
		}
	})
}

// TestPoisonParksOnlyItsKey: a record Apply rejects parks its key (later
// records of the key park behind it, in order) while other keys flow;
// Retry after the fix applies them in order; Discard drops a key's records.
func TestPoisonParksOnlyItsKey(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic = "poison"
		e.createTopic(t, topic, 1)
		p := newBalances(topic, 1)
		p.create(t, d.db)
		r, _ := start(t, e, d, p, func(c *projection.Config) { c.ParkAfter = 2 })
		var last int64
		for _, kv := range [][2]string{{"a", "1"}, {"b", "1"}, {"a", "poison"}, {"b", "2"}, {"a", "5"}, {"c", "poison"}, {"b", "3"}, {"c", "1"}} {
			last = e.produce(t, topic, 0, kv[0], kv[1]).Offset
		}
		tp := consumer.TopicPartition{Topic: topic, Partition: 0}
		if err := r.WaitFor(waitCtx(t), projection.Position{tp: last}); err != nil {
			t.Fatal(err)
		}
		got := readModel(t, d.db, "balances_v1")
		if got["a"] != [2]int64{1, 1} || got["b"] != [2]int64{6, 3} || got["c"] != [2]int64{} {
			t.Fatalf("read model = %v: b must flow, a and c stop at their poison", got)
		}
		parked, err := r.Parked(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var desc []string
		for _, pk := range parked {
			desc = append(desc, string(pk.Record.Key)+"="+string(pk.Record.Value))
		}
		if fmt.Sprint(desc) != "[a=poison a=5 c=poison c=1]" || parked[0].Error == "" {
			t.Fatalf("parked = %v", desc)
		}
		if _, err := r.Retry(context.Background(), tp, []byte("a")); err == nil {
			t.Fatal("Retry before the fix: want Apply's error")
		}
		p.poison.Store(false)
		if n, err := r.Retry(context.Background(), tp, []byte("a")); err != nil || n != 2 {
			t.Fatalf("Retry = %d, %v", n, err)
		}
		if n, err := r.Discard(context.Background(), tp, []byte("c")); err != nil || n != 2 {
			t.Fatalf("Discard = %d, %v", n, err)
		}
		// Later records of a and c flow again.
		m := e.produce(t, topic, 0, "a", "10")
		e.produce(t, topic, 0, "c", "7")
		if err := r.WaitFor(waitCtx(t), projection.Position{tp: m.Offset + 1}); err != nil {
			t.Fatal(err)
		}
		got = readModel(t, d.db, "balances_v1")
		if got["a"] != [2]int64{16, 4} || got["c"] != [2]int64{7, 1} {
			t.Fatalf("after retry/discard: %v", got)
		}
		if parked, _ := r.Parked(context.Background()); len(parked) != 0 {
			t.Fatalf("still parked: %v", parked)
		}
	})
}

// TestRebuildCutsOverAtLagZero builds version 2 while version 1 serves and
// readers read whatever version serves: no read fails, and when the cutover
// returns, version 2 has applied everything up to the high watermarks read
// at that moment.
func TestRebuildCutsOverAtLagZero(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic, parts = "rebuild", 2
		e.createTopic(t, topic, parts)
		v1, v2 := newBalances(topic, 1), newBalances(topic, 2)
		v1.create(t, d.db)
		v2.create(t, d.db)
		all := e.produceMany(t, topic, parts, 400, 9)
		r1, _ := start(t, e, d, v1, nil)
		if err := r1.WaitFor(waitCtx(t), ends(parts, e, t, topic)); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var reads, failed atomic.Int64
		var firstErr atomic.Value
		wg.Go(func() { // readers
			for ctx.Err() == nil {
				v, err := projection.Serving(ctx, d.db, d.dialect, "balances")
				if err == nil {
					var n int64
					err = d.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM balances_v%d`, v)).Scan(&n)
				}
				if err != nil && ctx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				reads.Add(1)
			}
		})
		var produced sync.Mutex
		wg.Go(func() { // writes continue during the rebuild
			for i := 0; i < 5 && ctx.Err() == nil; i++ {
				msgs := e.produceMany(t, topic, parts, 20, 9)
				produced.Lock()
				all = append(all, msgs...)
				produced.Unlock()
			}
		})
		if v, _ := projection.Serving(ctx, d.db, d.dialect, "balances"); v != 1 {
			t.Fatalf("serving %d before the rebuild, want 1", v)
		}
		r2, _ := start(t, e, d, v2, nil)
		before := ends(parts, e, t, topic)
		if err := r2.CutoverWhenCaughtUp(waitCtx(t)); err != nil {
			t.Fatal(err)
		}
		// Lag 0 at the cutover: v2's stored offsets reached the end offsets
		// read at the switch, so at least those read before it started.
		for tp, last := range before {
			var next int64
			q := fmt.Sprintf(`SELECT next_offset FROM weir_projection_offsets WHERE projection = 'balances' AND version = 2 AND topic = '%s' AND part = %d`, tp.Topic, tp.Partition)
			if err := d.db.QueryRow(q).Scan(&next); err != nil || next <= last {
				t.Fatalf("cut over with %s at %d (%v), end was %d", tp, next, err, last+1)
			}
		}
		if v, err := projection.Serving(ctx, d.db, d.dialect, "balances"); err != nil || v != 2 {
			t.Fatalf("serving %d, %v after the cutover, want 2", v, err)
		}
		cancel()
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of %d reads failed; first: %v", failed.Load(), reads.Load(), firstErr.Load())
		}
		if reads.Load() == 0 {
			t.Fatal("no reads ran")
		}
		if err := r2.WaitFor(waitCtx(t), ends(parts, e, t, topic)); err != nil {
			t.Fatal(err)
		}
		if got, want := readModel(t, d.db, "balances_v2"), fold(all); !maps.Equal(got, want) {
			t.Fatalf("v2 differs from the fold:\n got %v\nwant %v", got, want)
		}
	})
}

// TestHeartbeatTellsStalledFromIdle: an idle runner keeps beating; one
// stuck in Apply stops beating after StallAfter while its progress stays.
func TestHeartbeatTellsStalledFromIdle(t *testing.T) {
	d := openSQLite(t)
	if err := projection.CreateTables(context.Background(), d.db, d.dialect); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	const topic = "live"
	e.createTopic(t, topic, 1)
	p := newBalances(topic, 1)
	p.create(t, d.db)
	r, _ := start(t, e, d, p, func(c *projection.Config) {
		c.HeartbeatInterval = 20 * time.Millisecond
		c.StallAfter = 200 * time.Millisecond
	})
	alive := func(within time.Duration) bool {
		h, err := r.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h.Alive(time.Now(), within)
	}
	waitFor(t, 20*time.Second, "an idle runner beats", func() bool { return alive(100 * time.Millisecond) })
	block := make(chan struct{})
	p.block = block
	e.produce(t, topic, 0, "a", "1")
	waitFor(t, 20*time.Second, "the stuck runner stops beating", func() bool { return !alive(300 * time.Millisecond) })
	close(block)
	waitFor(t, 20*time.Second, "the runner beats again", func() bool { return alive(100 * time.Millisecond) })
	h, err := r.Health(context.Background())
	if err != nil || h.LastProgress.IsZero() {
		t.Fatalf("Health = %+v, %v; want progress", h, err)
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}
