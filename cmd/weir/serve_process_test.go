package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/cmd/weir/weirtest"

	"github.com/weir-broker/weir/internal/syncbuf"
)

// serveProcess is a `weir serve` the test runs itself on 127.0.0.1, so that
// stdout and stderr stay apart and any signal can be sent (weirtest merges
// the two streams and only sends SIGTERM and SIGKILL). A cleanup kills it
// and, if the test failed, logs both streams.
type serveProcess struct {
	t        *testing.T
	bin      string
	args     []string
	dataDir  string
	addr     string
	httpAddr string
	runs     int
	earlier  strings.Builder // output of the runs before this one

	cmd    *exec.Cmd
	done   chan struct{} // closed when Wait returned
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
}

// startServe runs `weir serve` on a temporary data directory and free
// ports, with args appended, and waits until it is ready and has printed
// its banner.
func startServe(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	p := newServe(t, args...)
	p.start()
	return p
}

// newServe is startServe without the start: the test may change args
// first.
func newServe(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	bin, err := weirtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{t: t, bin: bin, args: args, dataDir: t.TempDir(),
		addr: freeLoopback(t, "127.0.0.1"), httpAddr: freeLoopback(t, "127.0.0.1")}
	t.Cleanup(func() {
		if p.running() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() && p.runs > 0 {
			t.Logf("weir serve output:\n%s--- run %d stdout:\n%s--- run %d stderr:\n%s", &p.earlier, p.runs, p.stdout, p.runs, p.stderr)
		}
	})
	return p
}

