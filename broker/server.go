package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/weir-broker/weir/broker/internal/fetchsession"
	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/wire"
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// NodeID is this broker's id (node.id).
	NodeID int32
	// DataDir holds the partitions and the metadata image.
	DataDir string
	// Listen is the Kafka listener address, host:port; port 0 picks one.
	// It is the shorthand for one listener named PLAINTEXT and is ignored
	// when Listeners is set.
	Listen string
	// Advertise is the host:port given to clients in Metadata; empty means
	// the bound listener address. It belongs to Listen and must be empty
	// when Listeners is set.
	Advertise string
	// Listeners are named listeners, each with its own bind and advertised
	// address (listeners.go); clients are given the advertised address of
	// the listener they connected to. Empty means the one listener of Listen
	// and Advertise.
	Listeners []Listener
	// HTTPListen is the address of the HTTP listener (/metrics, /healthz,
	// /readyz); empty means none.
	HTTPListen string
	// AutoCreateTopics creates a topic on its first Metadata request
	// (auto.create.topics.enable).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that ask for the default (num.partitions).
	DefaultPartitions int32
	// MaxTopicPartitions bounds the partitions of one topic, so that one
	// request cannot make the broker create millions of directories.
	MaxTopicPartitions int32
	// Fsync says when appends are made durable: "never" (durability comes
	// from replication, Kafka's default), "always" (before acknowledging,
	// with group commit) or "interval" (at least every FsyncInterval).
	Fsync string
	// FsyncInterval is the longest time between fsyncs with Fsync
	// "interval".
	FsyncInterval time.Duration
	// PageCacheWindow is how many of the newest written bytes of each
	// partition stay in the page cache; older written data is written back
	// and dropped from the cache, and reads of it bypass the cache
	// (log.Options.PageCacheWindow). 0 leaves the page cache to the
	// kernel, as Kafka does.
	PageCacheWindow int64
	// MaxRequestBytes is the largest request accepted
	// (socket.request.max.bytes).
	MaxRequestBytes int32
	// MaxInFlightBytes bounds the request bytes read but not yet answered
	// across all connections (queued.max.request.bytes).
	MaxInFlightBytes int64
	// MaxConnInFlightBytes bounds them per connection.
	MaxConnInFlightBytes int64
	// MaxConnections bounds the open client connections across all
	// listeners (max.connections). At the limit the listeners stop
	// accepting, as Kafka's do, and new clients wait in the kernel's
	// backlog until a connection closes. Each open connection costs memory
	// (two goroutines, its state) beyond the in-flight budgets.
	MaxConnections int
	// FetchSessionSlots bounds the incremental fetch sessions (KIP-227) the
	// broker keeps (max.incremental.fetch.session.cache.slots); 0 declines
	// every session, and fetches are then served whole. A full cache gives
	// a slot to a new session only once a session has been idle for
	// FetchSessionEvictAfter.
	FetchSessionSlots int
	// FetchSessionEvictAfter is how long a session must have been idle
	// before a full cache gives its slot to a new one
	// (min.incremental.fetch.session.eviction.ms; two minutes).
	FetchSessionEvictAfter time.Duration
	// IdleTimeout closes idle connections (connections.max.idle.ms).
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long Close waits for in-flight requests.
	ShutdownTimeout time.Duration
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Groups configures the group coordinator (groups.go); zero fields
	// take Kafka's defaults.
	Groups GroupConfig
	// Maintenance configures log compaction and retention in the
	// background (groups_maintenance.go).
	Maintenance MaintenanceConfig
}

// DefaultPageCacheWindow is the default Config.PageCacheWindow: the newest
// 32 MiB of each partition stay cached for consumers that keep up, and the
// page cache does not grow with everything ever written.
const DefaultPageCacheWindow = 32 << 20

// DefaultFetchSessionSlots is the default Config.FetchSessionSlots, Kafka's
// default max.incremental.fetch.session.cache.slots.
const DefaultFetchSessionSlots = fetchsession.DefaultSlots

