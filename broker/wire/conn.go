package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// Handler serves the requests of connections.
type Handler interface {
	// Versions reports the version range served for key; ok false if the
	// key is not served at all.
	Versions(key int16) (min, max int16, ok bool)
	// Handle handles one request. It runs on the connection's read
	// goroutine, in arrival order. It returns the response to send, or a
	// Response with Deferred set after arranging for r.Respond to be called
	// later. An error closes the connection (logged once, as one line).
	Handle(r *Request) (Response, error)
}

// Body is a pre-encoded response body that writes itself after the response
// header, for zero-copy fetch responses (a file region sent with sendfile).
type Body interface {
	// Len is the exact number of bytes WriteTo writes.
	Len() int64
	// WriteTo writes the body to the connection.
	WriteTo(w io.Writer) (int64, error)
	// Release frees what the body holds (open files); it is called exactly
	// once, whether or not the body was written.
	Release()
}

// BodyAppender is implemented by bodies that can also copy themselves into
// the connection's write buffer. A body of at most MaxAppendedBody bytes is
// then sent in the same write as its header (and the other responses ready
// with it) instead of in writes of its own: for the small answers of
// consumers that keep up, one system call and one TCP segment instead of
// several, each of which the client may wake up for.
type BodyAppender interface {
	// AppendBody appends the Len() bytes WriteTo would write to buf.
	AppendBody(buf []byte) ([]byte, error)
}

// MaxAppendedBody is the largest body a BodyAppender is asked to append;
// larger ones are written with WriteTo (sendfile for file regions).
const MaxAppendedBody = 64 << 10

// Response is a handler's answer to one request. Exactly one of Msg and Body
// is set, unless None or Deferred is.
type Response struct {
	// Msg is encoded at the request's version.
	Msg kmsg.Response
	// Body is written as is, after the response header.
	Body Body
	// None sends nothing (acks=0 produce) but keeps the request's place in
	// the response order.
	None bool
	// Deferred means the handler will call Request.Respond later.
	Deferred bool
}

// Request is one decoded request on a connection.
type Request struct {
	Decoded
	// Size is the request frame's size in bytes.
	Size int
	// Received is when the frame was read.
	Received time.Time
	// Remote is the client's address.
	Remote net.Addr
	// Listener is the name of the listener the connection was accepted on
	// (ConnConfig.Listener).
	Listener string

	c        *Conn
	sums     *batch.BlockSums // block sums of the frame, or nil
	seq      uint64
	reserved [3]int64 // slot, local bytes, global bytes
	resp     *Response
}

// BlockSums returns the CRC-32C block sums of the request's frame, taken as
// it was read, or nil when the frame was too small to be summed. A Produce
// handler passes them on so that batches are checked without being read
// again (batch.BlockSums).
func (r *Request) BlockSums() *batch.BlockSums { return r.sums }

// Respond queues r's response for writing in request order. It may be
// called from any goroutine, once; later calls, and calls after the
// connection closed, only release the response's Body. It never blocks on
// the network.
func (r *Request) Respond(resp Response) {
	c := r.c
	c.mu.Lock()
	if c.dead || r.resp != nil || c.outstanding[r.seq] != r {
		c.mu.Unlock()
		if resp.Body != nil {
			resp.Body.Release()
		}
		return
	}
	if resp.Msg != nil {
		resp.Msg.SetVersion(r.Msg.GetVersion())
	}
	r.resp = &resp
	c.mu.Unlock()
	c.wake()
}

// ConnConfig configures the per-connection loops.
type ConnConfig struct {
	// MaxRequestBytes is the largest request frame accepted
	// (socket.request.max.bytes); 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int32
	// MaxInFlightBytes bounds the request bytes read but not yet answered
	// on this connection; 0 means MaxRequestBytes.
	MaxInFlightBytes int64
	// MaxInFlightRequests bounds the requests read but not yet answered on
	// this connection; 0 means 100.
	MaxInFlightRequests int
	// Shared bounds the in-flight request bytes across all connections that
	// share it; nil means unbounded.
	Shared *Budget
	// IdleTimeout closes a connection that sends nothing for this long
	// (connections.max.idle.ms); 0 means never.
	IdleTimeout time.Duration
	// WriteTimeout bounds the time to write one response; 0 means 30s.
	WriteTimeout time.Duration
	// Listener names the listener the connection was accepted on; it is
	// copied into every Request and not interpreted here.
	Listener string
	// Logger receives one line per closed-on-error connection.
	Logger *slog.Logger
	// OnError, if set, is called once when the connection is closed
	// because of a protocol error (for metrics).
	OnError func(err error)
	// ReleaseFrame, if set, is called on the read goroutine once a handler
	// has returned. It reports whether nothing will use the request's frame
	// any more, having dropped the request's references into it; the frame's
	// buffer is then reused for a later request (framepool.go). Only the
	// handler's owner can know that: kmsg decodes byte fields as slices of
	// the frame, and some handlers keep them.
	ReleaseFrame func(r *Request) bool
	// OnResponse, if set, is called after each response is written (or
	// skipped, for None) with the request and the time since it was read.
	OnResponse func(r *Request, elapsed time.Duration)
}

