package projection_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/consumer"
	"github.com/weir-broker/weir/consumer/projection"
	"github.com/weir-broker/weir/internal/pgtest"
	_ "modernc.org/sqlite"
)

type testDB struct {
	dialect projection.Dialect
	db      *sql.DB
	dsn     string
}

func openSQLite(t testing.TB) testDB {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "test.db") + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return testDB{projection.SQLite, db, dsn}
}

func openPostgres(t testing.TB) testDB {
	t.Helper()
	dsn := pgtest.Start(t).DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return testDB{projection.Postgres, db, dsn}
}

// eachDB runs fn against a fresh SQLite and a fresh PostgreSQL database,
// each with the runner's tables.
func eachDB(t *testing.T, fn func(t *testing.T, d testDB)) {
	t.Helper()
	run := func(t *testing.T, d testDB) {
		if err := projection.CreateTables(context.Background(), d.db, d.dialect); err != nil {
			t.Fatal(err)
		}
		fn(t, d)
	}
	t.Run("sqlite", func(t *testing.T) { run(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { run(t, openPostgres(t)) })
}

// balances is the test projection: each record is key=account,
// value=signed amount; the read model keeps the total and the count per
// account in balances_v<version>, and every applied offset in
// applied_v<version> under a unique key, so a double apply fails loudly.
type balances struct {
	topic   string
	version int
	poison  atomic.Bool // when set, the value "poison" fails Apply
	applies atomic.Int64
	block   chan struct{} // when non-nil, Apply waits for it
	// duplicatesAllowed drops the unique key of applied_v<version>, so a
	// double apply shows in the read model instead of failing.
	duplicatesAllowed bool
}

func newBalances(topic string, version int) *balances {
	b := &balances{topic: topic, version: version}
	b.poison.Store(true)
	return b
}

func (b *balances) Name() string     { return "balances" }
func (b *balances) Version() int     { return b.version }
func (b *balances) Topics() []string { return []string{b.topic} }
func (b *balances) table() string    { return fmt.Sprintf("balances_v%d", b.version) }

func (b *balances) create(t testing.TB, db *sql.DB) {
	t.Helper()
	unique := ", UNIQUE (topic, part, off)"
	if b.duplicatesAllowed {
		unique = ""
	}
	for _, q := range []string{
		fmt.Sprintf(`CREATE TABLE %s (account TEXT PRIMARY KEY, total BIGINT NOT NULL, events BIGINT NOT NULL)`, b.table()),
		fmt.Sprintf(`CREATE TABLE applied_v%d (topic TEXT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL%s)`, b.version, unique),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

var errPoison = errors.New("poison value")

func (b *balances) Apply(ctx context.Context, tx *sql.Tx, batch []kafka.Message) error {
	b.applies.Add(1)
	if b.block != nil {
		<-b.block
	}
	for _, m := range batch {
		if string(m.Value) == "poison" && b.poison.Load() {
			return errPoison
		}
		amount, err := strconv.ParseInt(string(m.Value), 10, 64)
		if err != nil {
			amount = 0 // a fixed poison counts as an event of amount 0
		}
		// Literal SQL keeps one statement text for both dialects.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO applied_v%d (topic, part, off) VALUES ('%s', %d, %d)`, b.version, m.Topic, m.Partition, m.Offset)); err != nil {
			return fmt.Errorf("double apply of %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		q := fmt.Sprintf(`INSERT INTO %s (account, total, events) VALUES ('%s', %d, 1)
			ON CONFLICT (account) DO UPDATE SET total = %s.total + excluded.total, events = %s.events + 1`, b.table(), m.Key, amount, b.table(), b.table())
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// fold is the offline fold of records: account -> (total, events).
func fold(msgs []kafka.Message) map[string][2]int64 {
	out := map[string][2]int64{}
	for _, m := range msgs {
		a, _ := strconv.ParseInt(string(m.Value), 10, 64)
		v := out[string(m.Key)]
		out[string(m.Key)] = [2]int64{v[0] + a, v[1] + 1}
	}
	return out
}

func readModel(t testing.TB, db *sql.DB, table string) map[string][2]int64 {
	t.Helper()
	rows, err := db.Query(`SELECT account, total, events FROM ` + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][2]int64{}
	for rows.Next() {
		var a string
		var v [2]int64
		if err := rows.Scan(&a, &v[0], &v[1]); err != nil {
			t.Fatal(err)
		}
		out[a] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// env is a broker and a client.
type env struct {
	b      *weirtest.Broker
	tr     *kafka.Transport
	client *kafka.Client
}

func newEnv(t testing.TB) *env {
	t.Helper()
	b := weirtest.Start(t)
	tr := &kafka.Transport{DialTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{b: b, tr: tr, client: &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr, Timeout: 10 * time.Second}}
}

func (e *env) createTopic(t testing.TB, topic string, partitions int) {
	t.Helper()
	resp, err := e.client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatal(err)
	}
}

// produce writes one record to a partition and returns it with its offset.
func (e *env) produce(t testing.TB, topic string, partition int, key, value string) kafka.Message {
	t.Helper()
	resp, err := e.client.Produce(context.Background(), &kafka.ProduceRequest{
		Topic: topic, Partition: partition, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte(key)), Value: kafka.NewBytes([]byte(value))}),
	})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return kafka.Message{Topic: topic, Partition: partition, Offset: resp.BaseOffset, Key: []byte(key), Value: []byte(value)}
}

// produceMany writes n records spread over keys and partitions (a key
// always goes to the same partition) and returns them with their offsets.
func (e *env) produceMany(t testing.TB, topic string, partitions, n, keys int) []kafka.Message {
	t.Helper()
	byPart := map[int][]kafka.Record{}
	var out []kafka.Message
	for i := range n {
		k := i % keys
		p := k % partitions
		v := strconv.Itoa(i%7 - 3)
		byPart[p] = append(byPart[p], kafka.Record{Key: kafka.NewBytes([]byte("acct" + strconv.Itoa(k))), Value: kafka.NewBytes([]byte(v))})
		out = append(out, kafka.Message{Topic: topic, Partition: p, Key: []byte("acct" + strconv.Itoa(k)), Value: []byte(v)})
	}
	for p, recs := range byPart {
		resp, err := e.client.Produce(context.Background(), &kafka.ProduceRequest{
			Topic: topic, Partition: p, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(recs...),
		})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	return out
}

// ends returns the position of the last record of each partition.
func ends(partitions int, e *env, t testing.TB, topic string) projection.Position {
	t.Helper()
	pos := projection.Position{}
	resp, err := e.client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: lastOffsets(partitions)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[topic] {
		if p.LastOffset > 0 {
			pos[consumer.TopicPartition{Topic: topic, Partition: p.Partition}] = p.LastOffset - 1
		}
	}
	return pos
}

func lastOffsets(n int) []kafka.OffsetRequest {
	out := make([]kafka.OffsetRequest, n)
	for i := range out {
		out[i] = kafka.LastOffsetOf(i)
	}
	return out
}

func groupConfig() consumer.Config {
	return consumer.Config{
		CommitInterval: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, MaxWait: 50 * time.Millisecond,
	}
}

// start runs a runner for p in the background until the test ends or the
// returned stop is called.
func start(t *testing.T, e *env, d testDB, p projection.Projection, tune func(*projection.Config)) (*projection.Runner, func() error) {
	t.Helper()
	cfg := projection.Config{Brokers: []string{e.b.Addr()}, DB: d.db, Dialect: d.dialect, Projection: p,
		Group: groupConfig(), Backoff: consumer.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Logger: quiet}
	if tune != nil {
		tune(&cfg)
	}
	r, err := projection.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-errc
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return r, stop
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