// start launches the process (again, on the same data directory and ports)
// with fresh output buffers.
func (p *serveProcess) start() {
	p.t.Helper()
	if p.runs > 0 {
		fmt.Fprintf(&p.earlier, "--- run %d stdout:\n%s--- run %d stderr:\n%s", p.runs, p.stdout, p.runs, p.stderr)
	}
	p.runs++
	args := append([]string{"serve", "--data-dir", p.dataDir, "--listen", p.addr, "--http-listen", p.httpAddr}, p.args...)
	p.cmd = exec.Command(p.bin, args...)
	p.cmd.SysProcAttr = childProcAttr()
	p.stdout, p.stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd, done := p.cmd, make(chan struct{})
	p.done = done
	go func() {
		cmd.Wait()
		close(done)
	}()
	client := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ready := func() bool {
		if !p.running() {
			p.t.Fatalf("weir serve (run %d) exited before it was ready: %v\nstderr:\n%s", p.runs, p.cmd.ProcessState, p.stderr)
		}
		resp, err := client.Get("http://" + p.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(p.stdout.String(), "bootstrap address: ")
	}
	waitFor(p.t, 30*time.Second, "ready weir serve with its banner", ready)
}

func (p *serveProcess) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends sig, waits for the process to exit and returns its exit status
// (-1 when a signal ended it).
func (p *serveProcess) stop(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("weir serve did not exit within 30s of %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestServeLogFormat: with --log-format json every line serve writes to
// stderr is a JSON object with slog's time, level and msg; with text every
// line is slog's key=value form and none is JSON. The logs go to stderr
// only: stdout holds the banner.
func TestServeLogFormat(t *testing.T) {
	textLine := regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=`)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			p := startServe(t, "--log-format", format, "--log-level", "debug", "--default-partitions", "2")
			// Some work, so that more than the start-up lines are logged.
			mustCLI(t, nil, "", "topic", "create", "logged", "-p", "2", "-b", p.addr)
			mustCLI(t, nil, "a\nb\nc\n", "produce", "logged", "-b", p.addr)
			if code := p.stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("SIGTERM: exit %d", code)
			}
			lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n")
			var msgs []string
			for i, line := range lines {
				if format == "text" {
					if json.Valid([]byte(line)) || !textLine.MatchString(line) {
						t.Errorf("stderr line %d is not a slog text line: %q", i+1, line)
					}
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Errorf("stderr line %d is not a JSON object (%v): %q", i+1, err, line)
					continue
				}
				ts, _ := rec["time"].(string)
				if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
					t.Errorf("stderr line %d: time %v is not RFC 3339: %q", i+1, rec["time"], line)
				}
				if lv, _ := rec["level"].(string); !slices.Contains([]string{"DEBUG", "INFO", "WARN", "ERROR"}, lv) {
					t.Errorf("stderr line %d: level %v: %q", i+1, rec["level"], line)
				}
				msg, ok := rec["msg"].(string)
				if !ok || msg == "" {
					t.Errorf("stderr line %d: no msg: %q", i+1, line)
				}
				msgs = append(msgs, msg)
			}
			if format == "json" && (!slices.Contains(msgs, "kafka listener started") || !slices.Contains(msgs, "shutdown complete")) {
				t.Errorf("JSON log lacks the listener and shutdown messages; msgs %q", msgs)
			}
			if format == "text" && !strings.Contains(p.stderr.String(), `msg="shutdown complete"`) {
				t.Errorf("text log lacks the shutdown message:\n%s", p.stderr)
			}
			for _, line := range strings.Split(p.stdout.String(), "\n") {
				if json.Valid([]byte(line)) && strings.HasPrefix(line, "{") || textLine.MatchString(line) {
					t.Errorf("log line on stdout: %q", line)
				}
			}
		})
	}
}

// TestServeBannerNamesAdvertisedAddress: with --advertise the banner gives
// the advertised address as the bootstrap address and in its example
// produce and consume commands, not the bound one.
func TestServeBannerNamesAdvertisedAddress(t *testing.T) {
	p := newServe(t)
	bin := p.addr
	_, port, _ := net.SplitHostPort(bin)
	advertised := "localhost:" + port
	p.args = []string{"--advertise", advertised}
	p.start()
	banner := []string{
		"  listener PLAINTEXT:  " + bin + " -> advertised as " + advertised + "\n",
		"  bootstrap address: " + advertised + "\n",
		"  echo hello | weir produce demo -b " + advertised + "\n",
		"  weir consume demo -b " + advertised + " -o start --exit-at-end\n",
		"  (or any Kafka client: kcat -b " + advertised + " -t demo -C -e)\n",
	}
	waitFor(t, 10*time.Second, "banner with the advertised address", func() bool {
		out := p.stdout.String()
		return !slices.ContainsFunc(banner, func(want string) bool { return !strings.Contains(out, want) })
	})
	_, examples, _ := strings.Cut(p.stdout.String(), "Try it:\n")
	if examples == "" || strings.Contains(examples, bin) {
		t.Errorf("example commands missing or naming the bound address %s:\n%s", bin, p.stdout)
	}
}

// bannerExamples returns the weir command lines of the banner's "Try it:"
// section, in order, each with the stdin its pipeline gives it.
func bannerExamples(t *testing.T, banner string) (cmds [][]string, stdin []string) {
	t.Helper()
	_, try, ok := strings.Cut(banner, "Try it:\n")
	if !ok {
		t.Fatalf("banner has no examples:\n%s", banner)
	}
	for _, line := range strings.Split(try, "\n") {
		line = strings.TrimSpace(line)
		in := ""
		if before, after, ok := strings.Cut(line, " | "); ok {
			if !strings.HasPrefix(before, "echo ") {
				t.Fatalf("example %q: unexpected pipeline", line)
			}
			in, line = strings.TrimPrefix(before, "echo ")+"\n", after
		}
		if f := strings.Fields(line); len(f) > 1 && f[0] == "weir" {
			cmds, stdin = append(cmds, f[1:]), append(stdin, in)
		}
	}
	return cmds, stdin
}

// TestServeBannerExamplesRun runs the banner's example commands as printed,
// on a fresh broker: the produce succeeds and the consume prints the
// produced record.
func TestServeBannerExamplesRun(t *testing.T) {
	p := startServe(t)
	// The banner's lines are written one by one: wait for its last.
	waitFor(t, 10*time.Second, "banner's last example", func() bool { return strings.Contains(p.stdout.String(), "-C -e)\n") })
	cmds, stdin := bannerExamples(t, p.stdout.String())
	if len(cmds) != 2 || cmds[0][0] != "produce" || cmds[1][0] != "consume" {
		t.Fatalf("examples %q, want a produce then a consume", cmds)
	}
	var last cliResult
	for i, args := range cmds {
		last = cli(t, nil, stdin[i], args...)
		if last.code != 0 {
			t.Fatalf("banner example `weir %s`: exit %d\nstderr: %s", strings.Join(args, " "), last.code, last.stderr)
		}
	}
	if last.stdout != "hello\n" {
		t.Fatalf("example consume printed %q, want %q", last.stdout, "hello\n")
	}
}

// TestServeSignalsShutDownCleanly: SIGTERM and SIGINT both make serve
// finish, flush and close every partition and exit 0. The partition is
// left with the clean-shutdown marker and a recovery-point checkpoint at
// its log end offset; a restart recovers it without a scan (no "recovered
// partition" warning), takes the marker away, and serves the records
// produced before.
func TestServeSignalsShutDownCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startServe(t)
			mustCLI(t, nil, "", "topic", "create", "kept", "-b", p.addr)
			var want []string
			for i := range 50 {
				want = append(want, fmt.Sprintf("record-%02d", i))
			}
			input := strings.Join(want, "\n") + "\n"
			mustCLI(t, nil, input[:len(input)/2], "produce", "kept", "-b", p.addr)
			mustCLI(t, nil, input[len(input)/2:], "produce", "kept", "-b", p.addr)

			if code := p.stop(sig); code != 0 {
				t.Fatalf("%v: exit %d, want 0\nstderr:\n%s", sig, code, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), "shutdown complete") {
				t.Fatalf("%v: no clean shutdown in the log:\n%s", sig, p.stderr)
			}
			dir := filepath.Join(p.dataDir, "kept-0")
			if _, err := os.Stat(filepath.Join(dir, ".weir_cleanshutdown")); err != nil {
				t.Errorf("no clean-shutdown marker after %v: %v", sig, err)
			}
			rp, err := os.ReadFile(filepath.Join(dir, "recovery-point-offset-checkpoint"))
			if err != nil {
				t.Fatalf("no recovery-point checkpoint after %v: %v", sig, err)
			}
			// Kafka's checkpoint format: version, count, then the offset.
			if want := fmt.Sprintf("0\n1\n%d\n", len(want)); string(rp) != want {
				t.Errorf("recovery-point-offset-checkpoint = %q, want %q (the log end offset)", rp, want)
			}

			p.start()
			if strings.Contains(p.stderr.String(), "recovered partition") {
				t.Errorf("restart after %v recovered a partition as unclean:\n%s", sig, p.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, ".weir_cleanshutdown")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("clean-shutdown marker still there while serving (stat: %v)", err)
			}
			r := mustCLI(t, nil, "", "consume", "kept", "-o", "start", "--exit-at-end", "-b", p.addr)
			if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); !slices.Equal(got, want) {
				t.Fatalf("after restart consumed %d records %q, want %d", len(got), got, len(want))
			}
			if code := p.stop(sig); code != 0 {
				t.Fatalf("second %v: exit %d, want 0", sig, code)
			}
		})
	}
}

// TestServeNodeIDAndAutoCreate runs serve with --node-id 7
// --default-partitions 3: metadata names broker 7 as the only broker and
// the controller, and a topic auto-created by a client gets 3 partitions
// led by 7. With --auto-create-topics=false a Metadata request asking for
// creation and a produce to an unknown topic both fail with
// UNKNOWN_TOPIC_OR_PARTITION, and no topic appears.
func TestServeNodeIDAndAutoCreate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("auto-create", func(t *testing.T) {
		p := startServe(t, "--node-id", "7", "--default-partitions", "3")
		var info clusterInfo
		decodeJSON(t, mustCLI(t, nil, "", "cluster", "info", "--format", "json", "-b", p.addr), &info)
		if info.ControllerID != 7 || len(info.Brokers) != 1 || info.Brokers[0].ID != 7 || info.Brokers[0].Port == 0 {
			t.Fatalf("cluster info %+v, want one broker 7, the controller", info)
		}

		cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := range 30 {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce to an auto-created topic: %v", err)
		}
		var d topicDescription
		decodeJSON(t, mustCLI(t, nil, "", "topic", "describe", "auto", "--format", "json", "-b", p.addr), &d)
		if len(d.Partitions) != 3 {
			t.Fatalf("auto-created topic has %d partitions, want 3 (--default-partitions): %+v", len(d.Partitions), d.Partitions)
		}
		var hw int64
		for _, pd := range d.Partitions {
			if pd.Leader != 7 || !slices.Equal(pd.Replicas, []int{7}) {
				t.Errorf("partition %+v, want leader and replicas [7]", pd)
			}
			hw += pd.HighWatermark
		}
		if hw != int64(len(recs)) {
			t.Errorf("high watermarks sum to %d, want %d records", hw, len(recs))
		}
	})
	t.Run("auto-create off", func(t *testing.T) {
		p := startServe(t, "--auto-create-topics=false", "--default-partitions", "3")
		mt := metadataTopic(t, p.addr, "unknown-topic", true)
		if mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("Metadata with AllowAutoTopicCreation: error %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(mt.ErrorCode))
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("unknown-topic"),
			kgo.UnknownTopicRetries(1), kgo.MetadataMinAge(20*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("lost")}).FirstErr()
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("produce to an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		// weir produce asks for creation as Kafka's producers do, and is
		// refused with one clear line.
		r := cli(t, nil, "lost\n", "produce", "unknown-topic", "-b", p.addr)
		if r.code != 1 || !strings.Contains(r.stderr, `unknown topic "unknown-topic"`) {
			t.Fatalf("weir produce to an unknown topic: exit %d, stderr %q; want exit 1 naming the topic", r.code, r.stderr)
		}
		var list []topicSummary
		decodeJSON(t, mustCLI(t, nil, "", "topic", "list", "--format", "json", "-b", p.addr), &list)
		if len(list) != 0 {
			t.Fatalf("topics after failed auto-creation: %+v, want none", list)
		}
		if _, err := os.Stat(filepath.Join(p.dataDir, "unknown-topic-0")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("partition directory of the unknown topic exists (stat: %v)", err)
		}
	})
}

// metadataTopic sends Metadata v11 for one topic to addr on a new
// connection and returns that topic's answer.
func metadataTopic(t *testing.T, addr, topic string, autoCreate bool) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = autoCreate
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp := metadataV11(t, addr, req)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != topic {
		t.Fatalf("Metadata for %s answered topics %+v", topic, resp.Topics)
	}
	return resp.Topics[0]
}