func (cfg *ConnConfig) fill() {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = int64(cfg.MaxRequestBytes)
	}
	if cfg.MaxInFlightRequests <= 0 {
		cfg.MaxInFlightRequests = 100
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
}

// Conn is one client connection being served. Its read loop runs in Serve's
// goroutine and its write loop in a goroutine Serve starts and waits for.
//
// Concurrency: mu guards the fields below it; deadlineMu guards the read
// deadline against a concurrent Drain. Lock order: deadlineMu, then mu.
type Conn struct {
	nc      net.Conn
	h       Handler
	cfg     ConnConfig
	local   *Budget
	slots   *Budget
	ctx     context.Context
	cancel  context.CancelFunc
	wakeCh  chan struct{}
	logOnce sync.Once
	sums    *batch.BlockSums // the read loop's, for the next frame; replaced when a handler keeps a frame

	deadlineMu sync.Mutex
	draining   bool

	mu          sync.Mutex
	outstanding map[uint64]*Request // read, not yet written or discarded
	nextSeq     uint64              // assigned to the next request read
	writeSeq    uint64              // the next response to write
	readDone    bool                // the read loop has stopped
	dead        bool                // the connection is closed
}

// NewConn prepares to serve nc with h. Call Serve to run it.
func NewConn(nc net.Conn, h Handler, cfg ConnConfig) *Conn {
	cfg.fill()
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		nc:          nc,
		h:           h,
		cfg:         cfg,
		local:       NewBudget(cfg.MaxInFlightBytes),
		slots:       NewBudget(int64(cfg.MaxInFlightRequests)),
		ctx:         ctx,
		cancel:      cancel,
		wakeCh:      make(chan struct{}, 1),
		outstanding: make(map[uint64]*Request),
	}
}

// Serve runs the connection until the client goes away, a protocol error
// closes it, Close is called, or Drain is called and every request read so
// far has been answered. It returns once both loops have stopped and the
// connection is closed.
func (c *Conn) Serve() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	c.readLoop()
	c.mu.Lock()
	c.readDone = true
	c.mu.Unlock()
	c.wake()
	<-done
}

// Drain stops reading new requests; Serve returns once the requests already
// read are answered and written.
func (c *Conn) Drain() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.draining = true
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

// Close closes the connection at once, dropping unanswered requests.
func (c *Conn) Close() { c.kill() }

// Remote returns the client's address.
func (c *Conn) Remote() net.Addr { return c.nc.RemoteAddr() }

func (c *Conn) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// closeWith logs why the connection closes (once, in one record) and closes
// it. A handler panic is logged at error level with its stack.
func (c *Conn) closeWith(err error) {
	c.logOnce.Do(func() {
		level, attrs := slog.LevelInfo, []any{"remote", c.nc.RemoteAddr().String(), "err", err}
		var hp *handlerPanic
		if errors.As(err, &hp) {
			level, attrs = slog.LevelError, append(attrs, "stack", string(hp.stack))
		}
		c.cfg.Logger.Log(context.Background(), level, "closing connection", attrs...)
		if c.cfg.OnError != nil {
			c.cfg.OnError(err)
		}
	})
	c.kill()
}

// kill closes the socket and releases everything in flight.
func (c *Conn) kill() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	reqs := c.outstanding
	c.outstanding = nil
	c.mu.Unlock()
	c.cancel()
	_ = c.nc.Close()
	for _, r := range reqs {
		if r.resp != nil && r.resp.Body != nil {
			r.resp.Body.Release()
		}
		c.release(r)
	}
	c.wake()
}

// release returns a request's budget.
func (c *Conn) release(r *Request) {
	c.cfg.Shared.Release(r.reserved[2])
	c.local.Release(r.reserved[1])
	c.slots.Release(r.reserved[0])
	r.reserved = [3]int64{}
}

// setReadDeadline arms the idle timeout unless the connection is draining.
func (c *Conn) setReadDeadline() bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if c.draining {
		return false
	}
	var t time.Time
	if c.cfg.IdleTimeout > 0 {
		t = time.Now().Add(c.cfg.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(t)
	return true
}

func (c *Conn) readLoop() {
	for {
		if !c.setReadDeadline() {
			return
		}
		var reserved [3]int64
		if c.sums == nil {
			c.sums = new(batch.BlockSums)
		}
		frame, err := readFrame(c.nc, c.cfg.MaxRequestBytes, func(n int32) error {
			return c.reserve(&reserved, int64(n))
		}, frames.get, c.sums)
		if err != nil {
			c.giveBack(reserved)
			c.readFailed(err)
			return
		}
		d, err := Decode(frame, c.h.Versions)
		if err != nil {
			c.giveBack(reserved)
			frames.put(frame)
			c.closeWith(err)
			return
		}
		r := &Request{Decoded: d, Size: len(frame) + 4, Received: time.Now(), Remote: c.nc.RemoteAddr(), Listener: c.cfg.Listener, c: c, reserved: reserved}
		if summedFrame(len(frame)) {
			r.sums = c.sums
		}
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			c.giveBack(reserved)
			return
		}
		r.seq = c.nextSeq
		c.nextSeq++
		c.outstanding[r.seq] = r
		c.mu.Unlock()

		resp, err := c.serve(r)
		if c.cfg.ReleaseFrame != nil && c.cfg.ReleaseFrame(r) {
			frames.put(frame)
		} else if r.sums != nil {
			c.sums = nil // the handler may still read the frame, and r.sums with it
		}
		if err != nil {
			c.closeWith(fmt.Errorf("%s v%d (correlation id %d): %w", kmsg.NameForKey(d.Key), d.Version, d.CorrelationID, err))
			return
		}
		if !resp.Deferred {
			r.Respond(resp)
		}
	}
}

