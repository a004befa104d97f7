package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

func TestServeNamedListeners(t *testing.T) {
	tests := []struct {
		name    string
		f       serveFlags
		want    []broker.Listener
		wantErr string
	}{
		{"none", serveFlags{listen: "127.0.0.1:9092"}, nil, ""},
		{"listeners", serveFlags{listen: "127.0.0.1:9092", listeners: "INTERNAL://127.0.0.1:9092,EXTERNAL://0.0.0.0:19092", advertised: "EXTERNAL://kafka.example.com:19092"},
			[]broker.Listener{{Name: "INTERNAL", Bind: "127.0.0.1:9092"}, {Name: "EXTERNAL", Bind: "0.0.0.0:19092", Advertise: "kafka.example.com:19092"}}, ""},
		{"advertised for --listen", serveFlags{listen: "0.0.0.0:9092", listenSet: true, advertised: "PLAINTEXT://weir:9092"},
			[]broker.Listener{{Name: "PLAINTEXT", Bind: "0.0.0.0:9092", Advertise: "weir:9092"}}, ""},
		{"security map", serveFlags{listeners: "A://:1,B://:2", securityMap: "A:PLAINTEXT,B:PLAINTEXT"},
			[]broker.Listener{{Name: "A", Bind: ":1"}, {Name: "B", Bind: ":2"}}, ""},
		{"security map for --listen", serveFlags{listen: "0.0.0.0:9092", listenSet: true, securityMap: "PLAINTEXT:PLAINTEXT"}, nil, ""},
		{"listen and listeners", serveFlags{listen: "127.0.0.1:9092", listenSet: true, listeners: "A://:1"}, nil, "--listen and --listeners are both set"},
		{"advertise and listeners", serveFlags{advertise: "x:1", listeners: "A://:1"}, nil, "--advertise and --listeners are both set"},
		{"advertise and advertised", serveFlags{listen: "127.0.0.1:9092", advertise: "x:1", advertised: "PLAINTEXT://y:1"}, nil, "--advertise and --advertised-listeners are both set"},
		{"bad listeners", serveFlags{listeners: "a://:1"}, nil, "--listeners: "},
		{"unknown advertised", serveFlags{listeners: "A://:1", advertised: "B://x:1"}, nil, "--advertised-listeners: "},
		{"advertised for another name", serveFlags{listen: "127.0.0.1:9092", advertised: "EXTERNAL://x:1"}, nil, "matches no listener (have PLAINTEXT)"},
		{"SSL in the map", serveFlags{listeners: "A://:1", securityMap: "A:SSL"}, nil, "PLAINTEXT only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.namedListeners()
			if !wantErrMention(t, err, tt.wantErr) {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestServeListenersBadSettingsExit2: bad or conflicting listener settings,
// from flags, the environment or the file, print one line and exit 2.
func TestServeListenersBadSettingsExit2(t *testing.T) {
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1111\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flags conflict", []string{"--listen", "127.0.0.1:0", "--listeners", "A://127.0.0.1:0"}, nil, "--listen and --listeners are both set"},
		{"file listen, env listeners", []string{"--config", file}, map[string]string{"WEIR_LISTENERS": "A://127.0.0.1:0"}, "--listen and --listeners are both set"},
		{"advertise with listeners", []string{"--listeners", "A://127.0.0.1:0", "--advertise", "x:1"}, nil, "--advertise and --listeners"},
		{"lower-case name", []string{"--listeners", "internal://127.0.0.1:0"}, nil, "upper-case"},
		{"no scheme", []string{"--listeners", "127.0.0.1:0"}, nil, "NAME://host:port"},
		{"duplicate name", []string{"--listeners", "A://127.0.0.1:0,A://127.0.0.1:0"}, nil, "listed twice"},
		{"unknown advertised name", []string{"--listeners", "A://127.0.0.1:0", "--advertised-listeners", "B://x:1"}, nil, "matches no listener"},
		{"all interfaces, not advertised", []string{"--listeners", "A://0.0.0.0:0"}, nil, "give it an advertised address"},
		{"env advertised bad", []string{"--listeners", "A://127.0.0.1:0"}, map[string]string{"WEIR_ADVERTISED_LISTENERS": "A://no-port"}, "--advertised-listeners"},
		{"SSL", []string{"--listeners", "SSL://127.0.0.1:0"}, nil, "PLAINTEXT only"},
		{"SASL in the map", []string{"--listeners", "A://127.0.0.1:0", "--listener-security-protocol-map", "A:SASL_SSL"}, nil, "PLAINTEXT only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			wantUsageLine(t, append([]string{"serve", "--data-dir", t.TempDir(), "--http-listen", ""}, tt.args...), tt.want)
		})
	}
}

// TestServeListenersProcess runs a real `weir serve` with three named
// listeners: franz-go produces and consumes through the second one (on
// 127.0.0.2), and each listener's Metadata answer carries its own advertised
// address, including one that differs from the bound address.
func TestServeListenersProcess(t *testing.T) {
	if os.Getenv(weirtest.EnvBroker) != "" {
		t.Skip("WEIR_TEST_BROKER points at an external broker; this test needs its own process")
	}
	internal, external, docker := freeLoopback(t, "127.0.0.1"), freeLoopback(t, "127.0.0.2"), freeLoopback(t, "127.0.0.1")
	b := weirtest.Start(t,
		weirtest.WithListeners(fmt.Sprintf("INTERNAL://%s,EXTERNAL://%s,DOCKER://%s", internal, external, docker)),
		weirtest.WithArgs("--advertised-listeners", "EXTERNAL://"+external+",DOCKER://weir.example.com:19092",
			"--listener-security-protocol-map", "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,DOCKER:PLAINTEXT"))
	if b.Addr() != internal {
		t.Fatalf("harness address %s, want the first listener %s", b.Addr(), internal)
	}
	for addr, want := range map[string]string{internal: internal, external: external, docker: "weir.example.com:19092"} {
		if got := metadataBroker(t, addr); got != want {
			t.Errorf("Metadata through %s: broker at %s, want %s", addr, got, want)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(b.Output(), "weir.example.com:19092"); {
		if time.Now().After(deadline) {
			t.Fatalf("banner does not list the listeners:\n%s", b.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"listener INTERNAL:  " + internal + " -> advertised as " + internal,
		"listener EXTERNAL:  " + external + " -> advertised as " + external,
		"listener DOCKER:    " + docker + " -> advertised as weir.example.com:19092"} {
		if !strings.Contains(b.Output(), want) {
			t.Errorf("banner lacks %q:\n%s", want, b.Output())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dials := &dialLog{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(external), kgo.DefaultProduceTopic("via-external"),
		kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("via-external"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithHooks(dials))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce through EXTERNAL: %v", err)
	}
	var got []string
	for len(got) == 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume through EXTERNAL: %v", err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 1 || got[0] != "hello" {
		t.Fatalf("consumed %q, want [hello]", got)
	}
	// The seed connection and the connection to broker 1 found through
	// Metadata both went to EXTERNAL.
	if got := dials.addrs(); len(got) < 2 || slices.ContainsFunc(got, func(a string) bool { return a != external }) {
		t.Fatalf("client connected to %v, want only %s (seed and broker 1)", got, external)
	}
}

// dialLog records the address of every broker connection a kgo client
// opens.
type dialLog struct {
	mu   sync.Mutex
	seen []string
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (d *dialLog) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, conn.RemoteAddr().String())
}

func (d *dialLog) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen)
}

// freeLoopback returns host:port with a port that was free on host a moment
// ago.
func freeLoopback(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metadataBroker sends Metadata v11 to addr on a new connection and returns
// the one broker's host:port.
func metadataBroker(t *testing.T, addr string) string {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp := metadataV11(t, addr, req)
	if len(resp.Brokers) != 1 {
		t.Fatalf("brokers %+v", resp.Brokers)
	}
	return net.JoinHostPort(resp.Brokers[0].Host, fmt.Sprint(resp.Brokers[0].Port))
}

// metadataV11 sends req as Metadata v11 to addr on a new connection and
// returns the answer.
func metadataV11(t *testing.T, addr string, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req.Version = 11
	if _, err := nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	if err := resp.ReadFrom(body[5:]); err != nil { // correlation id, tag byte
		t.Fatal(err)
	}
	return resp
}
