package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-broker/weir/internal/pgtest"
	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/sqlite"
)

func TestOutboxInitIdempotent(t *testing.T) {
	pg, err := pgtest.New() // its own server: this package's TestMain does not stop the shared one
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	dbs := map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "app.db"),
		"postgres": pg.DSN(t),
	}
	for name, url := range dbs {
		t.Run(name, func(t *testing.T) {
			for range 2 {
				r := cli(t, nil, "", "outbox", "init", "--db", url)
				if r.code != 0 || !strings.Contains(r.stdout, "outbox table outbox ready") {
					t.Fatalf("init: %+v", r)
				}
			}
		})
	}
}

func TestOutboxUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no db", []string{"outbox", "init", "--db", ""}},
		{"unknown scheme", []string{"outbox", "init", "--db", "mysql://x"}},
		{"unknown option", []string{"outbox", "init", "--db", "sqlite:x.db", "--set", "route.by.feld=type"}},
		{"not key=value", []string{"outbox", "init", "--db", "sqlite:x.db", "--set", "route.by.field"}},
		{"retry without ids", []string{"outbox", "retry", "--db", "sqlite:x.db"}},
		{"bad --transactions", []string{"outbox", "relay", "--db", "sqlite:x.db", "-b", "127.0.0.1:1", "--transactions", "maybe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := cli(t, nil, "", tt.args...); r.code != 2 {
				t.Fatalf("exit %d, want 2: %+v", r.code, r)
			}
		})
	}
}

// TestOutboxParkedRetryDiscard lists a parked row, retries it, parks and
// discards it, on SQLite.
func TestOutboxParkedRetryDiscard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	url := "sqlite:" + path
	if r := cli(t, nil, "", "outbox", "init", "--db", url); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := outbox.Message{AggregateType: "order", AggregateID: "7", Type: "Big", Payload: []byte("xyz")}
	if err := outbox.Write(ctx, tx, m); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.NewSource(db, outbox.DefaultRouting())
	if err != nil {
		t.Fatal(err)
	}
	park := func() string {
		t.Helper()
		rows, err := src.Fetch(ctx, 1)
		if err != nil || len(rows) != 1 {
			t.Fatalf("fetch %v %v", rows, err)
		}
		if err := src.Reject(ctx, rows[0].Seq, "message too large", true); err != nil {
			t.Fatal(err)
		}
		return rows[0].ID
	}
	id := park()
	r := cli(t, nil, "", "outbox", "parked", "--db", url, "--format", "json")
	var views []parkedView
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil || r.code != 0 {
		t.Fatalf("parked: %+v (%v)", r, err)
	}
	if len(views) != 1 || views[0].ID != id || views[0].AggregateID != "7" || views[0].Bytes != 3 || views[0].LastError != "message too large" {
		t.Fatalf("parked rows %+v", views)
	}
	if r := cli(t, nil, "", "outbox", "parked", "--db", url, "--format", "wide"); !strings.Contains(r.stdout, "message too large") {
		t.Fatalf("wide listing lacks the error: %q", r.stdout)
	}
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"retry", id}, 0, "retry: 1 of 1 rows"},
		{[]string{"retry", id}, 1, "retry: 0 of 1 rows"}, // no longer parked
		{[]string{"discard", "no-such-id"}, 1, "discard: 0 of 1 rows"},
	}
	for _, s := range steps {
		r := cli(t, nil, "", append([]string{"outbox", "--db", url}, s.args...)...)
		if r.code != s.code || !strings.Contains(r.stdout, s.out) {
			t.Fatalf("%v: %+v", s.args, r)
		}
	}
	park()
	if r := cli(t, nil, "", "outbox", "discard", "--db", url, id); r.code != 0 {
		t.Fatalf("discard: %+v", r)
	}
	if n, _, parked, err := src.Stats(ctx); err != nil || n != 0 || parked != 0 {
		t.Fatalf("after discard: %d pending %d parked (%v)", n, parked, err)
	}
}