// serve runs the handler; a handler panic is a bug, but it closes only this
// connection (closeWith logs it with its stack).
func (c *Conn) serve(r *Request) (resp Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &handlerPanic{value: p, stack: debug.Stack()}
		}
	}()
	return c.h.Handle(r)
}

// handlerPanic is a recovered handler panic and where it happened.
type handlerPanic struct {
	value any
	stack []byte
}

func (p *handlerPanic) Error() string { return fmt.Sprintf("wire: handler panic: %v", p.value) }

func (c *Conn) giveBack(reserved [3]int64) {
	c.cfg.Shared.Release(reserved[2])
	c.local.Release(reserved[1])
	c.slots.Release(reserved[0])
}

// reserve takes a request slot and n bytes from the connection's and the
// shared budgets, then re-arms the read deadline for the body.
func (c *Conn) reserve(reserved *[3]int64, n int64) error {
	var err error
	if reserved[0], err = c.slots.Acquire(c.ctx, 1); err != nil {
		return err
	}
	if reserved[1], err = c.local.Acquire(c.ctx, n); err != nil {
		return err
	}
	if reserved[2], err = c.cfg.Shared.Acquire(c.ctx, n); err != nil {
		return err
	}
	if !c.setReadDeadline() {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// readFailed handles a read error: a client that went away or a drain ends
// the read loop quietly; bad frames close the connection with a log line.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrMalformed), errors.Is(err, io.ErrUnexpectedEOF):
		c.closeWith(err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.deadlineMu.Lock()
		draining := c.draining
		c.deadlineMu.Unlock()
		if !draining {
			c.closeWith(fmt.Errorf("wire: idle for %v", c.cfg.IdleTimeout))
		}
	default:
		// EOF, reset, or closed by us: nothing worth a log line.
		c.kill()
	}
}

// writeLoop writes responses in request order until the connection dies or
// the read loop has stopped and every request read has been answered.
func (c *Conn) writeLoop() {
	var buf []byte
	var ready []*Request // reused; cleared at the start of each round
	for {
		clear(ready)
		ready = ready[:0]
		c.mu.Lock()
		for !c.dead {
			r := c.outstanding[c.writeSeq]
			if r == nil || r.resp == nil {
				break
			}
			delete(c.outstanding, c.writeSeq)
			c.writeSeq++
			ready = append(ready, r)
		}
		dead := c.dead
		finished := c.readDone && len(c.outstanding) == 0
		c.mu.Unlock()
		if dead {
			for _, r := range ready {
				c.discard(r)
			}
			return
		}
		if len(ready) > 0 {
			var err error
			buf, err = c.write(buf[:0], ready)
			if err != nil {
				c.kill()
				return
			}
			continue
		}
		if finished {
			c.kill()
			return
		}
		<-c.wakeCh
	}
}

func (c *Conn) discard(r *Request) {
	if r.resp.Body != nil {
		r.resp.Body.Release()
	}
	c.release(r)
}

// write sends the ready responses, batching encoded messages into one write.
func (c *Conn) write(buf []byte, ready []*Request) ([]byte, error) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	var err error
	flush := func() {
		if err == nil && len(buf) > 0 {
			_, err = c.nc.Write(buf)
		}
		buf = buf[:0]
	}
	for i, r := range ready {
		resp := r.resp
		flexible := HeaderFlexible(r.Msg)
		switch {
		case err != nil || resp.None:
		case resp.Body != nil:
			buf = AppendResponseHeader(buf, r.CorrelationID, flexible, resp.Body.Len())
			if a, ok := resp.Body.(BodyAppender); ok && resp.Body.Len() <= MaxAppendedBody {
				buf, err = a.AppendBody(buf)
				break
			}
			flush()
			if err == nil {
				_, err = resp.Body.WriteTo(c.nc)
			}
		case resp.Msg != nil:
			buf = AppendResponse(buf, r.CorrelationID, flexible, resp.Msg)
		default:
			err = fmt.Errorf("wire: empty response to %s", kmsg.NameForKey(r.Key))
		}
		if i == len(ready)-1 || len(buf) > 64<<10 {
			flush()
		}
		if err == nil && c.cfg.OnResponse != nil {
			c.cfg.OnResponse(r, time.Since(r.Received))
		}
		c.discard(r)
	}
	return buf, err
}
