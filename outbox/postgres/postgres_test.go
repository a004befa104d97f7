package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/weir-broker/weir/internal/pgtest"
	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/postgres"
)

// TestInitIdempotentOnDebeziumTable runs Init twice on the stock Debezium
// outbox table (with a row already in it) and writes through both
// database/sql and pgx.
func TestInitIdempotentOnDebeziumTable(t *testing.T) {
	dsn := pgtest.Start(t).DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE outbox (id uuid NOT NULL PRIMARY KEY, aggregatetype varchar(255) NOT NULL,
		aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb);
		INSERT INTO outbox VALUES ('11111111-1111-4111-8111-111111111111', 'order', '1', 'Old', '{"old":true}')`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := postgres.Init(ctx, conn, outbox.DefaultRouting()); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Write(ctx, tx, outbox.Message{AggregateType: "order", AggregateID: "1", Type: "Sql", Payload: []byte(`{"a":1}`),
		Headers: map[string]string{"traceparent": "00-x"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ptx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Write(ctx, ptx, outbox.Message{AggregateType: "order", AggregateID: "1", Type: "Pgx", Payload: []byte(`{"b":2}`)}); err != nil {
		t.Fatal(err)
	}
	if err := ptx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Write(ctx, mustBegin(t, conn), outbox.Message{AggregateID: "x"}); err == nil {
		t.Fatal("message without aggregatetype written")
	}
	pool := poolFor(t, dsn)
	src, err := postgres.NewSource(pool, outbox.DefaultRouting())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, err := src.Fetch(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
	}
	if strings.Join(types, ",") != "Old,Sql" || rows[1].Headers["traceparent"] != "00-x" || string(rows[1].Payload) != `{"a": 1}` {
		t.Fatalf("rows %+v", rows)
	}

	// Retention: a marked row is no longer fetched or pending, and a purge
	// past it deletes it (bounded by its limit).
	if err := src.MarkPublished(ctx, []int64{rows[0].Seq}); err != nil {
		t.Fatal(err)
	}
	if left, err := src.Fetch(ctx, 10); err != nil || len(left) != 1 || left[0].Type != "Sql" {
		t.Fatalf("after marking: %+v %v", left, err)
	}
	if n, err := src.Purge(ctx, time.Now().Add(-time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("purge within retention: %d %v", n, err)
	}
	if n, err := src.Purge(ctx, time.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if n, _, _, err := src.Stats(ctx); err != nil || n != 1 {
		t.Fatalf("pending %d %v", n, err)
	}
}

func mustBegin(t *testing.T, conn *pgx.Conn) pgx.Tx {
	t.Helper()
	tx, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

// TestHorizonHoldsLateCommit: a transaction that took an early xid and seq
// and is still open hides every later commit from the relay (a "last seq
// seen" reader would skip its row); once it commits, both rows come out in
// seq order.
func TestHorizonHoldsLateCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	early, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Rollback(ctx)
	if err := postgres.Write(ctx, early, outbox.Message{AggregateType: "a", AggregateID: "k", Type: "early"}); err != nil {
		t.Fatal(err)
	}
	e.write(t, outbox.Message{AggregateType: "a", AggregateID: "k2", Type: "late"})
	rows, err := e.src.Fetch(ctx, 10)
	if err != nil || len(rows) != 0 {
		t.Fatalf("fetched %+v (err %v) while an earlier transaction is open", rows, err)
	}
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err = e.src.Fetch(ctx, 10)
	if err != nil || len(rows) != 2 || rows[0].Type != "early" || rows[1].Type != "late" {
		t.Fatalf("after commit fetched %+v (err %v)", rows, err)
	}
}

// TestDebeziumParityKcat: the stock row aggregatetype='order',
// aggregateid='1' arrives on topic outbox.event.order with key 1, header id
// and the payload bytes as value, as kcat (librdkafka) reads it.
func TestDebeziumParityKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (Debian package kcat; scripts/install-test-deps.sh installs it): %v", err)
	}
	e := newEnv(t)
	b := newBroker(t)
	id := outbox.NewID()
	e.write(t, outbox.Message{ID: id, AggregateType: "order", AggregateID: "1", Type: "OrderCreated", Payload: []byte(`{"total":42}`)})
	startRelay(t, relayConfig(t, e, b))
	waitFor(t, 30*time.Second, "row published", pending(e))
	out, err := exec.Command(kcat, "-C", "-b", b.Addr(), "-t", "outbox.event.order", "-o", "beginning", "-e", "-c", "1", "-J").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	var got struct {
		Topic   string   `json:"topic"`
		Key     string   `json:"key"`
		Payload string   `json:"payload"`
		Headers []string `json:"headers"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("kcat output %q: %v", out, err)
	}
	if got.Topic != "outbox.event.order" || got.Key != "1" || got.Payload != `{"total": 42}` ||
		len(got.Headers) != 2 || got.Headers[0] != "id" || got.Headers[1] != id {
		t.Fatalf("kcat read %+v", got)
	}
}