// DefaultMaxConnections is the default Config.MaxConnections. Kafka's
// default is unlimited; a bound keeps the memory of idle connections
// bounded too (about 12 KiB of heap and stacks each, measured with 1,000
// idle connections, plus the kernel's socket buffers).
const DefaultMaxConnections = 20000

// DefaultConfig returns Kafka's defaults for one node: node id 1, listener
// 127.0.0.1:9092, auto-create on, one partition per topic, 100 MiB requests.
func DefaultConfig() Config {
	return Config{
		NodeID:                 1,
		DataDir:                "weir-data",
		Listen:                 "127.0.0.1:9092",
		AutoCreateTopics:       true,
		DefaultPartitions:      1,
		MaxTopicPartitions:     10000,
		Fsync:                  "never",
		FsyncInterval:          time.Second,
		PageCacheWindow:        DefaultPageCacheWindow,
		MaxRequestBytes:        wire.DefaultMaxRequestBytes,
		MaxInFlightBytes:       512 << 20,
		MaxConnInFlightBytes:   wire.DefaultMaxRequestBytes,
		MaxConnections:         DefaultMaxConnections,
		FetchSessionSlots:      DefaultFetchSessionSlots,
		FetchSessionEvictAfter: fetchsession.DefaultEvictAfter,
		IdleTimeout:            10 * time.Minute,
		ShutdownTimeout:        10 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("broker: node id %d is negative", c.NodeID)
	case c.DataDir == "":
		return errors.New("broker: data dir is empty")
	case c.Listen == "" && len(c.Listeners) == 0:
		return errors.New("broker: listen address is empty")
	case c.Advertise != "" && len(c.Listeners) > 0:
		return fmt.Errorf("%w: Advertise is set with Listeners: set each listener's Advertise instead", ErrBadListener)
	case c.DefaultPartitions < 1:
		return fmt.Errorf("broker: default partitions %d is below 1", c.DefaultPartitions)
	case c.MaxTopicPartitions < c.DefaultPartitions:
		return fmt.Errorf("broker: max topic partitions %d is below the default partitions %d", c.MaxTopicPartitions, c.DefaultPartitions)
	case c.Fsync != "never" && c.Fsync != "always" && c.Fsync != "interval":
		return fmt.Errorf("broker: fsync %q: want never, always or interval", c.Fsync)
	case c.Fsync == "interval" && c.FsyncInterval <= 0:
		return fmt.Errorf("broker: fsync interval %v must be positive", c.FsyncInterval)
	case c.PageCacheWindow < 0:
		return fmt.Errorf("broker: page cache window %d is negative", c.PageCacheWindow)
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("broker: max request bytes %d is below 1024", c.MaxRequestBytes)
	case c.MaxConnections < 1:
		return fmt.Errorf("broker: max connections %d is below 1", c.MaxConnections)
	case c.FetchSessionSlots < 0:
		return fmt.Errorf("broker: fetch session slots %d is negative", c.FetchSessionSlots)
	case c.FetchSessionEvictAfter < 0:
		return fmt.Errorf("broker: fetch session eviction time %v is negative", c.FetchSessionEvictAfter)
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("broker: advertise %q: %w", c.Advertise, err)
		}
	}
	if len(c.Listeners) > 0 {
		return validateListeners(c.Listeners)
	}
	return nil
}

// Server is one Weir broker. New prepares it, Start binds its listeners and
// serves in the background, Close stops it. Its methods are safe for
// concurrent use.
type Server struct {
	cfg    Config
	logger *slog.Logger
	apis   []api
	index  *apiIndex
	shared *wire.Budget
	// connSlots holds a token per open client connection
	// (Config.MaxConnections).
	connSlots chan struct{}
	// fetchSessions are the incremental fetch sessions (KIP-227).
	fetchSessions *fetchsession.Cache

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and connections

	// adminMu serialises metadata changes (create, delete, alter), so a
	// plan validated against one image is applied to that image.
	adminMu sync.Mutex

	meta  metadata.Store // set by Start
	store partitionStore // set by Start

	metrics *metrics

	ext serverExt // group coordinator and log maintenance (groups.go)

	// bound are the Kafka listeners, in configuration order. Start sets
	// them under mu before the first connection is accepted and nothing
	// changes them after, so handlers read them without mu.
	bound []*boundListener

	mu       sync.Mutex // guards the fields below
	httpLn   net.Listener
	httpSrv  *http.Server
	lock     *os.File
	conns    map[*wire.Conn]struct{}
	started  bool
	closed   bool
	closeErr error
}

