package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// groupPartitions is the partition count of the group tests' topics.
	groupPartitions = 6
	// memberSession is the session timeout every member process uses
	// (the broker's group.min.session.timeout.ms).
	memberSession = 6 * time.Second
	// takeoverLimit bounds the time from kill -9 of a member to the
	// survivors owning every partition: the session timeout, then one
	// rebalance (members learn of it within a 1 s heartbeat).
	takeoverLimit = memberSession + 6*time.Second
	// groupWaitLimit bounds every other wait of the group tests.
	groupWaitLimit = 60 * time.Second
)

// memberEvent is one line a member process reports (see
// groupmember/main.go and group_confluent_member.py).
type memberEvent struct {
	M   string  `json:"m"`
	Ev  string  `json:"ev"`
	Gen int32   `json:"gen"`
	Ps  []int32 `json:"ps"`
	P   int32   `json:"p"`
	O   int64   `json:"o"`
}

// memberProc is one member process.
type memberProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when the process exited and its output was read
}

// lockedBuffer is a bytes.Buffer safe for one writer and readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// groupRun runs member processes of one group and checks, as their events
// arrive, that a member only processes partitions it owns. A background
// monitor checks that no committed offset ever moves backwards.
type groupRun struct {
	t            *testing.T
	addr, group  string
	topic        string
	adm          *kadm.Client
	wg           sync.WaitGroup
	stopMonitor  context.CancelFunc
	mu           sync.Mutex
	members      map[string]*memberProc
	owned        map[string]map[int32]bool // by member, from its own events
	processed    map[[2]int64]int          // (partition, offset) → times
	gens         map[string][]int32        // generations each member reported
	committed    map[int32]int64           // last committed offset seen by the monitor
	violations   []string
	eventsByName map[string][]memberEvent
}

// newGroupRun prepares a run; members are started with start. Cleanup
// stops every member (SIGTERM, then SIGKILL) and the monitor.
func newGroupRun(t *testing.T, addr, group, topic string) *groupRun {
	g := &groupRun{
		t: t, addr: addr, group: group, topic: topic, adm: newAdmin(t, addr),
		members: map[string]*memberProc{}, owned: map[string]map[int32]bool{},
		processed: map[[2]int64]int{}, gens: map[string][]int32{}, committed: map[int32]int64{},
		eventsByName: map[string][]memberEvent{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stopMonitor = cancel
	g.wg.Go(func() { g.monitorCommits(ctx) })
	t.Cleanup(func() {
		g.stopAll()
		cancel()
		g.wg.Wait()
		g.mu.Lock()
		if !t.Failed() && len(g.violations) > 0 {
			t.Errorf("after the members stopped:\n%s", joinLines(g.violations))
		}
		g.mu.Unlock()
		if t.Failed() {
			g.mu.Lock()
			for name, m := range g.members {
				t.Logf("member %s stderr:\n%s", name, tail(m.stderr.String(), 3000))
			}
			g.mu.Unlock()
		}
	})
	return g
}

var (
	groupMemberOnce sync.Once
	groupMemberBin  string
	groupMemberErr  error
)

// groupMemberBinary builds compat/groupmember once per test binary, into a
// per-user directory under the system temp dir (as weirtest does for weir).
func groupMemberBinary(t *testing.T) string {
	t.Helper()
	groupMemberOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "weir-compat-"+strconv.Itoa(os.Getuid()))
		if groupMemberErr = os.MkdirAll(dir, 0o755); groupMemberErr != nil {
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("groupmember.%d", os.Getpid()))
		out, err := exec.Command("go", "build", "-o", tmp, "./groupmember").CombinedOutput()
		if err != nil {
			groupMemberErr = fmt.Errorf("go build ./groupmember: %v\n%s", err, out)
			return
		}
		groupMemberBin = filepath.Join(dir, "groupmember")
		groupMemberErr = os.Rename(tmp, groupMemberBin)
	})
	if groupMemberErr != nil {
		t.Fatal(groupMemberErr)
	}
	return groupMemberBin
}

