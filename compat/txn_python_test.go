package compat

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestTxnConfluentPython (KIP-98) with confluent-kafka-python (librdkafka):
// a transactional producer commits and aborts alternately, and a
// read_committed consumer sees only the committed records while a
// read_uncommitted one sees all; two producers with the same
// transactional.id: the older is fenced and nothing it wrote is visible.
func TestTxnConfluentPython(t *testing.T) {
	requirePythonModule(t, "confluent_kafka", "python3-confluent-kafka")
	script, err := filepath.Abs("txn_confluent.py")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	py := func(args ...string) string {
		t.Helper()
		return string(run(t, opTimeout, nil, python, append([]string{"-B", script}, args...)...))
	}
	lines := func(s string) []string { return strings.Fields(s) }

	topic := topicName("txn-py")
	createTopic(t, b.Addr(), topic, 1)
	const txns = 8
	py("alternate", b.Addr(), topic, fmt.Sprint(txns))
	var committed, all []string
	for i := range txns {
		for j := range 20 {
			v := fmt.Sprintf("t%02d-%02d", i, j)
			all = append(all, v)
			if i%2 == 0 {
				committed = append(committed, v)
			}
		}
	}
	if got := lines(py("consume", b.Addr(), topic, "read_committed")); fmt.Sprint(got) != fmt.Sprint(committed) {
		t.Fatalf("read_committed: %d records %v, want the %d committed", len(got), got, len(committed))
	}
	if got := lines(py("consume", b.Addr(), topic, "read_uncommitted")); fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("read_uncommitted: %d records, want all %d", len(got), len(all))
	}

	zt := topicName("txn-py-zombie")
	createTopic(t, b.Addr(), zt, 1)
	if out := py("zombie", b.Addr(), zt); !strings.Contains(out, "fenced") {
		t.Fatalf("zombie: %q", out)
	}
	if got := lines(py("consume", b.Addr(), zt, "read_committed")); fmt.Sprint(got) != "[fresh]" {
		t.Fatalf("read_committed after fencing: %v, want [fresh]", got)
	}
}
