package inbox_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/consumer"
	"github.com/weir-broker/weir/consumer/inbox"
)

// TestReplayFromZeroAppliesNoEffectTwice consumes a partition with the
// inbox, then replays it from offset 0 in a new group: every side effect
// exists exactly once, including records redelivered with the same id
// header (as an outbox relay does after a crash).
func TestReplayFromZeroAppliesNoEffectTwice(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		ctx := context.Background()
		b := weirtest.Start(t)
		tr := &kafka.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		const topic, n = "payments", 200
		cl := &kafka.Client{Addr: kafka.TCP(b.Addr()), Transport: tr}
		if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
			t.Fatal(err)
		}
		w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: topic, BatchTimeout: time.Millisecond, Transport: tr}
		var msgs []kafka.Message
		for i := range n {
			id := "pay-" + strconv.Itoa(i)
			msgs = append(msgs, kafka.Message{Value: []byte(id), Headers: []kafka.Header{{Key: inbox.HeaderID, Value: []byte(id)}}})
		}
		msgs = append(msgs, msgs[:20]...) // redelivered by the producer
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()

		ib, _ := inbox.New(d.dialect, "inbox")
		if err := ib.CreateTable(ctx, d.db); err != nil {
			t.Fatal(err)
		}
		if _, err := d.db.Exec(`CREATE TABLE effects (payment TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		effect := func(ctx context.Context, tx *sql.Tx, m kafka.Message) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO effects (payment) VALUES ('`+string(m.Value)+`')`)
			return err
		}
		for _, group := range []string{"first", "replay-from-0"} {
			var handled atomic.Int64
			done := make(chan struct{})
			h := ib.Handler(d.db, effect)
			c, err := consumer.New(consumer.Config{
				Brokers: []string{b.Addr()}, GroupID: group, Topics: []string{topic}, Concurrency: 1,
				HeartbeatInterval: 200 * time.Millisecond, MaxWait: 50 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Handler: func(ctx context.Context, m kafka.Message) error {
					if err := h(ctx, m); err != nil {
						return err
					}
					if handled.Add(1) == int64(len(msgs)) {
						close(done)
					}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { errc <- c.Run(runCtx) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("%s: handled %d of %d records", group, handled.Load(), len(msgs))
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			var total, distinct int
			if err := d.db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT payment) FROM effects`).Scan(&total, &distinct); err != nil {
				t.Fatal(err)
			}
			if total != n || distinct != n {
				t.Fatalf("after %s: %d effects (%d distinct), want %d once each", group, total, distinct, n)
			}
		}
	})
}
