package compat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics library starts one process-wide meter ticker
		// the first time a meter is made, and never stops it.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

const (
	// partitions is the partition count of every topic the suite creates.
	partitions = 3
	// messages is how many messages each client round trip produces.
	messages = 10_000
	// opTimeout bounds every produce phase and every consume by kgo.
	opTimeout = 90 * time.Second
	// consumeTimeout bounds a consume by a client that stops at the end of
	// each partition; reading 10,000 messages takes a few seconds, so
	// reaching it means the client never saw the end.
	consumeTimeout = 30 * time.Second
	// python is the interpreter the Debian client packages install under.
	python = "/usr/bin/python3"
)

// header is one record header.
type header struct{ Key, Value string }

// record is a message as produced or as read back.
type record struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   []header
	// Codec is the compression codec of the batch the record came in,
	// when the reader exposes it (kgo does); diff ignores it.
	Codec int8
}

func (r record) String() string {
	return fmt.Sprintf("p%d@%d key=%q value=%.40q headers=%v", r.Partition, r.Offset, r.Key, r.Value, r.Headers)
}

// message returns message i of a round trip by the named client. Message i
// goes to partition i%3 and lands at offset i/3 there. The same definition
// is in client_common.py for the Python clients; keep them in step.
func message(client string, i int) record {
	return record{
		Partition: int32(i % partitions),
		Offset:    int64(i / partitions),
		Key:       fmt.Sprintf("k%06d", i),
		Value:     fmt.Sprintf("v%06d-%s-%s", i, client, strings.Repeat("x", i%97)),
		Headers:   []header{{"client", client}, {"seq", strconv.Itoa(i)}},
	}
}

// messagesFor returns messages 0..n-1 of client.
func messagesFor(client string, n int) []record {
	out := make([]record, n)
	for i := range out {
		out[i] = message(client, i)
	}
	return out
}

// startBroker starts weir (or returns the WEIR_TEST_BROKER one). At the
// end of the test, if the broker still runs, it checks that the broker
// closed no connection on a protocol error: an unknown API key or version,
// or a malformed request, from an unmodified client is a compatibility bug
// even when the client recovers from it.
func startBroker(t *testing.T, opts ...weirtest.Option) *weirtest.Broker {
	t.Helper()
	b := weirtest.Start(t, opts...)
	t.Cleanup(func() { checkNoProtocolErrors(t, b) })
	return b
}

// checkNoProtocolErrors checks, if b runs, that it has closed no connection
// on a protocol error since it started.
func checkNoProtocolErrors(t *testing.T, b *weirtest.Broker) {
	t.Helper()
	if b.External() || !b.Running() {
		return
	}
	n, err := metric(b.HTTPAddr(), "weir_connections_closed_on_error_total")
	if err != nil {
		t.Errorf("read broker metrics: %v", err)
	} else if n != 0 {
		t.Errorf("the broker closed %v connections on protocol errors (unknown API key or version, or a malformed request); its output says which", n)
	}
}

// metric reads one unlabelled sample from the broker's /metrics.
func metric(httpAddr, name string) (float64, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no sample %s in /metrics", name)
}

// requireProcess skips tests that must stop, restart or read the files of
// the broker when the suite runs against an external one.
func requireProcess(t *testing.T, b *weirtest.Broker) {
	t.Helper()
	if b.External() {
		t.Skipf("needs a broker process started by the suite; %s is set", weirtest.EnvBroker)
	}
}

// topicName returns a topic name unique to this run, so that reruns against
// one external broker never collide.
func topicName(base string) string {
	var b [3]byte
	rand.Read(b[:])
	return "compat-" + base + "-" + hex.EncodeToString(b[:])
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newAdmin returns a kadm client for addr, closed at cleanup.
func newAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates a topic with kadm.
func createTopic(t *testing.T, addr, topic string, nparts int32) {
	t.Helper()
	resp, err := newAdmin(t, addr).CreateTopic(timeout(t), nparts, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kadm: create topic %s: %v", topic, err)
	}
}

// checkEndOffsets checks with kadm that each partition of topic starts at 0
// and ends where n messages spread by message() would end.
func checkEndOffsets(t *testing.T, addr, topic string, n int) {
	t.Helper()
	adm := newAdmin(t, addr)
	ctx := timeout(t)
	for _, c := range []struct {
		name string
		list func(context.Context, ...string) (kadm.ListedOffsets, error)
		want func(p int32) int64
	}{
		{"start", adm.ListStartOffsets, func(int32) int64 { return 0 }},
		{"end", adm.ListEndOffsets, func(p int32) int64 { return int64(countIn(n, p)) }},
	} {
		offs, err := c.list(ctx, topic)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			t.Errorf("kadm: list %s offsets of %s: %v", c.name, topic, err)
			continue
		}
		for p := range int32(partitions) {
			o, ok := offs.Lookup(topic, p)
			if !ok {
				t.Errorf("kadm: no %s offset for %s/%d", c.name, topic, p)
			} else if o.Offset != c.want(p) {
				t.Errorf("kadm: %s offset of %s/%d = %d, want %d", c.name, topic, p, o.Offset, c.want(p))
			}
		}
	}
}

