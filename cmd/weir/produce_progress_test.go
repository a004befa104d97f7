//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"

	"github.com/weir-broker/weir/internal/syncbuf"
)

// TestProduceFileProgressBar runs the real `weir produce TOPIC -f FILE`
// with stderr on a terminal (a pty) and stdout on a pipe: the terminal
// shows the progress bar, then has it cleared and gets the summary line;
// stdout stays empty; every record of the file arrives.
func TestProduceFileProgressBar(t *testing.T) {
	b := weirtest.Start(t)
	bin, err := weirtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "2")

	// The bar is drawn after the first chunk sent (at most produceChunk
	// records), then at most ten times a second; the file is several
	// chunks long, so the first draw is well short of 100%.
	const n = 5 * produceChunk
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "record-%06d %s\n", i, strings.Repeat("x", 40))
	}
	file := filepath.Join(t.TempDir(), "records.txt")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	master, slave, err := openPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	term := &syncbuf.Buffer{}
	copied := make(chan struct{})
	go func() {
		io.Copy(term, master) // ends (EIO) once no process has the slave open
		close(copied)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "produce", topic, "-f", file, "-b", b.Addr())
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = slave
	runErr := cmd.Run()
	slave.Close()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		master.Close()
		<-copied
		t.Fatal("pty master not at its end 10s after weir produce exited")
	}
	if runErr != nil {
		t.Fatalf("weir produce -f: %v\nterminal: %q", runErr, term)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing (the bar and summary go to stderr)", stdout.String())
	}

	out := term.String()
	draws := regexp.MustCompile(`\r\[[= ]{30}\] +(\d+)%  (\d+) records`).FindAllStringSubmatch(out, -1)
	if len(draws) == 0 {
		t.Fatalf("no progress bar on the terminal: %q", out)
	}
	t.Logf("%d bar draws, the last %q", len(draws), draws[len(draws)-1][0])
	for _, d := range draws {
		pct, _ := strconv.Atoi(d[1])
		recs, _ := strconv.Atoi(d[2])
		if pct > 100 || recs < 1 || recs > n {
			t.Errorf("bar drawn as %q: want at most 100%% and 1 to %d records", d[0], n)
		}
	}
	if first, _ := strconv.Atoi(draws[0][1]); first >= 100 {
		t.Errorf("first draw %q: want it drawn while the file is still being sent", draws[0][0])
	}
	clear := "\r" + strings.Repeat(" ", 60) + "\r"
	last := strings.LastIndex(out, draws[len(draws)-1][0])
	if !strings.Contains(out[last:], clear) {
		t.Errorf("bar not cleared after its last draw: %q", out[last:])
	}
	if summary := fmt.Sprintf("produced %d records to %s in ", n, topic); !strings.Contains(out[last:], clear+summary) {
		t.Errorf("terminal lacks %q after the cleared bar: %q", summary, out[last:])
	}

	r := mustCLI(t, b, "", "consume", topic, "-o", "start", "--exit-at-end")
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	seen := make(map[string]bool, len(got))
	for _, v := range got {
		seen[v] = true
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("consumed %d records (%d distinct), want %d", len(got), len(seen), n)
	}
	for i := range n {
		if v := fmt.Sprintf("record-%06d %s", i, strings.Repeat("x", 40)); !seen[v] {
			t.Fatalf("record %q never arrived", v)
		}
	}
}
