package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"go.yaml.in/yaml/v3"
)

// findTopic returns the list entry named name.
func findTopic(list []topicSummary, name string) (topicSummary, bool) {
	i := slices.IndexFunc(list, func(s topicSummary) bool { return s.Name == name })
	if i < 0 {
		return topicSummary{}, false
	}
	return list[i], true
}

func configValue(d topicDescription, name string) (string, bool) {
	for _, c := range d.Configs {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

func TestTopicLifecycle(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)

	r := mustCLI(t, b, "", "topic", "create", topic, "-p", "3", "-c", "retention.ms=3600000")
	if !strings.Contains(r.stdout, topic) || !strings.Contains(r.stdout, "OK") || !strings.HasPrefix(r.stdout, "TOPIC") {
		t.Fatalf("create output:\n%s", r.stdout)
	}

	again := cli(t, b, "", "topic", "create", topic, "--format", "json")
	if again.code != 1 {
		t.Fatalf("creating an existing topic: exit %d, want 1", again.code)
	}
	oneLineError(t, again, true)
	var res []topicResult
	decodeJSON(t, again, &res)
	if len(res) != 1 || res[0].OK || res[0].Topic != topic || res[0].Error == "" {
		t.Fatalf("create again result: %+v", res)
	}

	var list []topicSummary
	decodeJSON(t, mustCLI(t, b, "", "topic", "list", "--format", "json"), &list)
	if s, ok := findTopic(list, topic); !ok || s.Partitions != 3 || s.Replicas < 1 {
		t.Fatalf("topic list: %+v", list)
	}
	text := mustCLI(t, b, "", "topic", "list").stdout
	if !strings.HasPrefix(text, "NAME") || !strings.Contains(text, topic) {
		t.Fatalf("topic list text:\n%s", text)
	}

	var d topicDescription
	decodeJSON(t, mustCLI(t, b, "", "topic", "describe", topic, "--format", "json"), &d)
	if d.Name != topic || len(d.Partitions) != 3 {
		t.Fatalf("describe: %+v", d)
	}
	for i, p := range d.Partitions {
		if p.Partition != i || len(p.Replicas) == 0 || p.HighWatermark != 0 {
			t.Fatalf("describe partition %d: %+v", i, p)
		}
	}
	if v, ok := configValue(d, "retention.ms"); !ok || v != "3600000" {
		t.Fatalf("retention.ms = %q (present %t), want 3600000", v, ok)
	}

	mustCLI(t, b, "", "topic", "alter-config", topic, "--set", "retention.ms=7200000")
	var y topicDescription
	if err := yaml.Unmarshal([]byte(mustCLI(t, b, "", "topic", "describe", topic, "--format", "yaml").stdout), &y); err != nil {
		t.Fatalf("describe yaml: %v", err)
	}
	if v, _ := configValue(y, "retention.ms"); v != "7200000" {
		t.Fatalf("after alter-config retention.ms = %q, want 7200000", v)
	}

	mustCLI(t, b, "", "topic", "alter-config", topic, "--delete", "retention.ms", "--format", "json")
	decodeJSON(t, mustCLI(t, b, "", "topic", "describe", topic, "--format", "json"), &d)
	for _, c := range d.Configs {
		if c.Name == "retention.ms" && (c.Value == "7200000" || c.Source == "dynamic-topic") {
			t.Fatalf("retention.ms still set after --delete: %+v", c)
		}
	}

	mustCLI(t, b, "", "topic", "add-partitions", topic, "-n", "2")
	decodeJSON(t, mustCLI(t, b, "", "topic", "describe", topic, "--format", "json"), &d)
	if len(d.Partitions) != 5 {
		t.Fatalf("after add-partitions: %d partitions, want 5", len(d.Partitions))
	}
	wide := mustCLI(t, b, "", "topic", "describe", topic, "--format", "wide").stdout
	for _, want := range []string{"SUMMARY", "CONFIGS", "PARTITIONS", "HIGH-WATERMARK", "retention.ms"} {
		if !strings.Contains(wide, want) {
			t.Fatalf("describe wide lacks %q:\n%s", want, wide)
		}
	}

	mustCLI(t, b, "", "topic", "delete", topic)
	decodeJSON(t, mustCLI(t, b, "", "topic", "list", "--format", "json"), &list)
	if _, ok := findTopic(list, topic); ok {
		t.Fatalf("topic %s still listed after delete", topic)
	}
	gone := cli(t, b, "", "topic", "describe", topic)
	if gone.code != 1 {
		t.Fatalf("describe deleted topic: exit %d, want 1", gone.code)
	}
	oneLineError(t, gone, false)
}

func TestClusterInfo(t *testing.T) {
	b := weirtest.Start(t)
	var info clusterInfo
	decodeJSON(t, mustCLI(t, b, "", "cluster", "info", "--format", "json"), &info)
	if len(info.Brokers) == 0 {
		t.Fatalf("no brokers: %+v", info)
	}
	port := b.Addr()[strings.LastIndexByte(b.Addr(), ':')+1:]
	found := false
	for _, br := range info.Brokers {
		found = found || strconv.Itoa(br.Port) == port
	}
	if !found {
		t.Fatalf("no broker advertises port %s: %+v", port, info.Brokers)
	}
	text := mustCLI(t, b, "", "cluster", "info").stdout
	for _, want := range []string{"CLUSTER", "BROKERS", "HOST", port} {
		if !strings.Contains(text, want) {
			t.Fatalf("cluster info text lacks %q:\n%s", want, text)
		}
	}
	var y clusterInfo
	if err := yaml.Unmarshal([]byte(mustCLI(t, b, "", "cluster", "info", "--format", "yaml").stdout), &y); err != nil || len(y.Brokers) != len(info.Brokers) {
		t.Fatalf("cluster info yaml: %v %+v", err, y)
	}
}

func TestTopicCompletion(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic)
	r := mustCLI(t, nil, "", "__complete", "topic", "describe", "-b", b.Addr(), topic[:len(topic)-2])
	if !strings.Contains(r.stdout, topic+"\n") {
		t.Fatalf("completion lacks %s:\n%s", topic, r.stdout)
	}
}

