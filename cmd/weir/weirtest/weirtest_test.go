package weirtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakeBinary is fakeweir (testdata/fakeweir), built by TestMain.
var fakeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weirtest-fake-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBinary = filepath.Join(dir, "fakeweir")
	if out, err := exec.Command("go", "build", "-o", fakeBinary, "./testdata/fakeweir").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakeweir: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

// startFake runs fakeweir through the public API.
func startFake(t *testing.T, opts ...Option) *Broker {
	t.Helper()
	t.Setenv(EnvBroker, "")
	return Start(t, append([]Option{WithBinary(fakeBinary)}, opts...)...)
}

func starts(t *testing.T, b *Broker) string {
	t.Helper()
	n, err := os.ReadFile(filepath.Join(b.DataDir(), "starts"))
	if err != nil {
		t.Fatal(err)
	}
	return string(n)
}

func dial(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.Close()
}

func TestStartStopRestartKill(t *testing.T) {
	b := startFake(t, WithEnv("FAKEWEIR_NOTE=hello"))
	if b.External() {
		t.Fatal("External() = true for a started process")
	}
	for name, addr := range map[string]string{"Addr": b.Addr(), "HTTPAddr": b.HTTPAddr()} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Errorf("%s() = %q, want a 127.0.0.1 address", name, addr)
		}
	}
	if b.Addr() == b.HTTPAddr() {
		t.Errorf("Addr and HTTPAddr are both %s", b.Addr())
	}
	dial(t, b.Addr())
	if got := starts(t, b); got != "1" {
		t.Fatalf("starts = %s, want 1", got)
	}
	out := b.Output()
	for _, want := range []string{"data-dir=" + b.DataDir(), "listen=" + b.Addr(), "http=" + b.HTTPAddr(), "env=hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	addr := b.Addr()
	if err := b.Restart(); err != nil {
		t.Fatalf("Restart (running): %v", err)
	}
	if b.Addr() != addr {
		t.Fatalf("Restart moved the broker from %s to %s", addr, b.Addr())
	}
	dial(t, b.Addr())
	if got := starts(t, b); got != "2" {
		t.Fatalf("starts after Restart = %s, want 2 (same data dir)", got)
	}
	if !strings.Contains(b.Output(), "fakeweir: SIGTERM") {
		t.Errorf("Restart did not stop the process with SIGTERM:\n%s", b.Output())
	}

	if err := b.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if b.Running() {
		t.Fatal("Running() after Kill")
	}
	if err := b.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Kill = %v, want ErrNotRunning", err)
	}
	if err := b.Restart(); err != nil {
		t.Fatalf("Restart (killed): %v", err)
	}
	if got := starts(t, b); got != "3" {
		t.Fatalf("starts = %s, want 3", got)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := b.Stop(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Stop = %v, want ErrNotRunning", err)
	}
}

func TestStopReportsExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int // 0: Stop returns nil
	}{
		{"clean", nil, 0},
		{"status 3", []string{"--term-exit", "3"}, 3},
		{"ignores SIGTERM", []string{"--ignore-term"}, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startFake(t, WithArgs(tt.args...), WithStopTimeout(500*time.Millisecond))
			err := b.Stop()
			switch {
			case tt.wantCode == 0:
				if err != nil {
					t.Fatalf("Stop = %v, want nil", err)
				}
			case tt.wantCode > 0:
				ee, ok := errors.AsType[*ExitError](err)
				if !ok || ee.Code != tt.wantCode {
					t.Fatalf("Stop = %v, want *ExitError with code %d", err, tt.wantCode)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "did not exit") {
					t.Fatalf("Stop = %v, want a did-not-exit error", err)
				}
			}
			if b.Running() {
				t.Fatal("process still running after Stop")
			}
		})
	}
}

func TestStartFailsFastWhenProcessExits(t *testing.T) {
	t.Setenv(EnvBroker, "")
	b, err := New(WithBinary(fakeBinary), WithArgs("--fail-start"), WithStartTimeout(time.Hour))
	if err == nil {
		b.Close()
		t.Fatal("New succeeded with a binary that exits at once")
	}
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "failing on purpose") {
		t.Fatalf("New = %v, want ErrExited carrying the process output", err)
	}
}

func TestStartUsesGivenDataDir(t *testing.T) {
	dir := t.TempDir()
	b := startFake(t, WithDataDir(dir))
	if b.DataDir() != dir {
		t.Fatalf("DataDir() = %s, want %s", b.DataDir(), dir)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "starts")); err != nil {
		t.Fatalf("Close removed a data dir it did not create: %v", err)
	}
}

