package inbox_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/weir-broker/weir/consumer/inbox"
	"github.com/weir-broker/weir/internal/pgtest"
	_ "modernc.org/sqlite"
)

// testDB is one database the tests run against.
type testDB struct {
	name    string
	dialect inbox.Dialect
	db      *sql.DB
}

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "test.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", pgtest.Start(t).DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// eachDB runs fn against a fresh SQLite and a fresh PostgreSQL database.
func eachDB(t *testing.T, fn func(t *testing.T, d testDB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, testDB{"sqlite", inbox.SQLite, openSQLite(t)}) })
	t.Run("postgres", func(t *testing.T) { fn(t, testDB{"postgres", inbox.Postgres, openPostgres(t)}) })
}
