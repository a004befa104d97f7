package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// describeJSON runs `group describe G --format json`.
func describeJSON(t *testing.T, b *weirtest.Broker, group string) groupDescription {
	t.Helper()
	var d groupDescription
	decodeJSON(t, mustCLI(t, b, "", "group", "describe", group, "--format", "json"), &d)
	return d
}

// committedSum is the sum of the group's committed offsets on topic, and
// how many partitions have one.
func committedSum(d groupDescription, topic string) (sum int64, n int) {
	for _, o := range d.Offsets {
		if o.Topic == topic && o.CommittedOffset >= 0 {
			sum += o.CommittedOffset
			n++
		}
	}
	return sum, n
}

// waitFor polls cond every 50 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		<-tick.C
	}
}

// TestGroupConsumeDescribeResetDelete drives the group commands end to end:
// consume -g commits what it printed, a second member run resumes there,
// describe and list report offsets and lag, reset-offsets is a dry run
// until --execute, and both it and delete are refused while a member is
// active.
func TestGroupConsumeDescribeResetDelete(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	group := "g-" + topic
	mustCLI(t, b, "", "topic", "create", topic, "-p", "3")
	for p := range 3 {
		var lines []string
		for i := range 10 {
			lines = append(lines, fmt.Sprintf("v%02d", 10*p+i))
		}
		mustCLI(t, b, strings.Join(lines, "\n")+"\n", "produce", topic, "-p", fmt.Sprint(p))
	}

	first := consumed(t, mustCLI(t, b, "", "consume", topic, "-g", group, "-n", "12", "--format", "json"))
	if len(first) != 12 {
		t.Fatalf("consume -g -n 12 printed %d records", len(first))
	}
	d := describeJSON(t, b, group)
	if d.State != "Empty" || len(d.Members) != 0 || d.ProtocolType != "consumer" {
		t.Fatalf("after consume -g: state %q, %d members, protocol type %q", d.State, len(d.Members), d.ProtocolType)
	}
	// Every printed record was committed, and nothing more: per partition,
	// records come in offset order from 0.
	sum, n := committedSum(d, topic)
	if sum != 12 {
		t.Fatalf("committed offsets sum to %d after printing 12 records: %+v", sum, d.Offsets)
	}
	// Partitions without a commit have no lag (Kafka's tool shows "-").
	if d.TotalLag != int64(10*n)-12 {
		t.Fatalf("total lag %d, want %d: %+v", d.TotalLag, 10*n-12, d.Offsets)
	}
	for _, o := range d.Offsets {
		if o.LogEndOffset != 10 || (o.Lag != nil && *o.Lag != o.LogEndOffset-o.CommittedOffset) {
			t.Fatalf("offset row %+v: want log end 10 and lag = end - committed", o)
		}
	}

	// A second run resumes from the commits: together the two runs saw
	// every record exactly once.
	second := consumed(t, mustCLI(t, b, "", "consume", topic, "-g", group, "-n", "18", "--format", "json"))
	var all []string
	for _, r := range append(first, second...) {
		all = append(all, *r.Value)
	}
	slices.Sort(all)
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("v%02d", i))
	}
	if !slices.Equal(all, want) {
		t.Fatalf("two group runs read %v, want each of %v once", all, want)
	}
	if d := describeJSON(t, b, group); d.TotalLag != 0 {
		t.Fatalf("lag after reading everything: %d", d.TotalLag)
	}

	// Shell completion offers the group (cobra's hidden __complete command).
	if comp := mustCLI(t, nil, "", "__complete", "group", "describe", "-b", b.Addr(), group[:len(group)-2]).stdout; !strings.Contains(comp, group+"\n") {
		t.Fatalf("completion of %q:\n%s", group[:len(group)-2], comp)
	}

	var list []groupSummary
	decodeJSON(t, mustCLI(t, b, "", "group", "list", "--format", "json"), &list)
	if i := slices.IndexFunc(list, func(s groupSummary) bool { return s.Group == group }); i < 0 || list[i].State != "Empty" || list[i].Members != 0 {
		t.Fatalf("group list: %+v", list)
	}
	if text := mustCLI(t, b, "", "group", "describe", group).stdout; !strings.Contains(text, "LOG-END-OFFSET") || !strings.Contains(text, topic) {
		t.Fatalf("describe text:\n%s", text)
	}
	var y groupDescription
	if err := yaml.Unmarshal([]byte(mustCLI(t, b, "", "group", "describe", group, "--format", "yaml").stdout), &y); err != nil || y.Group != group {
		t.Fatalf("describe yaml: %v %+v", err, y)
	}

	// Dry run: a plan, nothing committed.
	var plan []resetRow
	dry := mustCLI(t, b, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--format", "json")
	decodeJSON(t, dry, &plan)
	if len(plan) != 3 || !strings.Contains(dry.stderr, "dry run") {
		t.Fatalf("dry-run plan %+v, stderr %q", plan, dry.stderr)
	}
	for _, r := range plan {
		if r.CurrentOffset != 10 || r.NewOffset != 0 {
			t.Fatalf("dry-run row %+v: want 10 -> 0", r)
		}
	}
	if sum, _ := committedSum(describeJSON(t, b, group), topic); sum != 30 {
		t.Fatalf("a dry run changed the offsets: sum %d, want 30", sum)
	}

	tests := []struct {
		name string
		args []string
		want []int64 // committed offset per partition afterwards
	}{
		{"to-earliest", []string{"--to-earliest"}, []int64{0, 0, 0}},
		{"to-offset one partition", []string{"--to-offset", "7", "-p", "1"}, []int64{0, 7, 0}},
		{"shift-by", []string{"--shift-by", "2"}, []int64{2, 9, 2}},
		{"to-offset past the end is clamped", []string{"--to-offset", "1000", "-p", "0"}, []int64{10, 9, 2}},
		{"to-datetime in the future: the end", []string{"--to-datetime", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, []int64{10, 10, 10}},
		{"to-datetime in the past: the start", []string{"--to-datetime", "-1h"}, []int64{0, 0, 0}},
		{"to-latest", []string{"--to-latest"}, []int64{10, 10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCLI(t, b, "", append([]string{"group", "reset-offsets", group, "--topic", topic, "--execute"}, tt.args...)...)
			d := describeJSON(t, b, group)
			got := make([]int64, 3)
			for _, o := range d.Offsets {
				got[o.Partition] = o.CommittedOffset
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("committed offsets %v, want %v", got, tt.want)
			}
		})
	}

	// An active member: reset-offsets and delete are refused.
	member := joinKgo(t, b.Addr(), group, topic)
	waitFor(t, 30*time.Second, "member in describe", func() bool {
		d := describeJSON(t, b, group)
		return len(d.Members) == 1 && len(d.Members[0].Assignments) == 1 && len(d.Members[0].Assignments[0].Partitions) == 3
	})
	d = describeJSON(t, b, group)
	if d.State != "Stable" || d.Protocol == "" || d.Members[0].ClientID != "weir-group-test" {
		t.Fatalf("with a member: %+v", d)
	}
	for _, o := range d.Offsets {
		if o.ClientID != "weir-group-test" {
			t.Fatalf("offset row without its owner: %+v", o)
		}
	}
	r := cli(t, b, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
	if r.code != 1 || !strings.Contains(r.stderr, "active") {
		t.Fatalf("reset-offsets with a member: exit %d, stderr %q", r.code, r.stderr)
	}
	oneLineError(t, r, false)
	r = cli(t, b, "", "group", "delete", group, "--format", "json")
	var res []groupResult
	decodeJSON(t, r, &res)
	if r.code != 1 || len(res) != 1 || res[0].OK {
		t.Fatalf("delete with a member: exit %d, %+v", r.code, res)
	}

	member.Close() // leaves the group
	waitFor(t, 30*time.Second, "empty group", func() bool { return describeJSON(t, b, group).State == "Empty" })
	mustCLI(t, b, "", "group", "delete", group)
	r = cli(t, b, "", "group", "describe", group)
	if r.code != 1 || !strings.Contains(r.stderr, "unknown group") {
		t.Fatalf("describe after delete: exit %d, stderr %q", r.code, r.stderr)
	}
}

// joinKgo starts a franz-go member of group on topic that commits
// nothing. kgo joins and heartbeats in the background without polling.
func joinKgo(t *testing.T, addr, group, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ClientID("weir-group-test"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestGroupUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no verb", []string{"group"}},
		{"describe without a group", []string{"group", "describe"}},
		{"reset without a target", []string{"group", "reset-offsets", "g", "--topic", "t"}},
		{"reset with two targets", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"}},
		{"reset without a topic", []string{"group", "reset-offsets", "g", "--to-earliest"}},
		{"reset to a bad time", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "soon"}},
		{"bad format", []string{"group", "list", "--format", "xml"}},
		{"consume -g with -p", []string{"consume", "t", "-g", "g", "-p", "0"}},
		{"consume -g with an absolute offset", []string{"consume", "t", "-g", "g", "-o", "5"}},
		{"consume -g with --exit-at-end", []string{"consume", "t", "-g", "g", "-e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No broker: usage is checked before connecting.
			r := cli(t, nil, "", append(tt.args, "-b", "127.0.0.1:1")...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			oneLineError(t, r, false)
		})
	}
}

// TestGroupDescribeDeletedTopic: a group whose topic was deleted still
// describes; any offset the broker kept for the topic has no log end
// offset or lag.
func TestGroupDescribeDeletedTopic(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	group := "g-" + topic
	mustCLI(t, b, "", "topic", "create", topic, "-p", "2")
	mustCLI(t, b, "a\nb\nc\nd\n", "produce", topic, "-p", "0")
	mustCLI(t, b, "", "consume", topic, "-g", group, "-n", "3")
	if sum, _ := committedSum(describeJSON(t, b, group), topic); sum != 3 {
		t.Fatalf("committed %d before the delete, want 3", sum)
	}
	mustCLI(t, b, "", "topic", "delete", topic)
	r := cli(t, b, "", "group", "describe", group, "--format", "json")
	if r.code == 1 && strings.Contains(r.stderr, "unknown group") {
		return // the broker dropped the group with its last offsets, as Kafka may
	}
	if r.code != 0 {
		t.Fatalf("describe after the topic was deleted: exit %d, stderr %q", r.code, r.stderr)
	}
	var d groupDescription
	decodeJSON(t, r, &d)
	t.Logf("offsets after the delete: %+v", d.Offsets)
	for _, o := range d.Offsets {
		if o.Topic == topic && (o.LogEndOffset != -1 || o.Lag != nil) {
			t.Fatalf("offset row of a deleted topic: %+v", o)
		}
	}
	if text := mustCLI(t, b, "", "group", "describe", group).stdout; !strings.Contains(text, "OFFSETS") {
		t.Fatalf("describe text:\n%s", text)
	}
}
