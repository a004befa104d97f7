package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/batch"
)

// logFixture writes a data directory with two partitions through the real
// log (orders-0: 4 batches over several segments, orders-1: 1 batch) and
// returns its path and the paths of orders-0's segment files.
func logFixture(t *testing.T) (string, []string) {
	t.Helper()
	data := t.TempDir()
	cfg := log.DefaultConfig()
	cfg.SegmentBytes = 200
	for part, n := range []int{4, 1} {
		p, err := log.Open(filepath.Join(data, fmt.Sprintf("orders-%d", part)), cfg, log.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			b := batch.MustBuild(batch.Options{Codec: batch.CodecSnappy, Idempotent: true, ProducerID: 7, BaseSequence: int32(2 * i)},
				batch.Record{Timestamp: 1000, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v\x00"),
					Headers: []batch.Header{{Key: []byte("id"), Value: []byte{0xff}}}},
				batch.Record{Timestamp: 1001, Key: nil, Value: nil})
			if _, err := p.Append(b, log.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	segs, err := filepath.Glob(filepath.Join(data, "orders-0", "*.log"))
	if err != nil || len(segs) < 2 {
		t.Fatalf("fixture has %d segments (%v); want several", len(segs), err)
	}
	return data, segs
}

// flipByte corrupts one byte of a file.
func flipByte(t *testing.T, path string, pos int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[pos] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runIO(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestLogVerifyCLI(t *testing.T) {
	tests := []struct {
		name     string
		corrupt  bool
		args     func(data string) []string
		wantCode int
		want     []string // substrings of stdout
		wantErr  string   // substring of stderr
	}{
		{name: "clean data dir", args: func(d string) []string { return []string{"log", "verify", d} },
			want: []string{"orders-0: ", "orders-1: 1 segments, 1 batches, 2 records, offsets 0..1: OK", "verified 2 partitions: 0 corrupt"}},
		{name: "one partition dir", args: func(d string) []string { return []string{"log", "verify", "--records", filepath.Join(d, "orders-1")} },
			want: []string{"verified 1 partitions: 0 corrupt"}},
		{name: "corrupt", corrupt: true, args: func(d string) []string { return []string{"log", "verify", d} }, wantCode: 1,
			want: []string{"CORRUPT (1 problems)", "00000000000000000000.log position 0 offset 0: batch: CRC mismatch", "verified 2 partitions: 1 corrupt"}},
		{name: "bad format", args: func(d string) []string { return []string{"log", "verify", "--format", "xml", d} }, wantCode: 2,
			wantErr: "--format"},
		{name: "no dir", args: func(string) []string { return []string{"log", "verify"} }, wantCode: 2},
		{name: "missing dir", args: func(d string) []string { return []string{"log", "verify", filepath.Join(d, "nope")} }, wantCode: 1,
			wantErr: "nope"},
		{name: "dir without partitions", args: func(d string) []string {
			return []string{"log", "verify", filepath.Join(d, "orders-0", "..", "..")}
		}, wantCode: 1, wantErr: "no partition directories"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, segs := logFixture(t)
			if tt.corrupt {
				flipByte(t, segs[0], batch.HeaderSize+2)
			}
			code, out, errs := runCLI(t, tt.args(data)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errs, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errs)
			}
		})
	}
}

func TestLogVerifyCLIJSON(t *testing.T) {
	data, segs := logFixture(t)
	flipByte(t, segs[1], 20) // inside the CRC field of the first batch
	code, out, _ := runCLI(t, "log", "verify", "--format", "json", data)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		Clean      bool
		Partitions []struct {
			Dir      string
			Problems []struct {
				Path   string
				Pos    int64
				Offset int64
				Reason string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Clean || len(got.Partitions) != 2 || len(got.Partitions[0].Problems) != 1 {
		t.Fatalf("%+v", got)
	}
	p := got.Partitions[0].Problems[0]
	if p.Path != segs[1] || p.Pos != 0 || !strings.Contains(p.Reason, "CRC") {
		t.Fatalf("problem %+v", p)
	}
}

func TestLogDumpCLI(t *testing.T) {
	data, segs := logFixture(t)
	code, out, errs := runCLI(t, "log", "dump", "--records", data)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{
		"segment " + segs[0],
		"offset 0..1 position 0 size ",
		"codec snappy crc ",
		" ok leaderEpoch 0 CreateTime 1000..1001 producer 7 epoch 0 seq 0",
		`| offset 0 timestamp 1000 key "k0" value "v\x00" header "id"=b64:/w==`,
		"| offset 1 timestamp 1001 key null value null",
		"offset 6..7 position 0",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("dump lacks %q:\n%s", w, out)
		}
	}

	flipByte(t, segs[0], batch.HeaderSize+2)
	// Truncate the last segment mid-batch: the dump reports it and stops there.
	last := segs[len(segs)-1]
	b, _ := os.ReadFile(last)
	if err := os.WriteFile(last, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "log", "dump", "--format", "json", "--records", filepath.Join(data, "orders-0"))
	if code != 1 {
		t.Fatalf("exit %d for a damaged log", code)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("%d JSON lines, want 4:\n%s", len(lines), out)
	}
	if lines[0]["crcValid"] != false || !strings.Contains(lines[0]["error"].(string), "CRC") {
		t.Fatalf("first batch %v", lines[0])
	}
	if recs, ok := lines[1]["records"].([]any); !ok || len(recs) != 2 {
		t.Fatalf("second batch records %v", lines[1]["records"])
	}
	if e, _ := lines[3]["error"].(string); !strings.Contains(e, "runs past the end") {
		t.Fatalf("last line %v", lines[3])
	}
}
