package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testHandler serves Metadata (key 3) and ApiVersions. Metadata requests
// whose first topic is "defer" are parked until release is called;
// "none" gets no response; "fail" closes the connection.
type testHandler struct {
	mu     sync.Mutex
	bodies []*testBody
	parked []*Request
	served atomic.Int64
}

func (h *testHandler) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 3:
		return 0, 12, true
	case apiVersionsKey:
		return 0, 3, true
	}
	return 0, 0, false
}

func (h *testHandler) Handle(r *Request) (Response, error) {
	h.served.Add(1)
	if r.Key == apiVersionsKey {
		resp := kmsg.NewPtrApiVersionsResponse()
		return Response{Msg: resp}, nil
	}
	req := r.Msg.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	if len(req.Topics) > 0 && req.Topics[0].Topic != nil {
		switch *req.Topics[0].Topic {
		case "defer":
			h.mu.Lock()
			h.parked = append(h.parked, r)
			h.mu.Unlock()
			return Response{Deferred: true}, nil
		case "none":
			return Response{None: true}, nil
		case "fail":
			return Response{}, errors.New("test: handler refused")
		case "panic":
			panic("test: handler panic")
		case "small body", "large body":
			n := 100
			if *req.Topics[0].Topic == "large body" {
				n = MaxAppendedBody + 1
			}
			b := &testBody{data: bytes.Repeat([]byte{byte(n)}, n)}
			h.mu.Lock()
			h.bodies = append(h.bodies, b)
			h.mu.Unlock()
			return Response{Body: b}, nil
		}
	}
	return Response{Msg: resp}, nil
}

// release answers the parked requests, last parked first.
func (h *testHandler) release() int {
	h.mu.Lock()
	ps := h.parked
	h.parked = nil
	h.mu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		resp := ps[i].Msg.(*kmsg.MetadataRequest).ResponseKind()
		ps[i].Respond(Response{Msg: resp})
	}
	return len(ps)
}

func (h *testHandler) parkedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.parked)
}

// testBody is a Body (and BodyAppender) of fixed bytes that records how it
// was sent.
type testBody struct {
	data              []byte
	appended, written atomic.Int64
}

func (b *testBody) Len() int64 { return int64(len(b.data)) }
func (b *testBody) Release()   {}
func (b *testBody) WriteTo(w io.Writer) (int64, error) {
	b.written.Add(1)
	n, err := w.Write(b.data)
	return int64(n), err
}
func (b *testBody) AppendBody(buf []byte) ([]byte, error) {
	b.appended.Add(1)
	return append(buf, b.data...), nil
}

// logCounter counts log records and remembers the last one's level and
// whether it carried a stack.
type logCounter struct {
	n         atomic.Int64
	lastLevel atomic.Int64
	lastStack atomic.Bool
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	stack := false
	r.Attrs(func(a slog.Attr) bool {
		stack = stack || (a.Key == "stack" && strings.Contains(a.Value.String(), "goroutine"))
		return true
	})
	l.lastLevel.Store(int64(r.Level))
	l.lastStack.Store(stack)
	l.n.Add(1)
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

// server runs Conns for every accepted connection until the test ends.
type server struct {
	ln    net.Listener
	h     *testHandler
	logs  *logCounter
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*Conn
}

func startServer(t *testing.T, cfg ConnConfig) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, h: &testHandler{}, logs: &logCounter{}}
	cfg.Logger = slog.New(s.logs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := NewConn(nc, s.h, cfg)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.Serve()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

type client struct {
	t  *testing.T
	nc net.Conn
}

func (s *server) dial(t *testing.T) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc}
}

func metadataFor(topic string, version int16) *kmsg.MetadataRequest {
	r := kmsg.NewPtrMetadataRequest()
	r.Version = version
	r.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
	return r
}

func (c *client) send(req kmsg.Request, corr int32) {
	c.t.Helper()
	if _, err := c.nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, corr)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recvCorr() (int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(body)), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for an event
	}
}

// TestConnSmallBodiesAppended: a body of at most MaxAppendedBody bytes that
// can append itself goes into the write buffer with its header; a larger one
// writes itself. The client receives both intact, in order.
func TestConnSmallBodiesAppended(t *testing.T) {
	s := startServer(t, ConnConfig{})
	c := s.dial(t)
	c.send(metadataFor("small body", 9), 1)
	c.send(metadataFor("large body", 9), 2)
	for _, want := range []struct {
		corr int32
		size int
	}{{1, 100}, {2, MaxAppendedBody + 1}} {
		var size [4]byte
		if _, err := io.ReadFull(c.nc, size[:]); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c.nc, frame); err != nil {
			t.Fatal(err)
		}
		// Metadata v9 responses have a flexible header: correlation id, tags.
		corr, body := int32(binary.BigEndian.Uint32(frame)), frame[5:]
		if corr != want.corr || !bytes.Equal(body, bytes.Repeat([]byte{byte(want.size)}, want.size)) {
			t.Fatalf("response %d: correlation id %d, %d body bytes; want %d bytes of %d", want.corr, corr, len(body), want.size, byte(want.size))
		}
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	small, large := s.h.bodies[0], s.h.bodies[1]
	if small.appended.Load() != 1 || small.written.Load() != 0 {
		t.Errorf("small body: appended %d times, written %d; want appended once", small.appended.Load(), small.written.Load())
	}
	if large.appended.Load() != 0 || large.written.Load() != 1 {
		t.Errorf("large body: appended %d times, written %d; want written once", large.appended.Load(), large.written.Load())
	}
}