// TestPoisonRowParksKeyRetryAfterRaisingLimit: a row over the topic's
// max.message.bytes parks its key after ParkAfter rejections while other
// keys flow; raising the limit and retrying delivers the key in order.
func TestPoisonRowParksKeyRetryAfterRaisingLimit(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t)
	ctx := context.Background()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(b.Addr()), Timeout: 10 * time.Second, Transport: tr}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: "outbox.event.big", NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "2000"}},
	}}})
	if err != nil || res.Errors["outbox.event.big"] != nil {
		t.Fatalf("create topic: %v %v", err, res)
	}
	huge := `"` + strings.Repeat("x", 5000) + `"`
	for i, p := range []string{`1`, huge, `3`} {
		e.write(t, outbox.Message{AggregateType: "big", AggregateID: "K", Type: fmt.Sprint(i), Payload: []byte(p)})
	}
	for i := range 3 {
		e.write(t, outbox.Message{AggregateType: "big", AggregateID: "L", Type: fmt.Sprint(i), Payload: []byte(`0`)})
	}
	cfg := relayConfig(t, e, b)
	cfg.ParkAfter = 2
	startRelay(t, cfg)
	waitFor(t, 30*time.Second, "K parked and L flowed", func() (bool, error) {
		n, _, parked, err := e.src.Stats(ctx)
		return n == 1 && parked == 1, err
	})
	parked, err := e.src.Parked(ctx, 10)
	if err != nil || len(parked) != 1 || parked[0].AggregateID != "K" || parked[0].Attempts != 2 || parked[0].LastError == "" {
		t.Fatalf("parked %+v err %v", parked, err)
	}
	alter, err := client.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: "outbox.event.big",
		Configs: []kafka.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: "1000000"}},
	}}})
	if err != nil || len(alter.Errors) > 0 && alter.Errors[kafka.AlterConfigsResponseResource{Type: int8(kafka.ResourceTypeTopic), Name: "outbox.event.big"}] != nil {
		t.Fatalf("alter configs: %v %+v", err, alter)
	}
	if n, err := e.src.Retry(ctx, parked[0].ID); err != nil || n != 1 {
		t.Fatalf("retry: %d %v", n, err)
	}
	waitFor(t, 30*time.Second, "K delivered", pending(e))
	got := consume(t, b.Addr(), "outbox.event.big", 1, 6)
	var k []string
	for _, m := range got {
		if m.key == "K" {
			k = append(k, m.value)
		}
	}
	if len(k) != 3 || k[0] != "1" || len(k[1]) != len(huge) || k[2] != "3" {
		t.Fatalf("key K delivered %d records: %.20q", len(k), k)
	}
}

// TestBrokerDownBacksOffAndRecovers: with the broker stopped, the relay
// backs off (the circuit opens) and keeps every row; after a restart all
// rows flow.
func TestBrokerDownBacksOffAndRecovers(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t)
	cfg := relayConfig(t, e, b)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.BreakerThreshold = 3
	startRelay(t, cfg)
	gauge := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	e.write(t, outbox.Message{AggregateType: "d", AggregateID: "1", Payload: []byte(`1`)})
	waitFor(t, 30*time.Second, "first row published", pending(e))
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 20; i++ {
		e.write(t, outbox.Message{AggregateType: "d", AggregateID: fmt.Sprint(i % 3), Payload: []byte(fmt.Sprint(i))})
	}
	rows, err := e.src.Fetch(context.Background(), 100)
	if err != nil || len(rows) != 19 {
		t.Fatalf("while the broker is down: %d rows pending (err %v), want 19", len(rows), err)
	}
	down := time.Now()
	waitFor(t, 30*time.Second, "circuit open", func() (bool, error) { return gauge("weir_outbox_circuit_open") == 1, nil })
	if soak() {
		<-time.After(time.Until(down.Add(30 * time.Second))) // the scenario: broker down for 30 s
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "rows published after restart", pending(e))
	consume(t, b.Addr(), "outbox.event.d", 1, 20)
	if gauge("weir_outbox_circuit_open") != 0 || gauge("weir_outbox_published_total") != 20 || gauge("weir_outbox_publish_failures_total") < 3 {
		t.Fatalf("after recovery: circuit %v published %v failures %v", gauge("weir_outbox_circuit_open"),
			gauge("weir_outbox_published_total"), gauge("weir_outbox_publish_failures_total"))
	}
}
