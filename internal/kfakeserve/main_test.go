package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/weir-broker/weir/internal/syncbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"noop", []string{"-noop", "-port", "0", "-partitions", "6"}, true},
		{"seeded", []string{"-topic", "a", "-topic", "b"}, true},
		{"store floor", []string{"-noop", "-store", "dir"}, true},
		{"store without noop", []string{"-store", "dir"}, false},
		{"bad partitions", []string{"-partitions", "0"}, false},
		{"bad port", []string{"-port", "70000"}, false},
		{"unknown flag", []string{"-nope"}, false},
		{"stray argument", []string{"extra"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if (err == nil) != tc.ok {
				t.Fatalf("parseFlags(%q) = %+v, %v; want ok=%t", tc.args, c, err, tc.ok)
			}
		})
	}
	if code := run([]string{"-partitions", "0"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("usage error exit %d, want 2", code)
	}
}

var listenRE = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// startServer runs serve in the background and returns its address.
func startServer(t *testing.T, serve func(ctx context.Context, out io.Writer) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		<-tick.C
	}
	t.Fatalf("server did not report its address: %q", out.String())
	return ""
}

// produce sends n records with kgo (idempotent, acks=all) and returns the
// offsets acknowledged per partition.
func produce(t *testing.T, addr, topic string, n int) map[int32][]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(strings.Repeat("x", i%50))}
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	offs := make(map[int32][]int64)
	for _, r := range res {
		offs[r.Record.Partition] = append(offs[r.Record.Partition], r.Record.Offset)
	}
	return offs
}

func checkDense(t *testing.T, offs map[int32][]int64, n int) {
	t.Helper()
	total := 0
	for p, os := range offs {
		seen := make(map[int64]bool)
		for _, o := range os {
			if o < 0 || o >= int64(len(os)) || seen[o] {
				t.Fatalf("partition %d: offsets %v are not 0..%d", p, os, len(os)-1)
			}
			seen[o] = true
		}
		total += len(os)
	}
	if total != n {
		t.Fatalf("%d records acknowledged, want %d", total, n)
	}
}

func TestNoopServerAcksProduce(t *testing.T) {
	c, err := parseFlags([]string{"-noop", "-port", "0", "-partitions", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, func(ctx context.Context, out io.Writer) error {
		return serveNoop(ctx, c, out, slog.New(slog.DiscardHandler))
	})
	checkDense(t, produce(t, addr, "noop-topic", 500), 500)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "created"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "created"); err == nil {
		t.Fatal("creating the topic twice succeeded")
	}
	td, err := adm.ListTopics(ctx, "created")
	if err != nil || len(td["created"].Partitions) != 4 {
		t.Fatalf("created topic metadata: %v %+v", err, td)
	}
}

func TestNoopServerClosesOnGarbage(t *testing.T) {
	c, _ := parseFlags([]string{"-noop", "-port", "0"}, io.Discard)
	addr := startServer(t, func(ctx context.Context, out io.Writer) error {
		return serveNoop(ctx, c, out, slog.New(slog.DiscardHandler))
	})
	frames := map[string][]byte{
		"huge frame":  {0x7f, 0xff, 0xff, 0xff},
		"tiny frame":  {0, 0, 0, 2, 0, 0},
		"unknown key": {0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0},
		"bad produce": {0, 0, 0, 12, 0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 1},
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			cn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cn.Close()
			if _, err := cn.Write(frame); err != nil {
				t.Fatal(err)
			}
			if err := cn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if n, err := cn.Read(make([]byte, 64)); err == nil {
				t.Fatalf("server answered %d bytes to a bad frame instead of closing", n)
			}
		})
	}
}

func TestKfakeServer(t *testing.T) {
	c, err := parseFlags([]string{"-port", "0", "-partitions", "2", "-topic", "seeded"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, func(ctx context.Context, out io.Writer) error { return serveKfake(ctx, c, out) })
	checkDense(t, produce(t, addr, "seeded", 100), 100)
}

func TestCountRecords(t *testing.T) {
	batch := func(lastDelta int32) []byte {
		b := make([]byte, 61)
		putU32 := func(off int, v uint32) {
			b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		}
		putU32(8, 49)
		putU32(23, uint32(lastDelta))
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want int64
	}{
		{"empty", nil, 0},
		{"one batch of 1", batch(0), 1},
		{"two batches", append(batch(4), batch(9)...), 15},
		{"truncated tail ignored", append(batch(2), batch(5)[:30]...), 3},
		{"bad length", append([]byte{}, make([]byte, 61)...), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := countRecords(tc.in); got != tc.want {
				t.Fatalf("countRecords = %d, want %d", got, tc.want)
			}
		})
	}
}
