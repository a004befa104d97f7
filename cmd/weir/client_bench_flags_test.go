package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// TestBrokersFlagResolution: -b/--brokers defaults to 127.0.0.1:9092,
// WEIR_BROKERS replaces that default, and the flag beats the variable.
func TestBrokersFlagResolution(t *testing.T) {
	tests := []struct {
		name string
		env  string // "": unset
		args []string
		want []string
	}{
		{"default", "", nil, []string{"127.0.0.1:9092"}},
		{"env", "10.0.0.1:9092, 10.0.0.2:9093", nil, []string{"10.0.0.1:9092", "10.0.0.2:9093"}},
		{"short flag beats env", "10.0.0.1:9092", []string{"-b", "10.0.0.3:9094"}, []string{"10.0.0.3:9094"}},
		{"long flag beats env", "10.0.0.1:9092", []string{"--brokers", "a:1,b:2"}, []string{"a:1", "b:2"}},
		{"flag without env", "", []string{"-b", "c:3"}, []string{"c:3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WEIR_BROKERS", tc.env) // restored after the test
			if tc.env == "" {
				os.Unsetenv("WEIR_BROKERS")
			}
			cmd := &cobra.Command{Use: "x"}
			cf := addClientFlags(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatalf("parse %q: %v", tc.args, err)
			}
			got, err := cf.addrs()
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("brokers %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestBrokersFromEnv: a command given no -b reaches the broker named by
// WEIR_BROKERS, and -b still beats the variable in either direction.
func TestBrokersFromEnv(t *testing.T) {
	b := weirtest.Start(t)
	port := b.Addr()[strings.LastIndexByte(b.Addr(), ':')+1:]
	closed := "127.0.0.1:1" // nothing listens on port 1

	t.Setenv("WEIR_BROKERS", b.Addr())
	var info map[string]any
	decodeJSON(t, mustCLI(t, nil, "", "cluster", "info", "--format", "json"), &info)
	brokers, _ := info["brokers"].([]any)
	found := false
	for _, br := range brokers {
		m, _ := br.(map[string]any)
		found = found || strconv.FormatFloat(m["port"].(float64), 'f', -1, 64) == port
	}
	if !found {
		t.Fatalf("cluster info via WEIR_BROKERS: no broker on port %s: %v", port, info)
	}
	r := cli(t, nil, "", "cluster", "info", "-b", closed, "--timeout", "2s")
	if r.code != 1 {
		t.Fatalf("-b %s with WEIR_BROKERS=%s: exit %d, want 1 (the flag wins, and nothing listens there)", closed, b.Addr(), r.code)
	}
	oneLineError(t, r, false)

	t.Setenv("WEIR_BROKERS", closed)
	mustCLI(t, b, "", "cluster", "info") // cli appends -b ADDR
}

// benchJSON runs `weir bench ARGS --format json` and decodes its report by
// its JSON names.
func benchJSON(t *testing.T, b *weirtest.Broker, args ...string) map[string]any {
	t.Helper()
	var rep map[string]any
	decodeJSON(t, mustCLI(t, b, "", append(append([]string{"bench"}, args...), "--format", "json")...), &rep)
	return rep
}

// TestBenchLinger: --linger reaches the report of both clients as
// linger_ms, and the text report as linger=.
func TestBenchLinger(t *testing.T) {
	b := weirtest.Start(t)
	for _, client := range benchClients {
		t.Run(client, func(t *testing.T) {
			topic := uniqueTopic(t)
			rep := benchJSON(t, b, "produce", "-t", topic, "--client", client, "-p", "1", "-n", "200", "--linger", "5ms")
			if rep["linger_ms"] != 5.0 || rep["records"] != 200.0 || rep["mode"] != "produce" {
				t.Fatalf("report: %v", rep)
			}
			rep = benchJSON(t, b, "produce", "-t", topic, "--client", client, "-n", "10")
			if l, ok := rep["linger_ms"]; ok && l != 0.0 {
				t.Fatalf("linger_ms %v without --linger", l)
			}
			text := mustCLI(t, b, "", "bench", "produce", "-t", topic, "--client", client, "-n", "10", "--linger", "2.5ms").stdout
			if !strings.Contains(text, "linger=2.5ms") {
				t.Fatalf("text report lacks linger=2.5ms:\n%s", text)
			}
		})
	}
}

// checkDurationRun checks the report of a run bounded by -d 1s and no
// count: it ended, sent something, and ran about the second.
func checkDurationRun(t *testing.T, rep map[string]any, wall time.Duration, size float64) {
	t.Helper()
	records, _ := rep["records"].(float64)
	seconds, _ := rep["seconds"].(float64)
	if records <= 0 || seconds < 0.9 || wall > 30*time.Second {
		t.Fatalf("-d 1s: %v records in %v s (wall %v): %v", records, seconds, wall, rep)
	}
	if rep["bytes"] != records*size {
		t.Fatalf("bytes %v, want %v records of %v", rep["bytes"], records, size)
	}
	if rate, _ := rep["msgs_per_sec"].(float64); rate < 0.99*records/seconds || rate > 1.01*records/seconds {
		t.Fatalf("msgs_per_sec %v for %v records in %v s", rate, records, seconds)
	}
}

// TestBenchProduceDuration: `bench produce -n 0 -d 1s` runs until the
// duration is up, with either client; with neither bound it is a usage
// error.
func TestBenchProduceDuration(t *testing.T) {
	b := weirtest.Start(t)
	for _, client := range benchClients {
		t.Run(client, func(t *testing.T) {
			start := time.Now()
			rep := benchJSON(t, b, "produce", "-t", uniqueTopic(t), "--client", client, "-p", "2", "-s", "64", "-n", "0", "-d", "1s")
			checkDurationRun(t, rep, time.Since(start), 64)
		})
	}
	r := cli(t, nil, "", "bench", "produce", "-n", "0", "-b", "127.0.0.1:1")
	if r.code != 2 || !strings.Contains(r.stderr, "--count or --duration") {
		t.Fatalf("-n 0 without -d: exit %d, stderr %q", r.code, r.stderr)
	}
	oneLineError(t, r, false)
}

// TestBenchE2EDuration: `bench e2e -n 0 -d 1s` produces at --rate for the
// duration and reports the records that made it end to end, with their
// latency and the target rate.
func TestBenchE2EDuration(t *testing.T) {
	b := weirtest.Start(t)
	for _, client := range benchClients {
		t.Run(client, func(t *testing.T) {
			start := time.Now()
			rep := benchJSON(t, b, "e2e", "-t", uniqueTopic(t), "--client", client, "-p", "2", "-s", "32", "--rate", "2000", "-n", "0", "-d", "1s")
			checkDurationRun(t, rep, time.Since(start), 32)
			lat, _ := rep["latency_ms"].(map[string]any)
			if rep["mode"] != "e2e" || rep["target_rate"] != 2000.0 || lat == nil || lat["p50"].(float64) <= 0 {
				t.Fatalf("e2e report: %v", rep)
			}
		})
	}
}
