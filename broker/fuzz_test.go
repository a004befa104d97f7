package broker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the FuzzRequest and wire FuzzDecode seed corpora from requests captured from kgo and kadm")

// recordingProxy forwards client connections to a server and records every
// request frame (without its size prefix) the clients send.
type recordingProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	frames [][]byte
	conns  []net.Conn
}

func startRecordingProxy(t testing.TB) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &recordingProxy{ln: ln}
}

func (p *recordingProxy) serve() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := p.ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(client, server)
				client.Close()
			}()
			go func() {
				defer p.wg.Done()
				defer server.Close()
				var size [4]byte
				for {
					if _, err := io.ReadFull(client, size[:]); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(size[:]))
					if _, err := io.ReadFull(client, body); err != nil {
						return
					}
					p.mu.Lock()
					p.frames = append(p.frames, body)
					p.mu.Unlock()
					if _, err := server.Write(append(size[:], body...)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

func (p *recordingProxy) close() [][]byte {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return p.frames
}

// captureClientRequests runs a workload of franz-go's kgo and kadm against
// an in-process server through a recording proxy and returns every request
// frame they sent.
func captureClientRequests(t *testing.T) [][]byte {
	t.Helper()
	proxy := startRecordingProxy(t)
	s := startServer(t, func(c *Config) { c.Advertise = proxy.ln.Addr().String() })
	proxy.target = s.Addr().String()
	proxy.serve()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()),
		kgo.DefaultProduceTopic("seeds"), kgo.ConsumeTopics("seeds"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err = adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kmsg.StringPtr("100000")}, "seeds")
	must("create", err)
	_, err = adm.CreateTopic(ctx, 1, 1, nil, "doomed")
	must("create doomed", err)
	_, err = adm.ListTopics(ctx)
	must("list", err)
	_, err = adm.DescribeTopicConfigs(ctx, "seeds")
	must("describe configs", err)
	_, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("1048576")}}, "seeds")
	must("incremental alter", err)
	_, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("200000")}}, "seeds")
	must("alter", err)
	_, err = adm.UpdatePartitions(ctx, 3, "seeds")
	must("create partitions", err)
	_, err = adm.DescribeAllLogDirs(ctx, nil)
	must("describe log dirs", err)
	_, err = cl.Request(ctx, &kmsg.DescribeClusterRequest{Version: 1, EndpointType: 1})
	must("describe cluster", err)
	for i := range 5 {
		must("produce", cl.ProduceSync(ctx, kgo.KeyStringRecord(fmt.Sprint("k", i), strings.Repeat("v", i*10))).FirstErr())
	}
	got := 0
	for got < 5 {
		fs := cl.PollFetches(ctx)
		must("fetch", fs.Err())
		got += fs.NumRecords()
	}
	_, err = adm.ListEndOffsets(ctx, "seeds")
	must("list offsets", err)
	_, err = adm.DeleteRecords(ctx, kadm.Offsets{"seeds": {0: {At: 1}}})
	must("delete records", err)
	_, err = adm.DeleteTopics(ctx, "doomed")
	must("delete", err)
	cl.Close()

	acks0, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()), kgo.DefaultProduceTopic("seeds"),
		kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	must("acks=0 client", err)
	must("acks=0 produce", acks0.ProduceSync(ctx, kgo.StringRecord("fire and forget")).FirstErr())
	acks0.Close()
	return proxy.close()
}

// seedFrames keeps up to three frames per API key and version.
func seedFrames(frames [][]byte) [][]byte {
	seen := map[[2]int16]int{}
	var out [][]byte
	for _, f := range frames {
		h, _, err := wire.ParseHeader(f)
		if err != nil {
			continue
		}
		k := [2]int16{h.Key, h.Version}
		if seen[k] < 3 {
			seen[k]++
			out = append(out, f)
		}
	}
	return out
}

func writeCorpus(t *testing.T, dir string, frames [][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		sum := sha256.Sum256(f)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", f)
		if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClientRequestsDecode captures what kgo and kadm really send (every
// API we advertise that they use) and checks that each request decodes
// with our API table. With -update-seeds it rewrites the fuzz corpora from
// them.
func TestClientRequestsDecode(t *testing.T) {
	frames := captureClientRequests(t)
	table := newAPIIndex(apiTable())
	versions := func(key int16) (int16, int16, bool) {
		a := table.lookup(key)
		if a == nil {
			return 0, 0, false
		}
		return a.min, a.max, true
	}
	keys := map[int16]bool{}
	for _, f := range frames {
		d, err := wire.Decode(f, versions)
		if err != nil {
			t.Fatalf("a kgo request does not decode: %v", err)
		}
		keys[d.Key] = true
	}
	for _, k := range []int16{0, 1, 2, 3, 18, 19, 20, 21, 22, 32, 33, 35, 37, 44, 60} {
		if !keys[k] {
			t.Errorf("workload sent no %s request", kmsg.NameForKey(k))
		}
	}
	if *updateSeeds {
		seeds := seedFrames(frames)
		writeCorpus(t, filepath.Join("testdata", "fuzz", "FuzzRequest"), seeds)
		writeCorpus(t, filepath.Join("wire", "testdata", "fuzz", "FuzzDecode"), seeds)
		t.Logf("wrote %d seeds", len(seeds))
	}
}

// panicCounter counts "handler panic" log records.
type panicCounter struct{ n atomic.Int64 }

func (p *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "handler panic" {
		p.n.Add(1)
	}
	return nil
}
func (p *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCounter) WithGroup(string) slog.Handler      { return p }

// FuzzRequest sends one request frame to a running server and checks that
// no handler panics, the server answers or closes that connection, and a
// fresh connection still gets answers. Seeds are real kgo and kadm requests
// (TestClientRequestsDecode -update-seeds), plus hugeTagCountFrame.
func FuzzRequest(f *testing.F) {
	panics := &panicCounter{}
	s := startServer(f, func(c *Config) {
		c.Logger = slog.New(panics)
		c.MaxTopicPartitions = 4
		c.DefaultPartitions = 1
		c.MaxRequestBytes = 1 << 20
		// A fuzzed JoinGroup may wait for the other members of its group,
		// as in Kafka, at most until their sessions expire: keep that short.
		c.Groups.MinSessionTimeout, c.Groups.MaxSessionTimeout = time.Millisecond, 100*time.Millisecond
	})
	addr := s.Addr().String()
	f.Add(hugeTagCountFrame)
	probe := kmsg.NewPtrApiVersionsRequest()
	probeFrame := kmsg.NewRequestFormatter().AppendRequest(nil, probe, 1)
	f.Fuzz(func(t *testing.T, frame []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(time.Minute)) // a safety net, not a timing assertion
		msg := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
		if _, err := nc.Write(append(msg, frame...)); err != nil {
			t.Fatal(err)
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("reading the answer: %v", err)
		}
		if n := panics.n.Load(); n > 0 {
			t.Fatalf("%d handler panics", n)
		}
		pc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		_ = pc.SetDeadline(time.Now().Add(time.Minute))
		if _, err := pc.Write(probeFrame); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(pc, size[:]); err != nil {
			t.Fatalf("server stopped answering: %v", err)
		}
	})
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}
