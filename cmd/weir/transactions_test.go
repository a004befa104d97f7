package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// TestTransactionsListDescribe: a kgo producer with an open transaction
// shows up as Ongoing with its partition; after the commit it is
// CompleteCommit with none; unknown ids and states are errors.
func TestTransactionsListDescribe(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("cli-txn"), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var list []txnSummary
	decodeJSON(t, mustCLI(t, b, "", "transactions", "list", "--format", "json"), &list)
	if len(list) != 1 || list[0].TransactionalID != "cli-txn" || list[0].State != "Ongoing" || list[0].ProducerID < 0 {
		t.Fatalf("list: %+v", list)
	}
	var ds []txnDescription
	decodeJSON(t, mustCLI(t, b, "", "transactions", "describe", "cli-txn", "--format", "json"), &ds)
	if len(ds) != 1 || ds[0].State != "Ongoing" || ds[0].TimeoutMs != 30000 || ds[0].Started == "" ||
		len(ds[0].Partitions) != 1 || ds[0].Partitions[0] != topic+"-0" {
		t.Fatalf("describe: %+v", ds)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	var after []txnDescription
	decodeJSON(t, mustCLI(t, b, "", "transactions", "describe", "cli-txn", "--format", "json"), &after)
	if len(after) != 1 || after[0].State != "CompleteCommit" || len(after[0].Partitions) != 0 || after[0].Started != "" {
		t.Fatalf("describe after commit: %+v", after)
	}
	var ongoing []txnSummary
	decodeJSON(t, mustCLI(t, b, "", "transactions", "list", "--state", "Ongoing", "--format", "json"), &ongoing)
	if len(ongoing) != 0 {
		t.Fatalf("Ongoing after the commit: %+v", ongoing)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown id", []string{"transactions", "describe", "nobody"}, 1},
		{"unknown state", []string{"transactions", "list", "--state", "Sleeping"}, 2},
		{"no verb", []string{"transactions"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := cli(t, b, "", tc.args...); r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
		})
	}
}
