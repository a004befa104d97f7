package broker

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceKeyed writes n records of the given key to partition 0 of topic,
// one batch each, with timestamp ts (zero: now).
func produceKeyed(t *testing.T, s *Server, topic, key string, n int, ts time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		r := &kgo.Record{Key: []byte(key), Value: fmt.Appendf(nil, "value-%04d-%s", i, strings.Repeat("x", 100)), Timestamp: ts}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// TestMaintenanceRounds: a compaction round shrinks a compacted topic
// written over many segments with one key, and a retention round deletes
// the expired segments of a delete topic; compacted topics keep their
// records through retention rounds.
func TestMaintenanceRounds(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.Maintenance.CleanerInterval, c.Maintenance.RetentionCheckInterval = -1, -1 // rounds run by hand
	})
	for _, spec := range []topicSpec{
		{name: "compacted", partitions: 1, replicationFactor: 1, configs: map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024"}},
		{name: "expiring", partitions: 1, replicationFactor: 1, configs: map[string]string{"retention.ms": "60000", "segment.bytes": "1024"}},
	} {
		if _, err := s.createTopic(spec, false); err != nil {
			t.Fatal(err)
		}
	}
	produceKeyed(t, s, "compacted", "k", 40, time.Time{})
	produceKeyed(t, s, "expiring", "k", 40, time.Now().Add(-time.Hour))
	comp, _ := s.replicas().Partition("compacted", 0)
	exp, _ := s.replicas().Partition("expiring", 0)
	before := comp.Log().Size()
	if n := s.ext.maint.retentionRound(); n == 0 {
		t.Fatal("retention round deleted nothing")
	}
	if exp.LogStartOffset() == 0 {
		t.Fatal("log start offset did not move")
	}
	if comp.LogStartOffset() != 0 {
		t.Fatal("retention touched a compacted topic")
	}
	if n := s.ext.maint.compactRound(); n == 0 {
		t.Fatal("compaction round cleaned nothing")
	}
	if after := comp.Log().Size(); after >= before {
		t.Fatalf("compacted topic %d bytes, was %d", after, before)
	}
}

// TestGroupLagMetric: /metrics exports weir_group_lag per partition.
func TestGroupLagMetric(t *testing.T) {
	s := startServer(t, func(c *Config) { c.HTTPListen = "127.0.0.1:0" })
	mustCreate(t, s, "events", 4)
	produceN(t, s, "events", 40)
	clients := consumeAll(t, s, "lagging", "events", 1, 40)
	for _, cl := range clients {
		cl.Close()
	}
	produceN(t, s, "events", 8) // 2 more per partition
	if _, err := s.GroupLag("nope"); err == nil {
		t.Fatal("GroupLag of an unknown group: no error")
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + s.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for p := range 4 {
		line := fmt.Sprintf(`weir_group_lag{group="lagging",partition="%d",topic="events"} 2`, p)
		if !strings.Contains(string(body), line) {
			t.Fatalf("metrics lack %q:\n%s", line, grepLines(string(body), "weir_group_lag"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