// New validates cfg and prepares a Server. Nothing is opened until Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:           cfg,
		logger:        logger,
		apis:          apiTable(),
		shared:        wire.NewBudget(cfg.MaxInFlightBytes),
		connSlots:     make(chan struct{}, cfg.MaxConnections),
		fetchSessions: fetchsession.NewCache(cfg.FetchSessionSlots, fetchsession.DefaultMaxPartitions, cfg.FetchSessionEvictAfter),
		ctx:           ctx,
		cancel:        cancel,
		conns:         make(map[*wire.Conn]struct{}),
	}
	s.index = newAPIIndex(s.apis)
	s.metrics = newMetrics(s)
	return s, nil
}

// Start binds the listener and serves in the background until Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("broker: server already started")
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("broker: data dir: %w", err)
	}
	lock, err := lockDataDir(s.cfg.DataDir)
	if err != nil {
		return err
	}
	if err := s.open(); err != nil {
		_ = lock.Close()
		return err
	}
	bound, err := bindListeners(ctx, s.cfg.listeners())
	if err != nil {
		_ = s.store.close()
		_ = lock.Close()
		return err
	}
	closeBound := func() {
		for _, l := range bound {
			_ = l.ln.Close()
		}
	}
	if err := s.register(bound[0]); err != nil {
		closeBound()
		_ = s.store.close()
		_ = lock.Close()
		return err
	}
	if s.cfg.HTTPListen != "" {
		hln, hs, err := s.startHTTP(ctx)
		if err != nil {
			closeBound()
			_ = s.store.close()
			_ = lock.Close()
			return err
		}
		s.httpLn, s.httpSrv = hln, hs
	}
	// After the HTTP listener (/healthz answers, /readyz says not ready):
	// creating the offsets topic takes a while on a first start.
	if err := s.openGroups(); err != nil {
		if s.httpSrv != nil {
			_ = s.httpSrv.Close()
		}
		closeBound()
		_ = s.store.close()
		_ = lock.Close()
		return err
	}
	s.bound = bound
	s.lock = lock
	s.started = true
	s.startGroups()
	for _, l := range bound {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.acceptLoop(l.ln, l.name)
		}()
		s.logger.Info("kafka listener started", "listener", l.name, "addr", l.ln.Addr().String(),
			"advertised", net.JoinHostPort(l.host, strconv.Itoa(int(l.port))), "node_id", s.cfg.NodeID)
	}
	return nil
}

// bindListeners binds every listener and resolves its advertised address;
// on error none is left open.
func bindListeners(ctx context.Context, ls []Listener) ([]*boundListener, error) {
	var lc net.ListenConfig
	bound := make([]*boundListener, 0, len(ls))
	fail := func(err error) ([]*boundListener, error) {
		for _, l := range bound {
			_ = l.ln.Close()
		}
		return nil, err
	}
	for _, l := range ls {
		ln, err := lc.Listen(ctx, "tcp", l.Bind)
		if err != nil {
			return fail(fmt.Errorf("broker: listener %s: listen %s: %w", l.Name, l.Bind, err))
		}
		bl := &boundListener{name: l.Name, ln: ln}
		bound = append(bound, bl)
		if bl.host, bl.port, err = advertisedAddr(l, ln.Addr()); err != nil {
			return fail(err)
		}
	}
	return bound, nil
}

// Serve starts the server and blocks until ctx is done, then closes it.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Addr returns the bound address of the first Kafka listener, nil before
// Start; Listeners returns them all.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bound) == 0 {
		return nil
	}
	return s.bound[0].ln.Addr()
}

