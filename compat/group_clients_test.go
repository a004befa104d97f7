package compat

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// groupClientMessages is how many messages each phase of the kcat and
// kafka-python group tests produces.
const groupClientMessages = 600

// TestGroupKcat consumes in a group with `kcat -G` (librdkafka's balanced
// consumer, auto commit): a first run reads everything and commits on
// exit, a second run after more produces reads only the new messages.
func TestGroupKcat(t *testing.T) {
	kcat := requireCommand(t, "kcat", "kcat")
	groupClientRounds(t, "kcat", func(addr, group, topic string, n int) []byte {
		return run(t, consumeTimeout, nil, kcat, "-b", addr, "-G", group, "-X", "auto.offset.reset=earliest",
			"-X", "session.timeout.ms=6000", "-e", "-q", "-f", `{"p":%p,"o":%o,"v":"%s"}\n`, topic)
	})
}

// TestGroupKafkaPython does the same with kafka-python's
// KafkaConsumer(group_id=...), which speaks the oldest group API versions
// of the suite, through group_kafka_python.py.
func TestGroupKafkaPython(t *testing.T) {
	requirePythonModule(t, "kafka", "python3-kafka")
	groupClientRounds(t, "kafka-python", func(addr, group, topic string, n int) []byte {
		return run(t, consumeTimeout+20*time.Second, nil, python, "-B", "group_kafka_python.py", addr, group, topic, strconv.Itoa(n))
	})
}

// groupClientRounds runs two rounds of consume (which must read n new
// messages of topic as group and print them as {"p","o","v"} lines) and
// checks what each read and what the group committed.
func groupClientRounds(t *testing.T, client string, consume func(addr, group, topic string, n int) []byte) {
	t.Helper()
	b := startBroker(t)
	topic := topicName("group-" + client)
	group := groupName(client)
	createTopic(t, b.Addr(), topic, groupPartitions)
	g := newGroupRun(t, b.Addr(), group, topic)
	for round := range 2 {
		from, to := round*groupClientMessages, (round+1)*groupClientMessages
		produceSpread(t, b.Addr(), topic, from, to)
		got := map[[2]int64]string{}
		for line := range strings.Lines(string(consume(b.Addr(), group, topic, groupClientMessages))) {
			var r struct {
				P int64  `json:"p"`
				O int64  `json:"o"`
				V string `json:"v"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s round %d: malformed line %q: %v", client, round, line, err)
			}
			got[[2]int64{r.P, r.O}] = r.V
		}
		var errs []string
		for i := from; i < to; i++ {
			if v, ok := got[spreadAt(i)]; !ok || v != fmt.Sprintf("g%06d", i) {
				errs = append(errs, fmt.Sprintf("message %d at %v: got %q (present %t)", i, spreadAt(i), v, ok))
			}
		}
		for at := range got {
			if at[1] < int64(from/groupPartitions) {
				errs = append(errs, fmt.Sprintf("round %d re-read %v, below the committed offset", round, at))
			}
		}
		if len(errs) > 0 {
			slices.Sort(errs)
			t.Fatalf("%s round %d: %d problems:\n%s", client, round, len(errs), joinLines(errs[:min(len(errs), 10)]))
		}
		waitUntil(t, 10*time.Second, client+" commits", func() error { return g.committedAll(to) })
	}
	g.checkViolations()
}
