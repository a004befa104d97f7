package compat

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConfluentKafkaPython round-trips messages with confluent-kafka-python
// (librdkafka, idempotent producer, read_committed consumer by default)
// through confluent_client.py.
func TestConfluentKafkaPython(t *testing.T) {
	requirePythonModule(t, "confluent_kafka", "python3-confluent-kafka")
	pythonRoundTrip(t, "confluent_client.py", "confluent-kafka-python")
}

// TestKafkaPython round-trips messages with kafka-python through
// kafka_python_client.py: the oldest request versions in the suite.
func TestKafkaPython(t *testing.T) {
	requirePythonModule(t, "kafka", "python3-kafka")
	pythonRoundTrip(t, "kafka_python_client.py", "kafka-python")
}

// pythonRoundTrip runs script's create, produce and consume steps against a
// broker and checks what consume printed.
func pythonRoundTrip(t *testing.T, script, client string) {
	t.Helper()
	path, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t)
	topic := topicName(strings.TrimSuffix(script, "_client.py"))
	step := func(cmd string) []byte {
		limit := opTimeout
		if cmd == "consume" {
			limit = consumeTimeout
		}
		return run(t, limit, nil, python, "-B", path, cmd, b.Addr(), topic, strconv.Itoa(messages), client)
	}
	step("create")
	step("produce")
	checkEndOffsets(t, b.Addr(), topic, messages)
	verify(t, client, parseJSONRecords(t, step("consume")), messagesFor(client, messages))
}

// parseJSONRecords reads client_common.emit's output.
func parseJSONRecords(t *testing.T, out []byte) []record {
	t.Helper()
	var recs []record
	for line := range strings.Lines(string(out)) {
		var j struct {
			P int32       `json:"p"`
			O int64       `json:"o"`
			K string      `json:"k"`
			V string      `json:"v"`
			H [][2]string `json:"h"`
		}
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatalf("malformed record line %q: %v", line, err)
		}
		r := record{Partition: j.P, Offset: j.O, Key: j.K, Value: j.V}
		for _, h := range j.H {
			r.Headers = append(r.Headers, header{h[0], h[1]})
		}
		recs = append(recs, r)
	}
	return recs
}
