package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer/projection"
)

// EnvSoak set to 1 runs the full-size soak (1,000,000 events, 100 kills);
// `make consumer-soak` sets it. Unset, the same test runs scaled down.
const EnvSoak = "WEIR_CONSUMER_SOAK"

// Environment of a worker process (the test binary started by the test).
const (
	envWorker  = "WEIR_PROJECTION_WORKER"
	envBroker  = "WEIR_PROJECTION_BROKER"
	envDialect = "WEIR_PROJECTION_DIALECT"
	envDSN     = "WEIR_PROJECTION_DSN"
	envTopic   = "WEIR_PROJECTION_TOPIC"
)

// runWorker is the main of a worker process: a Runner of the balances
// projection until SIGTERM (or SIGKILL, which is the point).
func runWorker() int {
	d := projection.Dialect(atoi(os.Getenv(envDialect)))
	driver := "pgx"
	if d == projection.SQLite {
		driver = "sqlite"
	}
	db, err := sql.Open(driver, os.Getenv(envDSN))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	r, err := projection.NewRunner(projection.Config{
		Brokers: []string{os.Getenv(envBroker)}, DB: db, Dialect: d,
		Projection: newBalances(os.Getenv(envTopic), 1), Member: os.Getenv(envWorker),
		Group: groupConfig(), Logger: quiet,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestKilledAndScaledWorkers runs projection workers as separate processes
// while events stream into 12 partitions, kills workers with SIGKILL and
// scales them 1 -> 4 -> 2. At the end the read model equals the offline
// fold of the topic, each stored offset is one past the last applied record
// of its partition, and no record was applied twice (applied_v1 is unique
// per offset: a second apply by another owner would fail and park it).
func TestKilledAndScaledWorkers(t *testing.T) {
	events, kills := 12_000, 6
	if os.Getenv(EnvSoak) == "1" {
		events, kills = 1_000_000, 100
	}
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic, parts = "soak", 12
		e.createTopic(t, topic, parts)
		p := newBalances(topic, 1)
		p.create(t, d.db)
		workers := map[int]*exec.Cmd{}
		next := 0
		spawn := func() {
			next++
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envWorker+"=w"+strconv.Itoa(next), envBroker+"="+e.b.Addr(),
				envDialect+"="+strconv.Itoa(int(d.dialect)), envDSN+"="+d.dsn, envTopic+"="+topic)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			workers[next] = cmd
		}
		kill := func(id int) {
			_ = workers[id].Process.Kill()
			_ = workers[id].Wait()
			delete(workers, id)
		}
		stopAll := func() {
			for id, cmd := range workers {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
				delete(workers, id)
			}
		}
		t.Cleanup(func() {
			for id := range workers {
				kill(id)
			}
		})
		scaleTo := func(n int) {
			for len(workers) < n {
				spawn()
			}
			for id := range workers {
				if len(workers) <= n {
					break
				}
				kill(id)
			}
		}

		rng := rand.New(rand.NewPCG(1, 2))
		scaleTo(1)
		const rounds = 12
		perRound := events / rounds
		killed := 0
		var applied int64
		var all []kafka.Message
		for round := range rounds {
			n := perRound
			if round == rounds-1 {
				n = events - perRound*(rounds-1) // exactly events in all
			}
			all = append(all, e.produceMany(t, topic, parts, n, 101)...)
			switch round {
			case 3:
				scaleTo(4)
			case 8:
				scaleTo(2)
			}
			// Kill while the workers apply: wait for progress first.
			waitFor(t, 2*time.Minute, "progress in round "+strconv.Itoa(round), func() bool {
				n := appliedCount(t, d.db)
				if n > applied {
					applied = n
					return true
				}
				return false
			})
			// Spread the kills over the rounds; a killed worker is replaced.
			for killed < kills*(round+1)/rounds {
				ids := slicesOf(workers)
				kill(ids[rng.IntN(len(ids))])
				spawn()
				killed++
			}
		}
		r, err := projection.NewRunner(projection.Config{Brokers: []string{e.b.Addr()}, DB: d.db, Dialect: d.dialect, Projection: p, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := r.WaitFor(ctx, ends(parts, e, t, topic)); err != nil {
			t.Fatal(err)
		}
		stopAll()
		if got, want := readModel(t, d.db, "balances_v1"), fold(all); !maps.Equal(got, want) {
			t.Fatalf("read model differs from the fold (%d vs %d accounts)", len(got), len(want))
		}
		if parked, err := r.Parked(context.Background()); err != nil || len(parked) != 0 {
			t.Fatalf("%d parked (a double apply parks): %v", len(parked), err)
		}
		rows, err := d.db.Query(`SELECT o.part, o.next_offset, (SELECT MAX(off) FROM applied_v1 a WHERE a.part = o.part), (SELECT COUNT(*) FROM applied_v1 a WHERE a.part = o.part)
			FROM weir_projection_offsets o WHERE o.projection = 'balances' AND o.version = 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var total int64
		for rows.Next() {
			var part int
			var next, maxOff, n int64
			if err := rows.Scan(&part, &next, &maxOff, &n); err != nil {
				t.Fatal(err)
			}
			if next != maxOff+1 || n != next {
				t.Errorf("partition %d: stored %d, last applied %d, %d applied", part, next, maxOff, n)
			}
			total += n
		}
		if total != int64(len(all)) {
			t.Errorf("applied %d records, produced %d", total, len(all))
		}
		t.Logf("%d events, %d kills, %d worker processes", len(all), killed, next)
	})
}

func slicesOf(m map[int]*exec.Cmd) []int {
	out := make([]int, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

func appliedCount(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM applied_v1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
