package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cliResult is what one in-process run of the CLI produced.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the weir command line in-process against broker b (appending
// -b ADDR) with stdin as input.
func cli(t *testing.T, b *weirtest.Broker, stdin string, args ...string) cliResult {
	t.Helper()
	if b != nil {
		args = append(args, "-b", b.Addr())
	}
	var out, errw bytes.Buffer
	code := runIO(args, strings.NewReader(stdin), &out, &errw)
	waitClientConns(t)
	return cliResult{stdout: out.String(), stderr: errw.String(), code: code}
}

// waitClientConns waits until the kafka-go connection goroutines of the
// last run have ended. A command that stops while a long-poll fetch is in
// flight (consume -n) returns at once, but kafka-go keeps that connection's
// goroutine until the broker answers (within --fetch-max-wait); it must not
// outlive that by much, which this checks.
func waitClientConns(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("segmentio/kafka-go.(*conn).run")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafka-go connections still running 10s after the command returned:\n%s", buf[:n])
		}
		<-tick.C
	}
}

// mustCLI is cli that fails the test unless the command exits 0.
func mustCLI(t *testing.T, b *weirtest.Broker, stdin string, args ...string) cliResult {
	t.Helper()
	r := cli(t, b, stdin, args...)
	if r.code != 0 {
		t.Fatalf("weir %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// decodeJSON parses the JSON output of a command into v.
func decodeJSON(t *testing.T, r cliResult, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s", err, r.stdout)
	}
}

// topicSeq makes topic names unique within a run, so the tests also work
// against one shared external broker (WEIR_TEST_BROKER).
var topicSeq atomic.Int64

func uniqueTopic(t *testing.T) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-", "=", "-", "@", "at").Replace(strings.ToLower(t.Name()))
	return fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano()%1e9, topicSeq.Add(1))
}

// oneLineError checks the failure contract: one line starting with
// "weir: " on stderr and, unless the command reports per-item results,
// nothing on stdout.
func oneLineError(t *testing.T, r cliResult, resultsOnStdout bool) {
	t.Helper()
	if r.stdout != "" && !resultsOnStdout {
		t.Errorf("stdout on failure: %q", r.stdout)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "weir: ") {
		t.Errorf("stderr is not one 'weir: ' line: %q", r.stderr)
	}
}
