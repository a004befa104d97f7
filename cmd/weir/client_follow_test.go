package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// TestConsumeFollowUntilInterrupt runs the weir binary: a consume without
// -n or --exit-at-end prints records produced after it started and exits 0
// on Ctrl-C (SIGINT).
func TestConsumeFollowUntilInterrupt(t *testing.T) {
	b := weirtest.Start(t)
	bin, err := weirtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "2")
	mustCLI(t, b, "old\n", "produce", topic)

	cmd := exec.Command(bin, "consume", topic, "-o", "end", "-b", b.Addr())
	cmd.Env = append(os.Environ(), "WEIR_BROKERS=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()

	// The consumer starts at the end it sees; produce until one of our
	// records arrives (the first ones may precede its start).
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	got := ""
wait:
	for got == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no record arrived; stderr: %s", stderr.String())
		}
		mustCLI(t, b, "new\n", "produce", topic)
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("consume exited early; stderr: %s", stderr.String())
			}
			got = l
			break wait
		case <-tick.C:
		}
	}
	if got != "new" {
		t.Fatalf("first followed record %q, want new (old records must not be printed with -o end)", got)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain what else was printed
	}
	select {
	case err := <-done:
		if err != nil { // an *exec.ExitError for a non-zero status
			t.Fatalf("consume after SIGINT: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consume did not exit after SIGINT")
	}
}
