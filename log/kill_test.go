package log

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-broker/weir/log/vfs"
)

const (
	killEnv        = "WEIR_LOG_KILL_DIR"
	killWindowEnv  = "WEIR_LOG_KILL_WINDOW"  // the child's Options.PageCacheWindow
	killSegmentEnv = "WEIR_LOG_KILL_SEGMENT" // the child's segment.bytes
	killValueEnv   = "WEIR_LOG_KILL_VALUE"   // the child's record value size
)

// killChild is TestKill9's child process (TestMain runs it when killEnv is
// set): it appends until killed (at most a bounded count), printing how many
// appends were acknowledged, and never returns.
func killChild(dir string) {
	cfg := smallConfig()
	cfg.SegmentBytes, _ = strconv.ParseInt(os.Getenv(killSegmentEnv), 10, 64)
	window, _ := strconv.ParseInt(os.Getenv(killWindowEnv), 10, 64)
	value, _ := strconv.Atoi(os.Getenv(killValueEnv))
	p, err := Open(dir, cfg, Options{PageCacheWindow: window})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := range 200_000 {
		if _, err := p.Append(testBatch(2, time.Now().UnixMilli(), value, byte(i)), AppendOptions{LeaderEpoch: 1}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i%50 == 49 {
			fmt.Println("acked", i+1)
		}
	}
	fmt.Println("done")
	os.Exit(0) // no Close: the parent kills us long before this
}

// TestKill9 runs a writer in a child process, SIGKILLs it mid-stream and
// reopens its directory on the real file system: every acknowledged append
// is there (the page cache survives a process kill), recovery was unclean,
// and the log takes appends again. With a page cache window the child
// writes back and drops older data as it goes, and reads after the restart
// go past the cache. With segments of 2 MiB and 80 KiB appends the child
// reserves blocks ahead of its appends (reserve.go), which the kill leaves
// behind.
func TestKill9(t *testing.T) {
	for _, c := range []killCase{
		{window: 0, segment: 64 << 10, value: 100, acks: 5000},
		{window: 128 << 10, segment: 64 << 10, value: 100, acks: 5000},
		{window: 0, segment: 2 << 20, value: 40 << 10, acks: 300},
		{window: 128 << 10, segment: 2 << 20, value: 40 << 10, acks: 300},
	} {
		t.Run(fmt.Sprintf("window=%d,segment=%d,value=%d", c.window, c.segment, c.value), func(t *testing.T) { testKill9(t, c) })
	}
}

// killCase is one way to run TestKill9: the child's page cache window,
// segment.bytes and record value size (two records per append), and how
// many acknowledged appends the parent waits for before the kill.
type killCase struct {
	window, segment int64
	value, acks     int
}

func testKill9(t *testing.T, c killCase) {
	dir := filepath.Join(t.TempDir(), "t-0")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killEnv+"="+dir, fmt.Sprintf("%s=%d", killWindowEnv, c.window), fmt.Sprintf("%s=%d", killSegmentEnv, c.segment), fmt.Sprintf("%s=%d", killValueEnv, c.value))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	acked := 0
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for acked < c.acks && sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "acked "); ok {
			acked, _ = strconv.Atoi(n)
		} else if strings.HasPrefix(line, "error") || line == "done" {
			t.Fatalf("child: %s", line)
		}
		if time.Now().After(deadline) {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if acked == 0 {
		t.Fatal("child acknowledged nothing")
	}
	cfg := smallConfig()
	cfg.SegmentBytes = c.segment
	p, err := Open(dir, cfg, Options{FS: vfs.OS{}, PageCacheWindow: c.window})
	if err != nil {
		t.Fatal(err)
	}
	defer closeT(t, p)
	if p.Recovery().Clean {
		t.Fatal("recovery after SIGKILL claims a clean shutdown")
	}
	if p.LogEndOffset() < int64(2*acked) {
		t.Fatalf("LEO %d, %d appends of 2 records acknowledged (%+v)", p.LogEndOffset(), acked, p.Recovery())
	}
	got := readBatches(t, p, 0)
	if int64(len(got))*2 != p.LogEndOffset() {
		t.Fatalf("%d batches for LEO %d", len(got), p.LogEndOffset())
	}
	if r := appendT(t, p, testBatch(1, 1, 1, 'k'), AppendOptions{}); r.FirstOffset != int64(2*len(got)) {
		t.Fatalf("append after recovery at %d", r.FirstOffset)
	}
}
