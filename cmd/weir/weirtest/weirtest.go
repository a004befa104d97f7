// Package weirtest builds the weir binary and runs `weir serve` as a real
// process on 127.0.0.1, so that tests of any package (clients, the CLI, the
// compatibility suite) talk to a real broker over the Kafka protocol without
// importing the broker's packages.
//
// The binary is built once per test binary (`go build` into a per-user cache
// directory under the system temp dir, replaced atomically so concurrent test
// binaries never see a half-written file). Set WEIR_BINARY to the absolute
// path of a prebuilt binary to use it instead (go test runs each package in
// its own directory, so a relative path would resolve differently in each).
//
// Set WEIR_TEST_BROKER=host:port to point every suite at a broker started
// outside the tests (for example another Kafka implementation, to check a
// suite itself). Such a broker cannot be stopped, killed or restarted:
// those methods return ErrExternal and DataDir is empty.
//
// A typical test:
//
//	b := weirtest.Start(t)
//	client := newClient(b.Addr())
//	...
//	if err := b.Restart(); err != nil {
//		t.Fatal(err)
//	}
//
// The process never outlives the test: Start registers a cleanup that kills
// it, and its combined output is logged when the test failed.
package weirtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	// EnvBinary names a prebuilt weir binary to run instead of building one.
	EnvBinary = "WEIR_BINARY"
	// EnvBroker names the host:port of an externally started broker that
	// Start and New return instead of starting a process.
	EnvBroker = "WEIR_TEST_BROKER"
)

// Default time limits; see WithStartTimeout and WithStopTimeout.
const (
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 60 * time.Second
)

var (
	// ErrExternal is returned by Stop, Kill and Restart for a broker named
	// by WEIR_TEST_BROKER, which this package did not start.
	ErrExternal = errors.New("weirtest: broker is external (" + EnvBroker + "); it cannot be stopped or restarted")
	// ErrNotRunning is returned by Stop and Kill when no process is running.
	ErrNotRunning = errors.New("weirtest: broker is not running")
	// ErrExited is wrapped by the error New, Start and Restart return when
	// the process exited before it accepted connections.
	ErrExited = errors.New("weirtest: weir exited before accepting connections")
)

// ExitError reports that a stopped broker exited with a non-zero status or
// was ended by a signal other than the one Stop or Kill sent.
type ExitError struct {
	// Code is the exit status, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, if any.
	Signal syscall.Signal
}

// Error implements error.
func (e *ExitError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("weirtest: weir ended by signal %v", e.Signal)
	}
	return fmt.Sprintf("weirtest: weir exited with status %d", e.Code)
}

// Option changes how New and Start run the broker.
type Option func(*config)

type config struct {
	binary       string
	dataDir      string
	args         []string
	env          []string
	listeners    string
	startTimeout time.Duration
	stopTimeout  time.Duration
}

// WithDataDir runs the broker on dir instead of a fresh temporary directory.
// The directory is not removed afterwards.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithArgs appends arguments to the `weir serve` command line (after
// --data-dir, --listen and --http-listen), for example "--fsync", "always".
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithListeners runs the broker with --listeners spec (named listeners,
// NAME://host:port[,NAME://host:port...]) instead of --listen. Addr is then
// the first listener's host:port, so its port must not be 0.
func WithListeners(spec string) Option { return func(c *config) { c.listeners = spec } }

// WithEnv adds KEY=VALUE entries to the process environment (which otherwise
// is the test's own).
func WithEnv(env ...string) Option {
	return func(c *config) { c.env = append(c.env, env...) }
}

// WithBinary runs the given weir binary instead of building one. It takes
// precedence over WEIR_BINARY.
func WithBinary(path string) Option { return func(c *config) { c.binary = path } }

// WithStartTimeout bounds how long New, Start and Restart wait for the
// broker to be ready (default DefaultStartTimeout).
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithStopTimeout bounds how long Stop waits after SIGTERM before it kills
// the process and reports an error (default DefaultStopTimeout).
func WithStopTimeout(d time.Duration) Option { return func(c *config) { c.stopTimeout = d } }

// Broker is a running (or stopped) `weir serve` process, or an external
// broker named by WEIR_TEST_BROKER. Its methods are safe for concurrent use,
// but Stop, Kill and Restart are meant to be called from one goroutine.
type Broker struct {
	cfg      config
	external bool
	addr     string
	httpAddr string
	dataDir  string
	tmpDir   bool // dataDir was created by New and is removed by Close
	out      *output

	mu     sync.Mutex
	proc   *process // nil when stopped
	starts int
}

// process is one run of the binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid once done is closed
	sent syscall.Signal
}