func TestConnResponsesInRequestOrder(t *testing.T) {
	s := startServer(t, ConnConfig{})
	c := s.dial(t)
	// 0 deferred, 1 immediate, 2 deferred, 3 no response, 4 immediate.
	topics := []string{"defer", "now", "defer", "none", "now"}
	for i, tp := range topics {
		c.send(metadataFor(tp, 9), int32(i))
	}
	waitFor(t, "two parked requests", func() bool { return s.h.parkedCount() == 2 })
	if n := s.h.release(); n != 2 { // answers 2 before 0
		t.Fatalf("released %d", n)
	}
	for _, want := range []int32{0, 1, 2, 4} {
		got, err := c.recvCorr()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("correlation id %d, want %d", got, want)
		}
	}
}

// TestConnResponsesInOrderUnderLoad pipelines 600 requests: about a quarter
// answered later from another goroutine at random moments, half at once and
// a quarter not at all. Every answer arrives once, in request order.
func TestConnResponsesInOrderUnderLoad(t *testing.T) {
	s := startServer(t, ConnConfig{MaxInFlightRequests: 1000})
	c := s.dial(t)
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []string{"defer", "now", "now", "none"}
	var want []int32
	const n = 600
	done := make(chan struct{})
	defer close(done)
	go func() { // answers whatever is parked, at random moments, until the test ends
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(rand.IntN(300)) * time.Microsecond):
				s.h.release()
			}
		}
	}()
	// The answers (about 30 KiB) fit the socket buffers, so sending all
	// before reading any cannot stall the server's writes.
	for i := range n {
		tp := kinds[rng.IntN(len(kinds))]
		if tp != "none" {
			want = append(want, int32(i))
		}
		c.send(metadataFor(tp, 9), int32(i))
	}
	for _, w := range want {
		got, err := c.recvCorr()
		if err != nil {
			t.Fatalf("waiting for %d: %v", w, err)
		}
		if got != w {
			t.Fatalf("correlation id %d, want %d", got, w)
		}
	}
}

func TestConnBoundsInFlightBytes(t *testing.T) {
	const limit = 4096
	shared := NewBudget(limit)
	s := startServer(t, ConnConfig{MaxInFlightBytes: 1 << 20, Shared: shared})
	c := s.dial(t)
	big := metadataFor("defer", 9)
	for i := 0; i < 40; i++ {
		big.Topics = append(big.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(string(bytes.Repeat([]byte{'x'}, 100)))})
	}
	frameLen := len(kmsg.NewRequestFormatter().AppendRequest(nil, big, 0)) - 4
	perBudget := limit / frameLen
	go func() {
		for i := 0; i < 3*perBudget; i++ {
			if _, err := c.nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, big, int32(i))); err != nil {
				return
			}
		}
	}()
	waitFor(t, "the budget to fill", func() bool { return s.h.parkedCount() == perBudget })
	if used := shared.Used(); used > limit {
		t.Fatalf("%d bytes in flight, budget %d", used, limit)
	}
	// Until something is answered, nothing more is read.
	if got := s.h.parkedCount(); got != perBudget {
		t.Fatalf("%d requests parked, the budget allows %d", got, perBudget)
	}
	received := 0
	for received < 3*perBudget {
		waitFor(t, "more parked requests", func() bool { return s.h.parkedCount() > 0 })
		if used := shared.Used(); used > limit {
			t.Fatalf("%d bytes in flight, budget %d", used, limit)
		}
		n := s.h.release()
		for range n {
			if _, err := c.recvCorr(); err != nil {
				t.Fatal(err)
			}
		}
		received += n
	}
	waitFor(t, "the budget to drain", func() bool { return shared.Used() == 0 })
}