// start runs a member: kind is franz, sarama or confluent. instance, if
// set, is its group.instance.id.
func (g *groupRun) start(kind, name, instance string) *memberProc {
	g.t.Helper()
	var cmd *exec.Cmd
	switch kind {
	case "franz", "sarama":
		args := []string{"-client", kind, "-brokers", g.addr, "-group", g.group, "-topic", g.topic, "-name", name}
		if instance != "" {
			args = append(args, "-instance", instance)
		}
		cmd = exec.Command(groupMemberBinary(g.t), args...)
	case "confluent":
		requirePythonModule(g.t, "confluent_kafka", "python3-confluent-kafka")
		args := []string{"-B", "group_confluent_member.py", g.addr, g.group, g.topic, name}
		if instance != "" {
			args = append(args, instance)
		}
		cmd = exec.Command(python, args...)
	default:
		g.t.Fatalf("unknown member kind %q", kind)
	}
	cmd.SysProcAttr = childProcAttr()
	m := &memberProc{name: name, cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = m.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("start member %s: %v", name, err)
	}
	g.mu.Lock()
	g.members[name] = m
	g.owned[name] = map[int32]bool{}
	g.mu.Unlock()
	g.wg.Go(func() {
		defer close(m.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev memberEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				g.violation("member %s: malformed event %q", name, sc.Text())
				continue
			}
			g.add(name, ev)
		}
		_ = cmd.Wait()
	})
	return m
}

func (g *groupRun) violation(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.violationLocked(format, args...)
}

func (g *groupRun) violationLocked(format string, args ...any) {
	if len(g.violations) < 20 {
		g.violations = append(g.violations, fmt.Sprintf(format, args...))
	}
}

// add applies one event in the order its member reported it.
func (g *groupRun) add(name string, ev memberEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.eventsByName[name] = append(g.eventsByName[name], ev)
	switch ev.Ev {
	case "assigned":
		for _, p := range ev.Ps {
			g.owned[name][p] = true
		}
		g.gens[name] = append(g.gens[name], ev.Gen)
	case "revoked":
		for _, p := range ev.Ps {
			delete(g.owned[name], p)
		}
	case "rec":
		if !g.owned[name][ev.P] {
			g.violationLocked("member %s processed %d@%d without owning partition %d", name, ev.P, ev.O, ev.P)
		}
		g.processed[[2]int64{int64(ev.P), ev.O}]++
	case "commit":
	default:
		g.violationLocked("member %s: unknown event %q", name, ev.Ev)
	}
}

// monitorCommits polls the group's committed offsets until ctx ends and
// records any that moved backwards.
func (g *groupRun) monitorCommits(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		offs, err := g.adm.FetchOffsetsForTopics(rctx, g.group, g.topic)
		cancel()
		if err != nil {
			continue // the coordinator may be restarting; the next poll decides
		}
		g.mu.Lock()
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || o.At < 0 || o.Topic != g.topic {
				return
			}
			if last, ok := g.committed[o.Partition]; ok && o.At < last {
				g.violationLocked("committed offset of partition %d moved backwards: %d -> %d", o.Partition, last, o.At)
			}
			g.committed[o.Partition] = o.At
		})
		g.mu.Unlock()
	}
}

// kill ends a member with SIGKILL and waits for it.
func (g *groupRun) kill(name string) {
	g.t.Helper()
	g.mu.Lock()
	m := g.members[name]
	g.mu.Unlock()
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		g.t.Fatalf("kill -9 %s: %v", name, err)
	}
	<-m.done
}

// stop ends a member with SIGTERM (it closes cleanly) and waits up to 20 s
// before killing it.
func (g *groupRun) stop(name string) {
	g.mu.Lock()
	m := g.members[name]
	g.mu.Unlock()
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-m.done:
	case <-t.C:
		_ = m.cmd.Process.Kill()
		<-m.done
		g.violation("member %s did not stop within 20s of SIGTERM", name)
	}
}

func (g *groupRun) stopAll() {
	g.mu.Lock()
	names := make([]string, 0, len(g.members))
	for n := range g.members {
		names = append(names, n)
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { g.stop(n) })
	}
	wg.Wait()
}

// checkViolations fails the test with what the run found wrong.
func (g *groupRun) checkViolations() {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.violations) > 0 {
		g.t.Fatalf("%d group guarantee violations:\n%s", len(g.violations), joinLines(g.violations))
	}
}