// Close stops accepting, lets in-flight requests finish (up to
// ShutdownTimeout), then closes every partition, writing its recovery
// checkpoints. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return s.closeErr
	}
	s.closed = true
	bound := s.bound
	hs := s.httpSrv
	conns := make([]*wire.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, l := range bound {
		_ = l.ln.Close()
	}
	if hs != nil {
		_ = hs.Close()
	}
	for _, c := range conns {
		c.Drain()
	}
	// Parked joins and syncs are answered now (COORDINATOR_NOT_AVAILABLE),
	// so the drain does not wait out their rebalance timeouts.
	s.closeGroups()
	// Parked long-poll fetches and acks=all produces too.
	if m := s.replicas(); m != nil {
		m.ExpireWaiting()
	}
	drained := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(drained)
	}()
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	t := time.NewTimer(timeout)
	select {
	case <-drained:
		t.Stop()
	case <-t.C:
		s.logger.Warn("shutdown timeout: closing connections with requests in flight")
		for _, c := range conns {
			c.Close()
		}
		<-drained
	}
	s.cancel()
	s.closeErr = s.closeStorage()
	return s.closeErr
}

// open loads the metadata and opens this node's partitions.
func (s *Server) open() error {
	meta, err := metadata.OpenFileStore(s.cfg.DataDir, s.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	s.meta = meta
	store, err := openPartitionStore(s)
	if err != nil {
		return err
	}
	s.store = store
	for _, t := range meta.Image().Topics() {
		if err := store.ensure(s.cfg.NodeID, t); err != nil {
			_ = store.close()
			return fmt.Errorf("broker: open partitions of %s: %w", t.Name, err)
		}
	}
	return nil
}

// Advertised returns the host:port the first listener gives to clients,
// empty before Start; Listeners returns every listener's.
func (s *Server) Advertised() string {
	if s.meta == nil {
		return ""
	}
	b, ok := s.meta.Image().Broker(s.cfg.NodeID)
	if !ok {
		return ""
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

// closeStorage closes the partitions and releases the data directory.
func (s *Server) closeStorage() error {
	s.mu.Lock()
	started := s.started
	lock := s.lock
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.store.close()
	if lock != nil {
		_ = lock.Close()
	}
	return err
}

// acceptLoop serves the connections of the listener named name.
func (s *Server) acceptLoop(ln net.Listener, name string) {
	var delay time.Duration
	for {
		// At MaxConnections, stop accepting until a connection closes.
		select {
		case s.connSlots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		nc, err := ln.Accept()
		if err != nil {
			<-s.connSlots
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		delay = 0
		c := wire.NewConn(nc, dispatcher{s}, wire.ConnConfig{
			MaxRequestBytes:  s.cfg.MaxRequestBytes,
			MaxInFlightBytes: s.cfg.MaxConnInFlightBytes,
			Shared:           s.shared,
			IdleTimeout:      s.cfg.IdleTimeout,
			Listener:         name,
			Logger:           s.logger,
			OnError:          func(error) { s.metrics.closedBad.Inc() },
			ReleaseFrame:     releaseProduceFrame,
			OnResponse: func(r *wire.Request, d time.Duration) {
				if o := s.metrics.latencyFor[r.Key]; o != nil {
					o.Observe(d.Seconds())
				}
			},
		})
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			<-s.connSlots
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.connections.Inc()
		go func() {
			defer s.wg.Done()
			defer s.metrics.connections.Dec()
			c.Serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			<-s.connSlots
		}()
	}
}

// dispatcher adapts the Server to wire.Handler, so the dispatch methods do
// not join the Server's exported API.
type dispatcher struct{ s *Server }

// Versions implements wire.Handler from the API table.
func (d dispatcher) Versions(key int16) (min, max int16, ok bool) {
	a := d.s.index.lookup(key)
	if a == nil {
		return 0, 0, false
	}
	return a.min, a.max, true
}

// Handle implements wire.Handler: it dispatches r to its row's handler.
func (d dispatcher) Handle(r *wire.Request) (wire.Response, error) {
	a := d.s.index.lookup(r.Key)
	if a == nil {
		return wire.Response{}, fmt.Errorf("broker: no handler for key %d", r.Key)
	}
	d.s.metrics.requestsFor[r.Key].Inc()
	return a.handle(d.s, r)
}

func splitHostPort(hp string) (string, int32, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, int32(p), nil
}
