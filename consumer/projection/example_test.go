package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/consumer"
	"github.com/weir-broker/weir/consumer/projection"
)

// exampleSetup starts a broker with a one-partition topic and opens a
// SQLite database with the runner's tables.
func exampleSetup(topic string) (*weirtest.Broker, *kafka.Client, *sql.DB, func()) {
	b, err := weirtest.New()
	if err != nil {
		panic(err)
	}
	tr := &kafka.Transport{}
	cl := &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr}
	if _, err := cl.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "projection-example")
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "read.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err := projection.CreateTables(context.Background(), db, projection.SQLite); err != nil {
		panic(err)
	}
	return b, cl, db, func() { db.Close(); os.RemoveAll(dir); tr.CloseIdleConnections(); b.Close() }
}

// produceOne writes one record and returns its position.
func produceOne(cl *kafka.Client, topic, key, value string) projection.Position {
	resp, err := cl.Produce(context.Background(), &kafka.ProduceRequest{Topic: topic, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte(key)), Value: kafka.NewBytes([]byte(value))})})
	if err != nil {
		panic(err)
	}
	return projection.Position{{Topic: topic}: resp.BaseOffset}
}

// ExampleRunner builds a read model and reads its own write with WaitFor.
func ExampleRunner() {
	b, cl, db, done := exampleSetup("deposits")
	defer done()
	p := newBalances("deposits", 1)
	db.Exec(`CREATE TABLE balances_v1 (account TEXT PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL)`)
	db.Exec(`CREATE TABLE applied_v1 (topic TEXT, part INTEGER, off BIGINT, UNIQUE (topic, part, off))`)
	r, err := projection.NewRunner(projection.Config{Brokers: []string{b.Addr()}, DB: db, Dialect: projection.SQLite, Projection: p, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()

	produceOne(cl, "deposits", "alice", "30")
	pos := produceOne(cl, "deposits", "alice", "12")
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(wctx, pos); err != nil { // the row is visible now
		fmt.Println(err)
	}
	var total int
	db.QueryRow(`SELECT total FROM balances_v1 WHERE account = 'alice'`).Scan(&total)
	fmt.Println("alice:", total)
	stop()
	if err := <-errc; err != nil {
		fmt.Println(err)
	}
	// Output: alice: 42
}

// ExampleRunner_CutoverWhenCaughtUp rebuilds version 2 of a projection next
// to version 1 and switches readers to it at lag 0.
func ExampleRunner_CutoverWhenCaughtUp() {
	b, cl, db, done := exampleSetup("deposits")
	defer done()
	for v := 1; v <= 2; v++ {
		db.Exec(fmt.Sprintf(`CREATE TABLE balances_v%d (account TEXT PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL)`, v))
		db.Exec(fmt.Sprintf(`CREATE TABLE applied_v%d (topic TEXT, part INTEGER, off BIGINT, UNIQUE (topic, part, off))`, v))
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	run := func(v int) *projection.Runner {
		r, err := projection.NewRunner(projection.Config{Brokers: []string{b.Addr()}, DB: db, Dialect: projection.SQLite, Projection: newBalances("deposits", v), Logger: quiet})
		if err != nil {
			panic(err)
		}
		go r.Run(ctx)
		return r
	}
	v1 := run(1)
	pos := produceOne(cl, "deposits", "bob", "5")
	v1.WaitFor(ctx, pos)
	serving, _ := projection.Serving(ctx, db, projection.SQLite, "balances")
	fmt.Println("serving version", serving)

	v2 := run(2) // builds balances_v2 from offset 0 while v1 serves
	if err := v2.CutoverWhenCaughtUp(ctx); err != nil {
		fmt.Println(err)
	}
	serving, _ = projection.Serving(ctx, db, projection.SQLite, "balances")
	var total int
	db.QueryRow(fmt.Sprintf(`SELECT total FROM balances_v%d WHERE account = 'bob'`, serving)).Scan(&total)
	fmt.Println("serving version", serving, "bob:", total)
	// Output:
	// serving version 1
	// serving version 2 bob: 5
}

// ExampleRunner_Retry parks a poison record, then applies it after the fix.
func ExampleRunner_Retry() {
	b, cl, db, done := exampleSetup("deposits")
	defer done()
	db.Exec(`CREATE TABLE balances_v1 (account TEXT PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL)`)
	db.Exec(`CREATE TABLE applied_v1 (topic TEXT, part INTEGER, off BIGINT, UNIQUE (topic, part, off))`)
	p := newBalances("deposits", 1)
	r, _ := projection.NewRunner(projection.Config{Brokers: []string{b.Addr()}, DB: db, Dialect: projection.SQLite, Projection: p,
		ParkAfter: 1, Logger: quiet})
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	produceOne(cl, "deposits", "carol", "poison")
	pos := produceOne(cl, "deposits", "carol", "3") // parks behind the poison
	r.WaitFor(ctx, pos)
	parked, _ := r.Parked(ctx)
	fmt.Println("parked:", len(parked))

	p.poison.Store(false) // the fix: the projection now accepts the event
	n, err := r.Retry(ctx, consumer.TopicPartition{Topic: "deposits"}, []byte("carol"))
	fmt.Println("retried:", n, err)
	stop()
	<-errc
	// Output:
	// parked: 2
	// retried: 2 <nil>
}

// ExampleHealth_Alive tells a stalled projection from an idle one.
func ExampleHealth_Alive() {
	now := time.Now()
	idle := projection.Health{Members: []projection.Member{{Member: "w1", BeatAt: now.Add(-time.Second)}}, LastProgress: now.Add(-time.Hour)}
	stalled := projection.Health{Members: []projection.Member{{Member: "w1", BeatAt: now.Add(-time.Minute), BusySince: now.Add(-2 * time.Minute)}}, LastProgress: now.Add(-2 * time.Minute)}
	fmt.Println("idle alive:", idle.Alive(now, 10*time.Second))
	fmt.Println("stalled alive:", stalled.Alive(now, 10*time.Second))
	// Output:
	// idle alive: true
	// stalled alive: false
}
