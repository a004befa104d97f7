package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T) (*sqlite.Source, func(msgs ...outbox.Message)) {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for range 2 { // idempotent
		if err := sqlite.Init(ctx, db, outbox.DefaultRouting()); err != nil {
			t.Fatal(err)
		}
	}
	src, err := sqlite.NewSource(db, outbox.DefaultRouting())
	if err != nil {
		t.Fatal(err)
	}
	write := func(msgs ...outbox.Message) {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Write(ctx, tx, msgs...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return src, write
}

func TestFetchParkRetryDiscard(t *testing.T) {
	src, write := open(t)
	ctx := context.Background()
	write(outbox.Message{AggregateType: "a", AggregateID: "k", Type: "1", Payload: []byte{0, 1, 2}, Headers: map[string]string{"h": "v"}},
		outbox.Message{AggregateType: "a", AggregateID: "k", Type: "2"},
		outbox.Message{AggregateType: "a", AggregateID: "j", Type: "3"})
	rows, err := src.Fetch(ctx, 10)
	if err != nil || len(rows) != 3 || rows[0].Type != "1" || string(rows[0].Payload) != "\x00\x01\x02" || rows[0].Headers["h"] != "v" ||
		rows[1].Payload != nil || time.Since(rows[0].Timestamp) > time.Minute {
		t.Fatalf("fetch %+v err %v", rows, err)
	}
	if err := src.Reject(ctx, rows[0].Seq, "too large", true); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		op      func() error
		types   string
		pending int64
		parked  int64
	}{
		{"parked key waits", func() error { return nil }, "3", 2, 1},
		{"retry unparks", func() error { _, err := src.Retry(ctx, rows[0].ID); return err }, "1,2,3", 3, 0},
		{"park again", func() error { return src.Reject(ctx, rows[0].Seq, "again", true) }, "3", 2, 1},
		{"discard drops the row", func() error { _, err := src.Discard(ctx, rows[0].ID); return err }, "2,3", 2, 0},
		{"delete published", func() error { return src.Delete(ctx, []int64{rows[1].Seq, rows[2].Seq}) }, "", 0, 0},
	}
	for _, s := range steps {
		if err := s.op(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := src.Fetch(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		types := ""
		for i, r := range got {
			if i > 0 {
				types += ","
			}
			types += r.Type
		}
		pending, _, parked, err := src.Stats(ctx)
		if err != nil || types != s.types || pending != s.pending || parked != s.parked {
			t.Fatalf("%s: fetched %q pending %d parked %d (err %v), want %q %d %d", s.name, types, pending, parked, err, s.types, s.pending, s.parked)
		}
	}
}

// TestRelayToBroker publishes from SQLite through a real broker and reads
// the records back: topic, key, id header, value bytes, per-key order.
func TestRelayToBroker(t *testing.T) {
	src, write := open(t)
	b := weirtest.Start(t)
	var ids []string
	for i := range 20 {
		m := outbox.Message{ID: outbox.NewID(), AggregateType: "order", AggregateID: fmt.Sprint(i % 4), Type: "T", Payload: []byte(fmt.Sprint(i))}
		ids = append(ids, m.ID)
		write(m)
	}
	pub := outbox.NewKafkaPublisher([]string{b.Addr()}, 5*time.Second)
	defer pub.Close()
	r, err := outbox.NewRelay(outbox.Config{Source: src, Publisher: pub, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, _, err := src.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still pending", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: "outbox.event.order", MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	next := map[string]int{} // key -> index of its next expected row
	for range 20 {
		m, err := rd.ReadMessage(rctx)
		if err != nil {
			t.Fatal(err)
		}
		k := string(m.Key)
		i, ok := next[k]
		if !ok {
			i = int(k[0] - '0')
		}
		next[k] = i + 4
		if m.Topic != "outbox.event.order" || string(m.Value) != fmt.Sprint(i) ||
			len(m.Headers) == 0 || m.Headers[0].Key != "id" || string(m.Headers[0].Value) != ids[i] {
			t.Fatalf("key %s: got value %q headers %v, want row %d", k, m.Value, m.Headers, i)
		}
	}
}

// TestRetentionMarksThenPurgesInBatches: with Retain, published rows stay
// (marked, no longer fetched or pending) and Purge removes those older
// than the retention in bounded batches.
func TestRetentionMarksThenPurgesInBatches(t *testing.T) {
	src, write := open(t)
	ctx := context.Background()
	for i := range 25 {
		write(outbox.Message{AggregateType: "a", AggregateID: fmt.Sprint(i % 5), Type: "t"})
	}
	published := 0
	pub := publishFunc(func(_ context.Context, recs []outbox.Record) error { published += len(recs); return nil })
	r, err := outbox.NewRelay(outbox.Config{Source: src, Publisher: pub, Retain: time.Hour, Parallelism: 1, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, _, err := src.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows pending", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rows, err := src.Fetch(ctx, 100); err != nil || len(rows) != 0 || published != 25 {
		t.Fatalf("after publish: fetched %d (err %v), published %d", len(rows), err, published)
	}
	steps := []struct {
		before time.Time
		want   int64
	}{
		{time.Now().Add(-time.Hour), 0}, // within the retention: kept
		{time.Now().Add(time.Second), 10},
		{time.Now().Add(time.Second), 10},
		{time.Now().Add(time.Second), 5},
		{time.Now().Add(time.Second), 0},
	}
	for i, s := range steps {
		if n, err := src.Purge(ctx, s.before, 10); err != nil || n != s.want {
			t.Fatalf("purge %d: %d rows (err %v), want %d", i, n, err, s.want)
		}
	}
	if _, err := outbox.NewRelay(outbox.Config{Source: struct{ outbox.Source }{src}, Publisher: pub, Retain: time.Hour}); err == nil {
		t.Fatal("Retain accepted for a source without Retainer")
	}
}

// publishFunc adapts a function to outbox.Publisher.
type publishFunc func(context.Context, []outbox.Record) error

func (f publishFunc) Publish(ctx context.Context, recs []outbox.Record) error { return f(ctx, recs) }
func (f publishFunc) Close() error                                            { return nil }