func TestCloseRemovesTemporaryDataDir(t *testing.T) {
	b := startFake(t)
	dir := b.DataDir()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Running() {
		t.Fatal("Running() after Close")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir %s still exists after Close (stat: %v)", dir, err)
	}
}

func TestExternalBroker(t *testing.T) {
	t.Setenv(EnvBroker, "127.0.0.1:9")
	b := Start(t)
	if !b.External() || b.Addr() != "127.0.0.1:9" || b.DataDir() != "" || b.HTTPAddr() != "" {
		t.Fatalf("external broker = %+v", b)
	}
	for name, f := range map[string]func() error{"Stop": b.Stop, "Kill": b.Kill, "Restart": b.Restart, "Close": b.Close} {
		if err := f(); !errors.Is(err, ErrExternal) {
			t.Errorf("%s = %v, want ErrExternal", name, err)
		}
	}
}

func TestExternalBrokerBadAddress(t *testing.T) {
	t.Setenv(EnvBroker, "no-port")
	if b, err := New(); err == nil {
		t.Fatalf("New with %s=no-port = %+v, want an error", EnvBroker, b)
	}
}

func TestBinaryFromEnvironment(t *testing.T) {
	t.Setenv(EnvBinary, fakeBinary)
	got, err := Binary()
	if err != nil || got != fakeBinary {
		t.Fatalf("Binary() = %q, %v; want %q", got, err, fakeBinary)
	}
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "missing"))
	if _, err := Binary(); err == nil {
		t.Fatal("Binary() accepted a missing WEIR_BINARY")
	}
}

func TestOutputKeepsHeadAndTail(t *testing.T) {
	tests := []struct {
		name    string
		writes  int
		size    int
		elided  bool
		maxSize int
	}{
		{"small", 10, 100, false, 1000},
		{"exactly head", 1, headMax, false, headMax},
		{"large", 100, 32 << 10, true, headMax + 2*tailMax + 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutput()
			for i := range tt.writes {
				line := fmt.Sprintf("w%06d|", i)
				chunk := line + strings.Repeat(".", tt.size-len(line))
				if n, err := o.Write([]byte(chunk)); n != len(chunk) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s := o.String()
			if !strings.HasPrefix(s, "w000000|") {
				t.Errorf("output lost its head: %.40q", s)
			}
			if last := fmt.Sprintf("w%06d|", tt.writes-1); !strings.Contains(s[max(0, len(s)-tt.size-100):], last) {
				t.Errorf("output lost its tail %q", last)
			}
			if got := strings.Contains(s, "bytes elided"); got != tt.elided {
				t.Errorf("elided = %v, want %v", got, tt.elided)
			}
			if len(s) > tt.maxSize {
				t.Errorf("kept %d bytes, want at most %d", len(s), tt.maxSize)
			}
		})
	}
}

// recordingTB is a testing.TB whose failures, logs and cleanups are kept for
// inspection, so Start's own failure handling can be tested.
type recordingTB struct {
	testing.TB
	failed   bool
	logs     []string
	cleanups []func()
}

func (r *recordingTB) Helper()                   {}
func (r *recordingTB) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Failed() bool              { return r.failed }
func (r *recordingTB) Errorf(f string, a ...any) { r.failed = true; r.Logf(f, a...) }
func (r *recordingTB) Logf(f string, a ...any)   { r.logs = append(r.logs, fmt.Sprintf(f, a...)) }

func (r *recordingTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestStartCleanupKillsProcessAndDumpsOutputOnFailure(t *testing.T) {
	for _, failed := range []bool{false, true} {
		t.Run(fmt.Sprintf("failed=%v", failed), func(t *testing.T) {
			t.Setenv(EnvBroker, "")
			rec := &recordingTB{TB: t}
			b := Start(rec, WithBinary(fakeBinary))
			pid := b.proc.cmd.Process.Pid
			if failed {
				rec.Errorf("the test failed")
			}
			rec.runCleanups()
			if b.Running() {
				t.Fatal("process still running after cleanup")
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("process %d still exists after cleanup (kill 0: %v)", pid, err)
			}
			dumped := strings.Contains(strings.Join(rec.logs, "\n"), "fakeweir: serve")
			if dumped != failed {
				t.Fatalf("output dumped = %v, want %v; logs: %q", dumped, failed, rec.logs)
			}
		})
	}
}
