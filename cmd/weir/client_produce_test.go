package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// consumed decodes `consume --format json` output, one object per line.
func consumed(t *testing.T, r cliResult) []recordOut {
	t.Helper()
	var out []recordOut
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var rec recordOut
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("consume line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

func values(recs []recordOut) []string {
	var vs []string
	for _, r := range recs {
		if r.Value == nil {
			vs = append(vs, "<null>")
		} else {
			vs = append(vs, *r.Value)
		}
	}
	return vs
}

func TestProduceFileConsumeBack(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "1")

	lines := []string{"k1:v1", "k2:", "nokey", "k3:a:b", ":emptykey", "k1:v1-again"}
	file := filepath.Join(t.TempDir(), "records.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustCLI(t, b, "", "produce", topic, "-f", file, "--key-delim", ":", "-H", "src=file", "-H", "n=1", "-Z", "--print-offsets")
	if got := strings.Count(p.stdout, "\n"); got != len(lines) {
		t.Fatalf("--print-offsets printed %d lines, want %d:\n%s", got, len(lines), p.stdout)
	}
	if !strings.Contains(p.stderr, "produced 6 records") {
		t.Fatalf("produce summary on stderr: %q", p.stderr)
	}

	recs := consumed(t, mustCLI(t, b, "", "consume", topic, "--exit-at-end", "--format", "json"))
	type want struct {
		key   *string
		value *string
	}
	s := func(v string) *string { return &v }
	wants := []want{
		{s("k1"), s("v1")},
		{s("k2"), nil}, // -Z: empty value is a tombstone
		{nil, s("nokey")},
		{s("k3"), s("a:b")}, // split at the first delimiter only
		{s(""), s("emptykey")},
		{s("k1"), s("v1-again")},
	}
	if len(recs) != len(wants) {
		t.Fatalf("consumed %d records, want %d: %+v", len(recs), len(wants), recs)
	}
	eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for i, w := range wants {
		r := recs[i]
		if !eq(r.Key, w.key) || !eq(r.Value, w.value) {
			t.Errorf("record %d: key %v value %v, want key %v value %v", i, deref(r.Key), deref(r.Value), deref(w.key), deref(w.value))
		}
		if w.key == nil && !slices.Contains(r.Null, "key") || w.value == nil && !slices.Contains(r.Null, "value") {
			t.Errorf("record %d: null fields %v", i, r.Null)
		}
		if len(r.Headers) != 2 || r.Headers[0] != (headerOut{"src", "file"}) || r.Headers[1] != (headerOut{"n", "1"}) {
			t.Errorf("record %d headers: %+v", i, r.Headers)
		}
		if r.Offset == nil || *r.Offset != int64(i) || r.Partition == nil || *r.Partition != 0 || r.Topic != topic {
			t.Errorf("record %d position: %+v", i, r)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Timestamp); err != nil {
			t.Errorf("record %d timestamp %q: %v", i, r.Timestamp, err)
		}
	}

	// Text output: selected fields, tab-separated.
	text := mustCLI(t, b, "", "consume", topic, "-e", "--fields", "offset,key,value", "-n", "1").stdout
	if text != "0\tk1\tv1\n" {
		t.Fatalf("text output %q", text)
	}
}

func TestProduceOptions(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "3")
	tests := []struct {
		name string
		args []string
	}{
		{"acks 1 gzip", []string{"--acks", "1", "-z", "gzip"}},
		{"acks all snappy", []string{"--acks", "all", "-z", "snappy"}},
		{"lz4", []string{"-z", "lz4"}},
		{"zstd", []string{"-z", "zstd"}},
		{"no compression", nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fmt.Sprintf("%s-a\n%s-b\n", tc.name, tc.name)
			args := append([]string{"produce", topic, "-p", strconv.Itoa(i % 3)}, tc.args...)
			mustCLI(t, b, in, args...)
			got := values(consumed(t, mustCLI(t, b, "", "consume", topic, "-p", strconv.Itoa(i%3), "-o", "-2", "-e", "--format", "json")))
			if want := []string{tc.name + "-a", tc.name + "-b"}; !slices.Equal(got, want) {
				t.Fatalf("consumed %q, want %q", got, want)
			}
		})
	}
	bad := cli(t, b, "x\n", "produce", topic, "-p", "7")
	if bad.code != 1 {
		t.Fatalf("produce to partition 7 of 3: exit %d, want 1", bad.code)
	}
	oneLineError(t, bad, false)
}