func TestConnBadInputClosesOnlyThatConnection(t *testing.T) {
	sized := func(n uint32, body []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, n), body...) }
	unknownKey := kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrProduceRequest(), 1)
	tooNew := kmsg.NewRequestFormatter().AppendRequest(nil, metadataFor("t", 13), 1)
	truncatedBody := kmsg.NewRequestFormatter().AppendRequest(nil, metadataFor("t", 4), 1)
	truncatedBody = sized(14, truncatedBody[4:18])
	tests := []struct {
		name      string
		in        []byte
		closeSend bool
	}{
		{"oversized frame", sized(200<<20, nil), false},
		{"negative size", sized(0x80000000, nil), false},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"truncated frame then EOF", sized(100, []byte{0, 3, 0, 1}), true},
		{"truncated body", truncatedBody, false},
		{"unknown api key", unknownKey, false},
		{"unsupported version", tooNew, false},
		{"handler error", kmsg.NewRequestFormatter().AppendRequest(nil, metadataFor("fail", 9), 1), false},
		{"handler panic", kmsg.NewRequestFormatter().AppendRequest(nil, metadataFor("panic", 9), 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, ConnConfig{MaxRequestBytes: 1 << 20})
			good := s.dial(t)
			good.send(metadataFor("now", 9), 1)
			if _, err := good.recvCorr(); err != nil {
				t.Fatal(err)
			}
			bad := s.dial(t)
			if _, err := bad.nc.Write(tt.in); err != nil {
				t.Fatal(err)
			}
			if tt.closeSend {
				_ = bad.nc.(*net.TCPConn).CloseWrite()
			}
			if _, err := bad.recvCorr(); err == nil {
				t.Fatal("got a response, want the connection closed")
			}
			// One record, whatever the cause: the close is logged before
			// the socket is closed.
			if got := s.logs.n.Load(); got != 1 {
				t.Fatalf("%d log records, want exactly 1", got)
			}
			if panicked := tt.name == "handler panic"; panicked != s.logs.lastStack.Load() ||
				panicked != (slog.Level(s.logs.lastLevel.Load()) == slog.LevelError) {
				t.Fatalf("record level %v, stack %v; want error level with a stack only for a panic",
					slog.Level(s.logs.lastLevel.Load()), s.logs.lastStack.Load())
			}
			// The other connection is unaffected.
			good.send(metadataFor("now", 9), 2)
			if corr, err := good.recvCorr(); err != nil || corr != 2 {
				t.Fatalf("other connection: corr %d err %v", corr, err)
			}
		})
	}
}

func TestConnAPIVersionsFallbackIsAnswered(t *testing.T) {
	s := startServer(t, ConnConfig{})
	c := s.dial(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	c.send(req, 9)
	if corr, err := c.recvCorr(); err != nil || corr != 9 {
		t.Fatalf("corr %d err %v", corr, err)
	}
}

func TestConnDrainAnswersInFlight(t *testing.T) {
	s := startServer(t, ConnConfig{})
	c := s.dial(t)
	c.send(metadataFor("defer", 9), 1)
	waitFor(t, "the parked request", func() bool { return s.h.parkedCount() == 1 })
	s.mu.Lock()
	conn := s.conns[0]
	s.mu.Unlock()
	conn.Drain()
	s.h.release()
	if corr, err := c.recvCorr(); err != nil || corr != 1 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	if _, err := c.recvCorr(); err == nil {
		t.Fatal("connection still open after drain")
	}
	if n := s.h.served.Load(); n != 1 {
		t.Fatalf("served %d requests, want 1", n)
	}
}

func TestConnRespondAfterCloseIsHarmless(t *testing.T) {
	shared := NewBudget(1 << 20)
	s := startServer(t, ConnConfig{Shared: shared})
	c := s.dial(t)
	c.send(metadataFor("defer", 9), 1)
	waitFor(t, "the parked request", func() bool { return s.h.parkedCount() == 1 })
	c.nc.Close()
	waitFor(t, "the budget to be released", func() bool { return shared.Used() == 0 })
	s.h.release() // the connection is gone: a no-op, no panic, no double release
	if shared.Used() != 0 {
		t.Fatalf("budget %d after late respond", shared.Used())
	}
}

func BenchmarkConnMetadataRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &testHandler{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		NewConn(nc, h, ConnConfig{}).Serve()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, metadataFor("now", 9), 1)
	var size [4]byte
	buf := make([]byte, 1024)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, size[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(nc, buf[:binary.BigEndian.Uint32(size[:])]); err != nil {
			b.Fatal(err)
		}
	}
	nc.Close()
	ln.Close()
	<-done
}

// TestConnRequestListener: every request carries the name of the listener
// its connection was accepted on, so the broker can answer with that
// listener's advertised address.
func TestConnRequestListener(t *testing.T) {
	s := startServer(t, ConnConfig{Listener: "EXTERNAL"})
	c := s.dial(t)
	c.send(metadataFor("defer", 9), 1)
	waitFor(t, "the parked request", func() bool { return s.h.parkedCount() == 1 })
	s.h.mu.Lock()
	got := s.h.parked[0].Listener
	s.h.mu.Unlock()
	if got != "EXTERNAL" {
		t.Fatalf("request listener %q, want EXTERNAL", got)
	}
	s.h.release()
	if corr, err := c.recvCorr(); err != nil || corr != 1 {
		t.Fatalf("response %d, %v", corr, err)
	}
}
