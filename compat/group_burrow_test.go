package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// zookeeperJar is Debian's ZooKeeper server (package zookeeper); its
	// manifest names the jars it needs.
	zookeeperJar = "/usr/share/java/zookeeper.jar"
	// burrowBacklog is how many messages per partition the Burrow test
	// leaves unconsumed: the lag Burrow must report.
	burrowBacklog = 60
)

// TestGroupBurrow points Burrow 1.2.1 (LinkedIn's lag monitor, Debian
// package burrow) at Weir. Burrow finds the group by reading the
// __consumer_offsets topic itself (Kafka's record formats) and the log end
// offsets with ListOffsets v0, through sarama at kafka-version 2.1.0. Two
// franz-go members consume and commit everything, stop, and
// burrowBacklog more messages per partition are produced: Burrow's HTTP API
// must then report that lag on every partition. Burrow needs a ZooKeeper
// for its own coordination; the test runs Debian's as a process on
// 127.0.0.1 with a temporary data directory.
func TestGroupBurrow(t *testing.T) {
	burrow := requireCommand(t, "Burrow", "burrow")
	java := requireCommand(t, "java", "zookeeper")
	if _, err := os.Stat(zookeeperJar); err != nil {
		t.Fatalf("%s is missing (Debian package zookeeper; `make deps` or scripts/install-test-deps.sh installs it): %v", zookeeperJar, err)
	}
	b := startBroker(t)
	topic := topicName("group-burrow")
	group := groupName("burrow-lag") // not in Burrow's default blacklist
	createTopic(t, b.Addr(), topic, groupPartitions)
	g := newGroupRun(t, b.Addr(), group, topic)
	const n = 600
	produceSpread(t, b.Addr(), topic, 0, n)
	for _, name := range []string{"burrow-1", "burrow-2"} {
		g.start("franz", name, "")
	}
	waitUntil(t, groupWaitLimit, "commits", func() error { return g.committedAll(n) })
	g.stopAll()
	produceSpread(t, b.Addr(), topic, n, n+burrowBacklog*groupPartitions)

	zk := startZooKeeper(t, java)
	httpAddr := startBurrow(t, burrow, zk, b.Addr())
	url := "http://" + httpAddr + "/v3/kafka/weir/consumer/" + group + "/lag"
	var last string
	waitUntil(t, 90*time.Second, "Burrow reporting the lag", func() error {
		body, err := httpGet(url)
		last = body
		if err != nil {
			return err
		}
		return checkBurrowLag(body, topic)
	})
	t.Logf("Burrow: %s", tail(last, 400))
	g.checkViolations()
}

// checkBurrowLag checks a Burrow v3 consumer lag answer.
func checkBurrowLag(body, topic string) error {
	var resp struct {
		Error   bool   `json:"error"`
		Message string `json:"message"`
		Status  struct {
			PartitionCount int   `json:"partition_count"`
			TotalLag       int64 `json:"totallag"`
			Partitions     []struct {
				Topic      string `json:"topic"`
				Partition  int32  `json:"partition"`
				CurrentLag int64  `json:"current_lag"`
			} `json:"partitions"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return fmt.Errorf("answer is not JSON: %v", err)
	}
	if resp.Error {
		return fmt.Errorf("Burrow: %s", resp.Message)
	}
	st := resp.Status
	if st.PartitionCount != groupPartitions || len(st.Partitions) != groupPartitions {
		return fmt.Errorf("%d partitions reported, want %d", len(st.Partitions), groupPartitions)
	}
	for _, p := range st.Partitions {
		if p.Topic != topic || p.CurrentLag != burrowBacklog {
			return fmt.Errorf("%s/%d: lag %d, want %d", p.Topic, p.Partition, p.CurrentLag, burrowBacklog)
		}
	}
	if st.TotalLag != burrowBacklog*groupPartitions {
		return fmt.Errorf("total lag %d, want %d", st.TotalLag, burrowBacklog*groupPartitions)
	}
	return nil
}

func httpGet(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess starts cmd with its output kept, and registers a cleanup
// that stops it (SIGTERM, then SIGKILL after 10 s) and logs its output if
// the test failed. The channel is closed when the process has exited.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(out.String(), 4000))
		}
	})
	return done
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr, what string) {
	t.Helper()
	waitUntil(t, 30*time.Second, what+" listening on "+addr, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// startZooKeeper runs a standalone ZooKeeper on 127.0.0.1 with a temporary
// data directory and returns its address.
func startZooKeeper(t *testing.T, java string) string {
	t.Helper()
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cfg := strings.Join([]string{
		"tickTime=2000",
		"dataDir=" + filepath.Join(dir, "data"),
		"clientPort=" + port,
		"clientPortAddress=127.0.0.1",
		"admin.enableServer=false",
		"maxClientCnxns=60",
		"4lw.commands.whitelist=ruok",
	}, "\n") + "\n"
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(java, "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
		"-cp", zookeeperJar, "org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Dir = dir
	startProcess(t, "zookeeper", cmd)
	// The port opens before the server serves sessions; "imok" comes after.
	waitUntil(t, 30*time.Second, "ZooKeeper answering ruok on "+addr, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ruok")); err != nil {
			return err
		}
		b, _ := io.ReadAll(c)
		if string(b) != "imok" {
			return fmt.Errorf("ruok answered %q", b)
		}
		return nil
	})
	return addr
}

// startBurrow runs Burrow with a generated configuration watching the
// Kafka cluster at kafka (named "weir") and returns its HTTP address.
func startBurrow(t *testing.T, burrow, zk, kafka string) string {
	t.Helper()
	dir := t.TempDir()
	httpAddr := freeLoopbackAddr(t)
	cfg := fmt.Sprintf(`[general]
pidfile=%[1]q

[logging]
level="info"

[zookeeper]
servers=[%[2]q]
timeout=6
root-path="/burrow"

[client-profile.weir]
client-id="weir-compat-burrow"
kafka-version="2.1.0"

[cluster.weir]
class-name="kafka"
servers=[%[3]q]
client-profile="weir"
topic-refresh=5
offset-refresh=2

[consumer.weir]
class-name="kafka"
cluster="weir"
servers=[%[3]q]
client-profile="weir"
group-blacklist="^(console-consumer-|python-kafka-consumer-|quick-).*$"

[httpserver.default]
address=%[4]q

[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
`, filepath.Join(dir, "burrow.pid"), zk, kafka, httpAddr)
	if err := os.WriteFile(filepath.Join(dir, "burrow.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// A ZooKeeper that has just started may drop the first sessions (the
	// client sees EOF), and Burrow then exits: start it again while polling,
	// a bounded number of times.
	var done <-chan struct{}
	attempts := 0
	waitUntil(t, 60*time.Second, "Burrow serving HTTP on "+httpAddr, func() error {
		exited := done == nil
		if !exited {
			select {
			case <-done:
				exited = true
			default:
			}
		}
		if exited {
			if attempts++; attempts > 50 {
				t.Fatalf("Burrow exited %d times before serving HTTP", attempts-1)
			}
			cmd := exec.Command(burrow, "-config-dir", dir)
			cmd.Dir = dir
			done = startProcess(t, fmt.Sprintf("Burrow (start %d)", attempts), cmd)
		}
		c, err := net.DialTimeout("tcp", httpAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return httpAddr
}