// TestProduceCreatesTopic: like Kafka's producers, weir produce lets a
// broker with auto.create.topics.enable (the default) create an unknown
// topic, and the records land in it. (A broker without auto-creation
// refuses: TestServeNodeIDAndAutoCreate.)
func TestProduceCreatesTopic(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	if r := mustCLI(t, b, "a\n", "produce", topic); !strings.Contains(r.stderr, "produced 1 record to "+topic) {
		t.Fatalf("stderr %q, want the one record counted", r.stderr)
	}
	mustCLI(t, b, "b\n", "produce", topic)
	var d topicDescription
	decodeJSON(t, mustCLI(t, b, "", "topic", "describe", topic, "--format", "json"), &d)
	if d.Name != topic || len(d.Partitions) != 1 {
		t.Fatalf("described %q with %d partitions, want %q with 1", d.Name, len(d.Partitions), topic)
	}
	got := values(consumed(t, mustCLI(t, b, "", "consume", topic, "-o", "start", "-e", "--format", "json")))
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestConsumeOffsets(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "1")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "v%d\n", i)
	}
	// Two produce runs, so the records carry at least two timestamps.
	lines := strings.SplitAfter(in.String(), "\n")
	mustCLI(t, b, strings.Join(lines[:5], ""), "produce", topic)
	mustCLI(t, b, strings.Join(lines[5:], ""), "produce", topic)
	all := consumed(t, mustCLI(t, b, "", "consume", topic, "-e", "--format", "json"))
	if len(all) != 10 {
		t.Fatalf("consumed %d records, want 10", len(all))
	}
	ts := make([]time.Time, len(all))
	for i, r := range all {
		ts[i], _ = time.Parse(time.RFC3339Nano, r.Timestamp)
	}
	// @T starts at the first record whose timestamp is >= T.
	mid := ts[5]
	firstAtMid := slices.IndexFunc(ts, func(x time.Time) bool { return !x.Before(mid) })
	vs := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("v%d", i))
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"start", []string{"-o", "start", "-e"}, vs(0, 10)},
		{"end", []string{"-o", "end", "-e"}, nil},
		{"absolute", []string{"-o", "3", "-e"}, vs(3, 10)},
		{"absolute past end", []string{"-o", "99", "-e"}, nil},
		{"relative", []string{"-o", "-2", "-e"}, vs(8, 10)},
		{"relative beyond start", []string{"-o", "-50", "-e"}, vs(0, 10)},
		{"count", []string{"-o", "start", "-n", "4"}, vs(0, 4)},
		{"count from offset", []string{"-o", "6", "-n", "2"}, vs(6, 8)},
		{"time ms", []string{"-o", "@" + strconv.FormatInt(mid.UnixMilli(), 10), "-e"}, vs(firstAtMid, 10)},
		{"time rfc3339", []string{"-o", "@" + mid.Format(time.RFC3339Nano), "-e"}, vs(firstAtMid, 10)},
		{"time relative", []string{"-o", "@-1h", "-e"}, vs(0, 10)},
		{"time future", []string{"-o", "@" + strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10), "-e"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"consume", topic, "--format", "json"}, tc.args...)
			got := values(consumed(t, mustCLI(t, b, "", args...)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("weir %s: got %q, want %q", strings.Join(args, " "), got, tc.want)
			}
		})
	}
}

// TestConsumeExitAtEndAcrossPartitions checks that --exit-at-end stops once
// every partition reached its starting high watermark, with empty ones.
func TestConsumeExitAtEndAcrossPartitions(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "4")
	mustCLI(t, b, "a\nb\n", "produce", topic, "-p", "0")
	mustCLI(t, b, "c\n", "produce", topic, "-p", "2")
	recs := consumed(t, mustCLI(t, b, "", "consume", topic, "-e", "--format", "json"))
	got := values(recs)
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("got %q", got)
	}
	only := values(consumed(t, mustCLI(t, b, "", "consume", topic, "-e", "-p", "2", "--format", "json")))
	if !slices.Equal(only, []string{"c"}) {
		t.Fatalf("partition 2: got %q", only)
	}
}
