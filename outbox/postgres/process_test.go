package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/outbox"
)

// relayProc is a `weir outbox relay` process.
type relayProc struct {
	t    *testing.T
	args []string
	mu   sync.Mutex
	out  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *relayProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *relayProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startRelayProc runs the relay CLI against the database and broker.
func startRelayProc(t *testing.T, dsn string, b *weirtest.Broker, extra ...string) *relayProc {
	t.Helper()
	bin, err := weirtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &relayProc{t: t, args: append([]string{bin, "outbox", "relay", "--db", dsn, "-b", b.Addr(),
		"--poll", "100ms", "--lease", "2s", "--timeout", "3s", "--transactions", "off"}, extra...)}
	p.start()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.kill()
		if t.Failed() {
			t.Logf("relay output:\n%s", p.log())
		}
	})
	return p
}

func (p *relayProc) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		close(done)
	}(p.cmd, p.done)
}

func (p *relayProc) signal(s syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(s)
	}
}

// stop sends SIGSTOP and waits until every thread of the process has
// stopped. The kill system call returns once the signal is queued; on a
// loaded machine the process can run on for milliseconds, long enough to
// publish rows written after the call and stop before deleting them, so
// that the next leader publishes them again (at-least-once, as designed).
func (p *relayProc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
	dir := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	waitFor(p.t, 10*time.Second, "the relay to stop", func() (bool, error) {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return false, err
		}
		for _, task := range tasks {
			stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
			if err != nil {
				return false, nil // the thread exited meanwhile: look again
			}
			// pid (comm) state ...: comm may hold spaces and parentheses.
			rest := stat[bytes.LastIndexByte(stat, ')')+1:]
			if f := bytes.Fields(rest); len(f) == 0 || (f[0][0] != 'T' && f[0][0] != 't') {
				return false, nil
			}
		}
		return len(tasks) > 0, nil
	})
}

// kill sends SIGKILL and waits for the process to exit.
func (p *relayProc) kill() {
	p.signal(syscall.SIGKILL)
	if p.done != nil {
		<-p.done
	}
}

// TestKill9RelayDuringLoad kills the relay process with SIGKILL at random
// points while the writers run (5 times; 50 with WEIR_OUTBOX_SOAK): every
// committed row arrives, exactly once after deduplication on the id
// header, in commit order per aggregate.
func TestKill9RelayDuringLoad(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t, weirtest.WithArgs("--default-partitions", "4"))
	kills := 5
	if soak() {
		kills = 50
	}
	l := newLoad()
	p := startRelayProc(t, e.dsn, b)
	loadDone := make(chan error, 1)
	go func() { loadDone <- l.run(e) }()
	rng := rand.New(rand.NewPCG(1, 2))
	for range kills {
		<-time.After(time.Duration(100+rng.IntN(500)) * time.Millisecond) // a random point of the load
		p.kill()
		p.start()
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpSessions(t, e)
		}
	})
	waitFor(t, 120*time.Second, "outbox drained", pending(e))
	dups := l.check(t, b, 4)
	t.Logf("%d kills: %d rows committed, %d rolled back, %d duplicate deliveries (deduplicated by id)", kills, l.committed, len(l.rolledBack), dups)
}

// TestSIGSTOPLeaderFailover runs three relays; stopping the leader
// (SIGSTOP) hands the advisory lock to another within its lease, which
// publishes; the old leader, continued, finds itself fenced and publishes
// nothing.
func TestSIGSTOPLeaderFailover(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t)
	procs := make([]*relayProc, 3)
	for i := range procs {
		procs[i] = startRelayProc(t, e.dsn, b)
	}
	leaders := func() []int {
		var ls []int
		for i, p := range procs {
			if strings.Count(p.log(), `msg="outbox relay: leader"`) > strings.Count(p.log(), "fenced") {
				ls = append(ls, i)
			}
		}
		return ls
	}
	waitFor(t, 20*time.Second, "one leader", func() (bool, error) { return len(leaders()) == 1, nil })
	old := leaders()[0]
	write := func(from, to int) {
		for i := from; i < to; i++ {
			e.write(t, outbox.Message{AggregateType: "ha", AggregateID: fmt.Sprint(i % 5), Payload: []byte(fmt.Sprint(i))})
		}
	}
	write(0, 10)
	waitFor(t, 10*time.Second, "leader publishes", pending(e))

	procs[old].stop()
	stopped := time.Now()
	write(10, 20)
	waitFor(t, 10*time.Second, "another relay publishes", pending(e))
	ls := leaders()
	if len(ls) != 2 || ls[0] == ls[1] {
		t.Fatalf("leaders after SIGSTOP: %v (old %d)", ls, old)
	}

	if soak() {
		<-time.After(time.Until(stopped.Add(30 * time.Second))) // the scenario: stopped for 30 s
	}
	procs[old].signal(syscall.SIGCONT)
	waitFor(t, 10*time.Second, "old leader fenced", func() (bool, error) {
		return strings.Contains(procs[old].log(), "fenced"), nil
	})
	write(20, 30)
	waitFor(t, 10*time.Second, "rows published", pending(e))
	got := consume(t, b.Addr(), "outbox.event.ha", 1, 30)
	if len(got) != 30 {
		t.Fatalf("%d records for 30 rows: the old leader published after failover", len(got))
	}
}

// dumpSessions logs the database's sessions and advisory locks.
func dumpSessions(t *testing.T, e *env) {
	rows, err := e.pool.Query(context.Background(), `SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
		coalesce(a.backend_xid::text, ''), coalesce(left(a.query, 80), ''), coalesce(l.granted::text, '')
		FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory'
		WHERE a.datname = current_database()`)
	if err != nil {
		t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		var app, state, xid, q, granted string
		if err := rows.Scan(&pid, &app, &state, &xid, &q, &granted); err != nil {
			t.Log(err)
			return
		}
		t.Logf("session %d %q %s xid=%s advisory=%s: %s", pid, app, state, xid, granted, q)
	}
}