// TestExitCodes checks the exit contract: 2 for usage errors, 1 for
// failures, one "weir: " line on stderr either way.
func TestExitCodes(t *testing.T) {
	b := weirtest.Start(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		results bool // per-topic results are printed on stdout as well
	}{
		{"unknown flag", []string{"topic", "list", "--nope"}, 2, false},
		{"missing topic", []string{"topic", "create"}, 2, false},
		{"missing verb", []string{"topic"}, 2, false},
		{"bad format", []string{"topic", "list", "--format", "xml"}, 2, false},
		{"bad config", []string{"topic", "create", "x", "-c", "novalue"}, 2, false},
		{"bad offset", []string{"consume", "t", "-o", "yesterday"}, 2, false},
		{"bad acks", []string{"produce", "t", "--acks", "7"}, 2, false},
		{"bad fields", []string{"consume", "t", "--fields", "colour"}, 2, false},
		{"bad bench client", []string{"bench", "produce", "--client", "nope"}, 2, false},
		{"kafka-go idempotent", []string{"bench", "produce", "--client", "kafka-go", "--idempotent"}, 2, false},
		{"bad broker address", []string{"cluster", "info", "-b", "nohostport"}, 2, false},
		{"describe unknown topic", []string{"topic", "describe", "no-such-topic-" + uniqueTopic(t)}, 1, false},
		{"consume unknown topic", []string{"consume", "no-such-topic-" + uniqueTopic(t), "-e"}, 1, false},
		{"bench consume empty topic", []string{"bench", "consume", "-t", "no-such-topic-" + uniqueTopic(t)}, 1, false},
		{"add partitions to unknown topic", []string{"topic", "add-partitions", "no-such-topic-" + uniqueTopic(t), "-n", "1"}, 1, false},
		{"alter nothing", []string{"topic", "alter-config", "t"}, 2, false},
		{"replication factor above the broker count", []string{"topic", "create", uniqueTopic(t), "-r", "9"}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, b, "x\n", tc.args...)
			if r.code != tc.code {
				t.Fatalf("weir %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), r.code, tc.code, r.stderr)
			}
			oneLineError(t, r, tc.results)
		})
	}
}
