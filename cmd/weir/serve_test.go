package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-broker/weir/broker"
	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

func TestServeSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1111\nnode-id: 7\nhttp-listen: 127.0.0.1:3333\nauto-create-topics: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("no-such-setting: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    map[string]string
		wantErr string
	}{
		{"defaults", nil, nil, map[string]string{"listen": "127.0.0.1:9092", "node-id": "1", "data-dir": "./weir-data", "http-listen": "127.0.0.1:9644", "auto-create-topics": "true", "default-partitions": "1", "fsync": "never", "page-cache-window": "33554432", "max-request-bytes": "104857600", "max-connections": "20000", "fetch-session-slots": "1000"}, ""},
		{"file over defaults", []string{"--config", file}, nil, map[string]string{"listen": "127.0.0.1:1111", "node-id": "7", "auto-create-topics": "false"}, ""},
		{"env over file", []string{"--config", file}, map[string]string{"WEIR_LISTEN": "127.0.0.1:2222"}, map[string]string{"listen": "127.0.0.1:2222", "node-id": "7"}, ""},
		{"flag over env", []string{"--config", file, "--listen", "127.0.0.1:4444"}, map[string]string{"WEIR_LISTEN": "127.0.0.1:2222"}, map[string]string{"listen": "127.0.0.1:4444"}, ""},
		{"config path from env", nil, map[string]string{"WEIR_CONFIG": file}, map[string]string{"node-id": "7"}, ""},
		{"env data dir", nil, map[string]string{"WEIR_DATA_DIR": "/srv/weir"}, map[string]string{"data-dir": "/srv/weir"}, ""},
		{"bad env value", nil, map[string]string{"WEIR_NODE_ID": "one"}, nil, "WEIR_NODE_ID"},
		{"unknown file key", []string{"--config", bad}, nil, nil, "unknown setting"},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, nil, "config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newServeCmd()
			if err := cmd.Flags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			err := layerSettings(cmd.Flags(), lookup)
			if !wantErrMention(t, err, tt.wantErr) {
				return
			}
			for k, want := range tt.want {
				if got := flagValue(cmd.Flags(), k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// wantErrMention checks err against want: with want empty err must be nil,
// else err must mention want. It reports whether the test goes on to check
// the result (want empty).
func wantErrMention(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want it to mention %q", err, want)
	}
	return false
}

func flagValue(fl *pflag.FlagSet, name string) string { return fl.Lookup(name).Value.String() }

func TestServeBadSettingsExit2(t *testing.T) {
	tests := [][]string{
		{"serve", "--fsync", "sometimes"},
		{"serve", "--log-format", "xml"},
		{"serve", "--default-partitions", "0"},
		{"serve", "--page-cache-window", "-1"},
		{"serve", "--page-cache-window", "32MiB"},
		{"serve", "--fetch-session-slots", "-1"},
		{"serve", "--node-id", "x"},
		{"serve", "--advertise", "no-port"},
		{"serve", "extra-arg"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) { wantUsageLine(t, args, "") })
	}
}

// wantUsageLine runs the CLI with args and checks that it exits 2 with one
// line on stderr that mentions want.
func wantUsageLine(t *testing.T, args []string, want string) {
	t.Helper()
	code, _, stderr := runCLI(t, args...)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 || stderr == "" || !strings.Contains(stderr, want) {
		t.Fatalf("want one line mentioning %q on stderr, got %q", want, stderr)
	}
}

// TestServeProcess runs the real binary: HTTP endpoints, the banner's
// bootstrap address and example commands, a second serve on the same data
// directory failing fast, SIGTERM exiting 0, and topics surviving a
// restart.
func TestServeProcess(t *testing.T) {
	b := weirtest.Start(t)
	if b.External() {
		t.Skip("WEIR_TEST_BROKER points at an external broker; this test needs its own process")
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "weir_requests_total"} {
		resp, err := http.Get("http://" + b.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	// The banner follows readiness by a moment: poll for it.
	banner := []string{
		"bootstrap address: " + b.Addr() + "\n",
		"echo hello | weir produce demo -b " + b.Addr() + "\n",
		"weir consume demo -b " + b.Addr() + " -o start --exit-at-end\n",
	}
	hasBanner := func() bool {
		return !slices.ContainsFunc(banner, func(want string) bool { return !strings.Contains(b.Output(), want) })
	}
	for deadline := time.Now().Add(10 * time.Second); !hasBanner(); {
		if time.Now().After(deadline) {
			t.Fatalf("banner does not print the bootstrap address and the example commands %q:\n%s", banner, b.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}

	code, _, stderr := runCLI(t, "serve", "--data-dir", b.DataDir(), "--listen", "127.0.0.1:0", "--http-listen", "")
	if code != 1 || !strings.Contains(stderr, "in use by another process") {
		t.Fatalf("second serve on the same data dir: exit %d, stderr %q", code, stderr)
	}

	if r := cli(t, b, "", "topic", "create", "kept", "-p", "2"); r.code != 0 {
		t.Fatalf("topic create: %d %s", r.code, r.stderr)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, b.Output())
	}
	if !strings.Contains(b.Output(), "shutdown complete") {
		t.Fatalf("no clean shutdown in the output:\n%s", b.Output())
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	r := cli(t, b, "", "topic", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "kept") {
		t.Fatalf("after restart: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestServeFetchSessionSlotsReachBroker(t *testing.T) {
	for _, slots := range []int{0, 7, broker.DefaultFetchSessionSlots} {
		f := serveFlags{dataDir: t.TempDir(), listen: "127.0.0.1:0", defaultPartitions: 1, fsync: "never",
			pageCacheWindow: broker.DefaultPageCacheWindow, maxRequestBytes: 100 << 20,
			maxConnections: broker.DefaultMaxConnections, fetchSessionSlots: slots, shutdownTimeout: time.Second}
		cfg, err := f.brokerConfig(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.FetchSessionSlots != slots {
			t.Fatalf("--fetch-session-slots %d gave Config.FetchSessionSlots %d", slots, cfg.FetchSessionSlots)
		}
	}
}
