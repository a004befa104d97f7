package inbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer/inbox"
)

// exampleDB opens a throwaway SQLite database.
func exampleDB() (*sql.DB, func()) {
	dir, err := os.MkdirTemp("", "inbox-example")
	if err != nil {
		panic(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// ExampleInbox_Handler makes a handler's side effect effectively-once: the
// second delivery of the same record finds its id in the inbox.
func ExampleInbox_Handler() {
	db, done := exampleDB()
	defer done()
	ctx := context.Background()
	ib, _ := inbox.New(inbox.SQLite, "inbox")
	if err := ib.CreateTable(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	db.Exec(`CREATE TABLE emails (order_id TEXT)`)
	handle := ib.Handler(db, func(ctx context.Context, tx *sql.Tx, m kafka.Message) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO emails (order_id) VALUES (?)`, string(m.Key))
		return err
	})
	m := kafka.Message{Topic: "orders", Key: []byte("o1"), Headers: []kafka.Header{{Key: "id", Value: []byte("evt-1")}}}
	for range 3 { // a retry, a rebalance, a replay...
		if err := handle(ctx, m); err != nil {
			fmt.Println(err)
		}
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM emails`).Scan(&n)
	fmt.Println("emails sent:", n)
	// Output: emails sent: 1
}

// ExampleBarrier_Do shows a compensation that overtakes its action: it is
// recorded as a null compensation and the late action is rejected.
func ExampleBarrier_Do() {
	db, done := exampleDB()
	defer done()
	ctx := context.Background()
	b, _ := inbox.NewBarrier(inbox.SQLite, "saga_barrier")
	if err := b.CreateTable(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	for _, op := range []inbox.Op{inbox.Compensate, inbox.Action, inbox.Compensate} {
		tx, _ := db.BeginTx(ctx, nil)
		out, err := b.Do(ctx, tx, "saga-42", "reserve-stock", op, func() error {
			return nil // the participant's own writes in tx go here
		})
		if err != nil {
			tx.Rollback()
			fmt.Println(err)
			return
		}
		tx.Commit()
		fmt.Println(op, out)
	}
	// Output:
	// compensate null-compensation
	// action rejected
	// compensate duplicate
}

// ExampleInbox_Claim claims message ids in the caller's transaction and
// purges old ones.
func ExampleInbox_Claim() {
	db, done := exampleDB()
	defer done()
	ctx := context.Background()
	ib, _ := inbox.New(inbox.SQLite, "inbox")
	if err := ib.CreateTable(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		tx, _ := db.BeginTx(ctx, nil)
		first, err := ib.Claim(ctx, tx, "evt-7")
		fmt.Println("first:", first, err)
		tx.Commit()
	}
	n, err := ib.Purge(ctx, db, time.Now().Add(time.Minute)) // retention: ids processed before then
	fmt.Println("purged:", n, err)
	// Output:
	// first: true <nil>
	// first: false <nil>
	// purged: 1 <nil>
}