func joinLines(s []string) string {
	var b bytes.Buffer
	for _, l := range s {
		b.WriteString("\t" + l + "\n")
	}
	return b.String()
}

// waitUntil polls cond every 50 ms until it returns nil or limit passes,
// then fails with cond's last error.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not reached within %v: %v", what, limit, err)
		}
		<-tick.C
	}
}

// stableWith reports nil when the group is Stable with exactly the named
// members (by client id), every partition is assigned to exactly one of
// them, and each member's own reported ownership matches the broker's.
func (g *groupRun) stableWith(names ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := g.adm.DescribeGroups(ctx, g.group)
	if err != nil {
		return err
	}
	d := gs[g.group]
	if d.Err != nil {
		return d.Err
	}
	if d.State != "Stable" || len(d.Members) != len(names) {
		return fmt.Errorf("state %s with %d members, want Stable with %d", d.State, len(d.Members), len(names))
	}
	owner := map[int32]string{}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range d.Members {
		if !slices.Contains(names, m.ClientID) {
			return fmt.Errorf("unexpected member %s (%s)", m.ClientID, m.MemberID)
		}
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			return fmt.Errorf("member %s: no consumer assignment", m.ClientID)
		}
		var ps []int32
		for _, tp := range ca.Topics {
			if tp.Topic != g.topic {
				continue
			}
			for _, p := range tp.Partitions {
				if o, dup := owner[p]; dup {
					return fmt.Errorf("partition %d assigned to both %s and %s", p, o, m.ClientID)
				}
				owner[p] = m.ClientID
				ps = append(ps, p)
			}
		}
		self := slices.Sorted(maps.Keys(g.owned[m.ClientID]))
		slices.Sort(ps)
		if !slices.Equal(ps, self) {
			return fmt.Errorf("member %s: broker says %v, member says it owns %v", m.ClientID, ps, self)
		}
	}
	if len(owner) != groupPartitions {
		return fmt.Errorf("%d of %d partitions assigned", len(owner), groupPartitions)
	}
	return nil
}

// processedAll reports nil when messages 0..n-1 of produceSpread were all
// processed at least once.
func (g *groupRun) processedAll(n int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	missing := 0
	for i := range n {
		if g.processed[spreadAt(i)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d messages not processed yet", missing, n)
	}
	return nil
}

// committedAll reports nil when the group has committed n/groupPartitions
// on every partition (everything of produceSpread(0, n)).
func (g *groupRun) committedAll(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := g.adm.FetchOffsetsForTopics(ctx, g.group, g.topic)
	if err != nil {
		return err
	}
	for p := range int32(groupPartitions) {
		o, ok := offs.Lookup(g.topic, p)
		if want := int64(n / groupPartitions); !ok || o.Err != nil || o.At != want {
			return fmt.Errorf("partition %d: committed %d (err %v), want %d", p, o.At, o.Err, want)
		}
	}
	return nil
}

// spreadAt is where produceSpread puts message i: partition i%6, offset i/6.
func spreadAt(i int) [2]int64 {
	return [2]int64{int64(i % groupPartitions), int64(i / groupPartitions)}
}

// produceSpread produces messages from..to-1 to a groupPartitions-partition
// topic, message i to partition i%6, and checks each landed at offset i/6.
func produceSpread(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	// Uncompressed: Debian's kafka-python has no snappy library.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx := timeout(t)
	var (
		mu   sync.Mutex
		errs []error
	)
	for i := from; i < to; i++ {
		at := spreadAt(i)
		r := &kgo.Record{Partition: int32(at[0]), Key: fmt.Appendf(nil, "k%06d", i), Value: fmt.Appendf(nil, "g%06d", i)}
		cl.Produce(ctx, r, func(got *kgo.Record, err error) {
			if err == nil && got.Offset != at[1] {
				err = fmt.Errorf("acknowledged at %d@%d, want %d@%d", got.Partition, got.Offset, at[0], at[1])
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("kgo: flush: %v", err)
	}
	if len(errs) > 0 {
		t.Fatalf("kgo: %d produces failed: %v", len(errs), errors.Join(errs[:min(len(errs), 5)]...))
	}
}
