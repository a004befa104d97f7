package broker

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// startServer starts a Server on 127.0.0.1:0 with a temporary data directory
// and closes it when the test ends.
func startServer(t testing.TB, edit ...func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Groups.OffsetsTopicPartitions = 4 // Kafka's 50 costs ~1 s per start
	for _, e := range edit {
		e(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawConn is a test client that speaks frames by hand.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, s *Server) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc}
}

// send writes a request frame for req at its version with correlation id corr.
func (c *rawConn) send(req kmsg.Request, corr int32) {
	c.t.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("weir-test"))
	if _, err := c.nc.Write(f.AppendRequest(nil, req, corr)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// writeRaw writes bytes as they are.
func (c *rawConn) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one response frame and returns its correlation id and the rest.
func (c *rawConn) recv() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// roundTrip sends req and decodes the response at req's version.
func (c *rawConn) roundTrip(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	c.send(req, corr)
	got, body, err := c.recv()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	if got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && resp.Key() != 18 {
		if len(body) == 0 || body[0] != 0 {
			c.t.Fatalf("flexible response header: want tag byte 0, got %x", body[:min(1, len(body))])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T: %v", resp, err)
	}
	return resp
}

// expectClosed asserts the server closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	_, _, err := c.recv()
	if err == nil {
		c.t.Fatal("connection still open, want it closed")
	}
}

// lineLog is a slog handler that keeps the message of each record at Info
// and above (what a server logs by default), for tests that count lines.
type lineLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *lineLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelInfo }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lineLog) WithGroup(string) slog.Handler      { return l }

// since returns the messages logged after the first n.
func (l *lineLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs[n:])
}

// count returns how many records have been logged.
func (l *lineLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}
