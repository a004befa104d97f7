package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer/inbox"
	"github.com/weir-broker/weir/internal/pgtest"
	"go.uber.org/goleak"
)

// shutdownM stops the package's PostgreSQL server after the tests, before
// goleak looks for goroutines.
type shutdownM struct{ *testing.M }

func (m shutdownM) Run() int {
	code := m.M.Run()
	pgtest.Shutdown()
	return code
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(shutdownM{m})
}

func TestMessageID(t *testing.T) {
	tests := []struct {
		name string
		m    kafka.Message
		want string
	}{
		{"header", kafka.Message{Topic: "t", Partition: 1, Offset: 9, Headers: []kafka.Header{{Key: "x", Value: []byte("y")}, {Key: "id", Value: []byte("abc")}}}, "abc"},
		{"no header", kafka.Message{Topic: "t", Partition: 1, Offset: 9}, "t/1/9"},
		{"empty header", kafka.Message{Topic: "t", Partition: 0, Offset: 0, Headers: []kafka.Header{{Key: "id"}}}, "t/0/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := inbox.MessageID(tc.m); got != tc.want {
				t.Fatalf("MessageID = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "a b", "x;drop table y", "1abc", "a.b.c"} {
		if _, err := inbox.New(inbox.SQLite, name); !errors.Is(err, inbox.ErrBadTable) {
			t.Errorf("New(%q) = %v, want ErrBadTable", name, err)
		}
	}
	if _, err := inbox.New(0, "ok"); !errors.Is(err, inbox.ErrBadDialect) {
		t.Errorf("New(dialect 0) = %v, want ErrBadDialect", err)
	}
	if _, err := inbox.New(inbox.Postgres, "app.inbox"); err != nil {
		t.Errorf("New(app.inbox) = %v", err)
	}
}

func TestInboxClaimAndPurge(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		ctx := context.Background()
		ib, err := inbox.New(d.dialect, "inbox")
		if err != nil {
			t.Fatal(err)
		}
		if err := ib.CreateTable(ctx, d.db); err != nil {
			t.Fatal(err)
		}
		if err := ib.CreateTable(ctx, d.db); err != nil {
			t.Fatalf("second CreateTable: %v", err)
		}
		// A claim in a rolled-back transaction does not count.
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if first, err := ib.Claim(ctx, tx, "m1"); err != nil || !first {
			t.Fatalf("Claim in tx = %v, %v", first, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, false, false} {
			tx, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			first, err := ib.Claim(ctx, tx, "m1")
			if err != nil || first != want {
				t.Fatalf("claim %d = %v, %v; want %v", i, first, err, want)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := ib.Purge(ctx, d.db, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("Purge of old ids = %d, %v; want 0", n, err)
		}
		if n, err := ib.Purge(ctx, d.db, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1", n, err)
		}
		if first, err := ib.Claim(ctx, d.db, "m1"); err != nil || !first {
			t.Fatalf("claim after purge = %v, %v; want a first claim", first, err)
		}
	})
}

func TestInboxHandlerSkipsDuplicates(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		ctx := context.Background()
		ib, _ := inbox.New(d.dialect, "inbox")
		if err := ib.CreateTable(ctx, d.db); err != nil {
			t.Fatal(err)
		}
		if _, err := d.db.ExecContext(ctx, `CREATE TABLE effects (id TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		fail := true
		h := ib.Handler(d.db, func(ctx context.Context, tx *sql.Tx, m kafka.Message) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO effects (id) VALUES ('`+string(m.Value)+`')`); err != nil {
				return err
			}
			if fail {
				fail = false
				return errors.New("first attempt fails after its write")
			}
			return nil
		})
		m := kafka.Message{Topic: "t", Offset: 3, Value: []byte("v")}
		if err := h(ctx, m); err == nil {
			t.Fatal("first call: want the handler's error")
		}
		for range 3 {
			if err := h(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM effects`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("effects = %d, %v; want exactly 1", n, err)
		}
	})
}