// countIn is how many of n messages message() puts in partition p.
func countIn(n int, p int32) int {
	return (n - int(p) + partitions - 1) / partitions
}

// verify checks that got (records read back, in the order each partition
// delivered them) holds exactly want, at the partitions and offsets
// message() assigned, in order. It reports up to 10 differences.
func verify(t *testing.T, client string, got, want []record) {
	t.Helper()
	if errs := differences(got, want, 10); len(errs) > 0 {
		t.Fatalf("%s: %d records read back, %d produced; differences:\n%s", client, len(got), len(want), strings.Join(errs, "\n"))
	}
}

// differences lists up to limit ways in which got differs from want,
// partition by partition.
func differences(got, want []record, limit int) []string {
	byPart := map[int32][]record{}
	for _, r := range got {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	wantByPart := map[int32][]record{}
	for _, r := range want {
		wantByPart[r.Partition] = append(wantByPart[r.Partition], r)
	}
	var errs []string
	add := func(format string, args ...any) {
		if len(errs) < limit {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		if _, ok := wantByPart[p]; !ok {
			add("%d records in unexpected partition %d", len(byPart[p]), p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(wantByPart)) {
		gs, ws := byPart[p], wantByPart[p]
		if len(gs) != len(ws) {
			add("partition %d: read %d records, want %d", p, len(gs), len(ws))
		}
		for i := range min(len(gs), len(ws)) {
			if d := diff(gs[i], ws[i]); d != "" {
				add("partition %d, record %d: %s differs\n\tgot  %v\n\twant %v", p, i, d, gs[i], ws[i])
			}
		}
	}
	return errs
}

// diff names the first field in which got differs from want.
func diff(got, want record) string {
	switch {
	case got.Offset != want.Offset:
		return "offset"
	case got.Key != want.Key:
		return "key"
	case got.Value != want.Value:
		return "value"
	case len(got.Headers) != len(want.Headers):
		return "header count"
	}
	for i := range got.Headers {
		if got.Headers[i] != want.Headers[i] {
			return "header " + strconv.Itoa(i)
		}
	}
	return ""
}

// consumeKgo reads n records of topic with kgo by direct partition
// assignment from offset 0.
func consumeKgo(t *testing.T, addr, topic string, nparts int32, n int) []record {
	t.Helper()
	offs := map[int32]kgo.Offset{}
	for p := range nparts {
		offs[p] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx := timeout(t)
	out := make([]record, 0, n)
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo: consumed %d of %d records of %s before the deadline", len(out), n, topic)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("kgo: fetch %s/%d: %v", topic, p, err)
		})
		if t.Failed() {
			t.FailNow()
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromKgo(r)) })
	}
	return out
}

func fromKgo(r *kgo.Record) record {
	rec := record{
		Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value),
		Codec: int8(r.Attrs.CompressionType()),
	}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, header{h.Key, string(h.Value)})
	}
	return rec
}

// requireCommand fails the test unless the named program is installed.
func requireCommand(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package %s; `make deps` or scripts/install-test-deps.sh installs it): %v", name, pkg, err)
	}
	return path
}

// requirePythonModule fails the test unless /usr/bin/python3 can import mod.
func requirePythonModule(t *testing.T, mod, pkg string) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing (Debian package python3): %v", python, err)
	}
	if out, err := exec.Command(python, "-c", "import "+mod).CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import %s (Debian package %s; `make deps` or scripts/install-test-deps.sh installs it): %v\n%s", python, mod, pkg, err, out)
	}
}

// run runs a program with stdin, bounded by limit, and returns its
// standard output. A non-zero exit fails the test with its stderr.
func run(t *testing.T, limit time.Duration, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", limit, err)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	if s := stderr.String(); s != "" {
		t.Logf("%s stderr:\n%s", name, tail(s, 2000))
	}
	return stdout.Bytes()
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// errorsJoin collects up to limit errors into one.
func errorsJoin(errs []error, limit int) error {
	if len(errs) > limit {
		errs = append(errs[:limit], fmt.Errorf("and %d more", len(errs)-limit))
	}
	return errors.Join(errs...)
}
