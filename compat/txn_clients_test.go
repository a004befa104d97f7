package compat

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnKcatIsolation (KIP-98): a kgo transactional producer commits and
// aborts transactions alternately; librdkafka (kcat) reading
// read_committed sees only the committed records and read_uncommitted sees
// all of them. Then a transaction is left open and the broker restarted
// with SIGTERM: the open transaction is aborted, the LSO reaches the end
// again, and a read_committed kcat -e exits (no consumer hangs) with the
// same committed records.
func TestTxnKcatIsolation(t *testing.T) {
	kcat := requireCommand(t, "kcat", "kcat")
	b := startBroker(t)
	topic := topicName("txn-kcat")
	createTopic(t, b.Addr(), topic, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID(topic), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := timeout(t)
	var committed, all []string
	txn := func(i int, commit bool) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 50 {
			v := fmt.Sprintf("t%02d-%02d", i, j)
			if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			all = append(all, v)
			if commit {
				committed = append(committed, v)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d: %v", i, err)
		}
	}
	for i := range 10 {
		txn(i, i%2 == 0)
	}
	kcatValues := func(isolation string) []string {
		t.Helper()
		var vs []string
		out := run(t, consumeTimeout, nil, kcat, "-C", "-e", "-b", b.Addr(), "-t", topic, "-p", "0",
			"-o", "beginning", "-X", "isolation.level="+isolation, "-f", `%p\t%o\t%k\t%s\t%h\n`)
		for _, r := range parseKcat(t, out) {
			vs = append(vs, r.Value)
		}
		return vs
	}
	check := func(stage string) {
		t.Helper()
		if got := kcatValues("read_committed"); fmt.Sprint(got) != fmt.Sprint(committed) {
			t.Fatalf("%s: read_committed: %d records, want %d committed", stage, len(got), len(committed))
		}
		if got := kcatValues("read_uncommitted"); fmt.Sprint(got) != fmt.Sprint(all) {
			t.Fatalf("%s: read_uncommitted: %d records, want all %d", stage, len(got), len(all))
		}
	}
	check("alternating commit and abort")

	if !b.External() {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 20 {
			v := fmt.Sprintf("open-%02d", j)
			if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatal(err)
			}
			all = append(all, v)
		}
		cl.Close()
		if err := b.Stop(); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		if err := b.Restart(); err != nil {
			t.Fatal(err)
		}
		check("restart with a transaction open")
	}
}