// Start runs `weir serve` on free 127.0.0.1 ports and a temporary data
// directory (see the options), waits until it is ready (HTTP /readyz
// answers 200 and its Kafka port accepts connections) and returns it. It fails the test if the broker cannot start.
// A cleanup kills the process and, if the test failed, logs its output.
// With WEIR_TEST_BROKER set it returns that broker instead.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b, err := New(opts...)
	if err != nil {
		t.Fatalf("weirtest: start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, ErrExternal) {
			t.Logf("weirtest: close: %v", err)
		}
		if t.Failed() && !b.external {
			t.Logf("weirtest: output of weir serve (%s):\n%s", b.addr, b.Output())
		}
	})
	return b
}

// New is Start without a testing.TB, for examples and programs: the caller
// must call Close. On error no process is left running.
func New(opts ...Option) (*Broker, error) {
	cfg := config{startTimeout: DefaultStartTimeout, stopTimeout: DefaultStopTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if ext := os.Getenv(EnvBroker); ext != "" {
		if _, _, err := net.SplitHostPort(ext); err != nil {
			return nil, fmt.Errorf("weirtest: %s=%q: %w", EnvBroker, ext, err)
		}
		return &Broker{cfg: cfg, external: true, addr: ext, out: newOutput()}, nil
	}
	bin := cfg.binary
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	cfg.binary = bin
	b := &Broker{cfg: cfg, dataDir: cfg.dataDir, out: newOutput()}
	if b.dataDir == "" {
		dir, err := os.MkdirTemp("", "weirtest-data-")
		if err != nil {
			return nil, fmt.Errorf("weirtest: data dir: %w", err)
		}
		b.dataDir, b.tmpDir = dir, true
	}
	// Ports are picked by binding :0 and releasing them, so another process
	// may take one before weir binds it; retry a few times in that case.
	var err error
	for range 3 {
		if b.addr, err = freeAddr(); err != nil {
			break
		}
		if cfg.listeners != "" {
			if b.addr, err = firstListener(cfg.listeners); err != nil {
				break
			}
		}
		if b.httpAddr, err = freeAddr(); err != nil {
			break
		}
		if err = b.launch(); err == nil {
			return b, nil
		}
		if !errors.Is(err, ErrExited) || !strings.Contains(b.out.String(), "address already in use") {
			break
		}
	}
	if b.tmpDir {
		os.RemoveAll(b.dataDir)
	}
	return nil, err
}

// Addr is the Kafka listener's host:port.
func (b *Broker) Addr() string { return b.addr }

// HTTPAddr is the HTTP listener's host:port (metrics, health); empty for an
// external broker.
func (b *Broker) HTTPAddr() string { return b.httpAddr }

// DataDir is the broker's data directory; empty for an external broker.
func (b *Broker) DataDir() string { return b.dataDir }

// External reports whether the broker was named by WEIR_TEST_BROKER rather
// than started by this package.
func (b *Broker) External() bool { return b.external }

// Output returns what the process wrote to stdout and stderr over all its
// runs (the middle is elided when it grows large).
func (b *Broker) Output() string { return b.out.String() }

// Running reports whether the process is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return false
	}
	select {
	case <-b.proc.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for the process to exit. It returns nil when
// it exited with status 0, an *ExitError for any other status, and an error
// when it did not exit within the stop timeout (it is then killed).
func (b *Broker) Stop() error {
	return b.end(syscall.SIGTERM, b.cfg.stopTimeout)
}

// Kill sends SIGKILL, as a crash would, and waits for the process to exit.
func (b *Broker) Kill() error {
	return b.end(syscall.SIGKILL, b.cfg.stopTimeout)
}

// Restart stops the process if it is running (SIGTERM, as Stop; an unclean
// exit is returned as an error and the broker is not started), then starts
// it again on the same data directory and ports and waits until it accepts
// connections.
func (b *Broker) Restart() error {
	if b.external {
		return ErrExternal
	}
	if b.Running() {
		if err := b.Stop(); err != nil {
			return fmt.Errorf("weirtest: restart: %w", err)
		}
	}
	return b.launch()
}

// Close kills the process if it is still running and removes the data
// directory if New created it. It returns ErrExternal for an external broker.
func (b *Broker) Close() error {
	if b.external {
		return ErrExternal
	}
	var err error
	if b.Running() {
		err = b.Kill()
	}
	if b.tmpDir {
		if rerr := os.RemoveAll(b.dataDir); rerr != nil && err == nil {
			err = fmt.Errorf("weirtest: remove data dir: %w", rerr)
		}
	}
	return err
}

// launch starts the binary and waits until it is ready (see ready), the
// process exits, or the start timeout passes.
func (b *Broker) launch() error {
	b.mu.Lock()
	b.starts++
	fmt.Fprintf(b.out, "=== weirtest: start #%d: weir serve on %s\n", b.starts, b.addr)
	listen := []string{"--listen", b.addr}
	if b.cfg.listeners != "" {
		listen = []string{"--listeners", b.cfg.listeners}
	}
	args := append(append([]string{"serve", "--data-dir", b.dataDir}, listen...), "--http-listen", b.httpAddr)
	args = append(args, b.cfg.args...)
	cmd := exec.Command(b.cfg.binary, args...)
	cmd.Env = append(os.Environ(), b.cfg.env...)
	cmd.Stdout = b.out
	cmd.Stderr = b.out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		b.mu.Unlock()
		return fmt.Errorf("weirtest: start %s: %w", b.cfg.binary, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.proc = p
	b.mu.Unlock()

	deadline := time.Now().Add(b.cfg.startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b.ready() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w (%v); output:\n%s", ErrExited, p.err, b.out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			b.Kill()
			return fmt.Errorf("weirtest: %s was not ready within %v", b.addr, b.cfg.startTimeout)
		}
	}
}

// ready reports whether the broker serves: its HTTP /readyz answers 200
// (the server has finished starting: offsets topic created, partitions
// open), or, with no HTTP listener, its Kafka port accepts connections.
func (b *Broker) ready() bool {
	if b.httpAddr != "" {
		c := http.Client{Timeout: 500 * time.Millisecond}
		resp, err := c.Get("http://" + b.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	conn, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// end sends sig to the running process and waits for it to exit.
func (b *Broker) end(sig syscall.Signal, timeout time.Duration) error {
	if b.external {
		return ErrExternal
	}
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	if p == nil {
		return ErrNotRunning
	}
	select {
	case <-p.done:
		b.mu.Lock()
		b.proc = nil
		b.mu.Unlock()
		return fmt.Errorf("%w: it had already exited: %v", ErrNotRunning, p.err)
	default:
	}
	p.sent = sig
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("weirtest: signal %v: %w", sig, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.cmd.Process.Kill()
		<-p.done
		b.mu.Lock()
		b.proc = nil
		b.mu.Unlock()
		return fmt.Errorf("weirtest: weir did not exit within %v of %v; killed", timeout, sig)
	}
	b.mu.Lock()
	b.proc = nil
	b.mu.Unlock()
	return exitResult(p)
}

// exitResult turns the Wait result into Stop's and Kill's error: nil for
// status 0, or for death by the very signal Kill sent.
func exitResult(p *process) error {
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		return fmt.Errorf("weirtest: wait: %w", p.err)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		if ws.Signal() == p.sent && p.sent == syscall.SIGKILL {
			return nil
		}
		return &ExitError{Code: -1, Signal: ws.Signal()}
	}
	return &ExitError{Code: ee.ExitCode()}
}

// firstListener returns the host:port of the first listener of a
// --listeners spec.
func firstListener(spec string) (string, error) {
	first, _, _ := strings.Cut(spec, ",")
	_, addr, ok := strings.Cut(first, "://")
	if !ok {
		return "", fmt.Errorf("weirtest: listeners %q: want NAME://host:port[,...]", spec)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return "", fmt.Errorf("weirtest: listeners %q: the first listener needs a fixed host:port", spec)
	}
	return addr, nil
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("weirtest: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// output is a concurrency-safe sink for the process output that keeps the
// first headMax and at least the last tailMax bytes.
type output struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int64
}

const (
	headMax = 64 << 10
	tailMax = 512 << 10
)

func newOutput() *output { return &output{} }

// Write implements io.Writer; it never fails.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	if room := headMax - len(o.head); room > 0 {
		k := min(room, len(p))
		o.head = append(o.head, p[:k]...)
		p = p[k:]
	}
	o.tail = append(o.tail, p...)
	// Trim in large steps so that a chatty process costs amortised O(1).
	if len(o.tail) > 2*tailMax {
		extra := len(o.tail) - tailMax
		o.dropped += int64(extra)
		o.tail = slices.Delete(o.tail, 0, extra)
	}
	return n, nil
}

// String returns the kept output.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped == 0 {
		return string(o.head) + string(o.tail)
	}
	return fmt.Sprintf("%s\n... [%d bytes elided] ...\n%s", o.head, o.dropped, o.tail)
}
