package log

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/recovery scripts")

// TestRecoveryScripts runs the scripts in testdata/recovery. Each block is a
// command line, "----", and the expected output, ended by a blank line. Run
// with -rewrite to regenerate the expected output (review the diff).
//
// Commands: open [key=value...] (Kafka config names), reopen, append n=N
// size=S, flush, close, crash [seed=N] (kill the process, then lose unsynced
// bytes; with a seed keep a random part of them), flip file=F pos=P, cut
// file=F size=S, write file=F data=TEXT (Go escapes), rm file=F (all
// durable), truncate to=N, delete-records before=N, retention bytes=N,
// describe, read [from=N].
func TestRecoveryScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/recovery/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s := &script{fs: vfs.NewMem()}
			defer s.stop()
			var out strings.Builder
			for _, block := range strings.Split(strings.TrimRight(string(data), "\n")+"\n\n", "\n\n") {
				cmd, want, ok := strings.Cut(block, "\n----\n")
				if strings.TrimSpace(block) == "" {
					continue
				}
				if !ok {
					cmd, want = strings.TrimSuffix(block, "\n----"), ""
				}
				got := s.run(t, strings.TrimSpace(cmd))
				fmt.Fprintf(&out, "%s\n----\n%s\n", strings.TrimSpace(cmd), got)
				if !*rewrite && strings.TrimSpace(got) != strings.TrimSpace(want) {
					t.Errorf("%s\ngot:\n%s\nwant:\n%s", cmd, got, want)
				}
			}
			if *rewrite {
				os.WriteFile(file, []byte(out.String()), 0o644)
			}
		})
	}
}

type script struct {
	fs  *vfs.Mem
	p   *Partition
	cfg Config
	tag byte
}

func (s *script) stop() {
	if s.p != nil {
		s.p.Close()
	}
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func (s *script) run(t *testing.T, line string) string {
	fields := strings.Fields(line)
	a := args(fields[1:])
	num := func(k string, def int64) int64 {
		if v, ok := a[k]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %s=%q", line, k, v)
			}
			return n
		}
		return def
	}
	const dir = "/p/t-0"
	switch fields[0] {
	case "open":
		cfg, err := DefaultConfig().With(a)
		if err != nil {
			return err.Error()
		}
		s.cfg = cfg
		fallthrough
	case "reopen":
		p, err := Open(dir, s.cfg, Options{FS: s.fs, Now: func() time.Time { return time.UnixMilli(0) }})
		if err != nil {
			return err.Error()
		}
		s.p = p
		r := p.Recovery()
		out := fmt.Sprintf("clean=%v scanned=%d truncated=%d deleted=%d rebuilt=%d log=[%d, %d)\n",
			r.Clean, r.SegmentsScanned, r.BytesTruncated, r.SegmentsDeleted, r.IndexesRebuilt, p.LogStartOffset(), p.LogEndOffset())
		for _, pr := range r.Problems {
			out += "problem: " + pr + "\n"
		}
		return out
	case "append":
		s.tag++
		res, err := s.p.Append(testBatch(int(num("n", 1)), int64(s.tag), int(num("size", 10)), s.tag), AppendOptions{})
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("offsets %d..%d\n", res.FirstOffset, res.LastOffset)
	case "flush":
		return errText(s.p.Flush())
	case "close":
		err := s.p.Close()
		s.p = nil
		return errText(err)
	case "crash":
		abandon(s.p)
		s.p = nil
		if seed, ok := a["seed"]; ok {
			n, _ := strconv.ParseUint(seed, 10, 64)
			s.fs.CrashRandom(rand.New(rand.NewPCG(n, n)))
		} else {
			s.fs.Crash()
		}
		return "ok\n"
	case "flip", "cut":
		f, err := s.fs.OpenReadWrite(filepath.Join(dir, a["file"]))
		if err != nil {
			return err.Error()
		}
		defer f.Close()
		if fields[0] == "flip" {
			b := []byte{0}
			f.ReadAt(b, num("pos", 0))
			b[0] ^= 0xff
			f.WriteAt(b, num("pos", 0))
		} else {
			f.Truncate(num("size", 0))
		}
		return errText(f.Sync())
	case "truncate":
		return errText(s.p.Truncate(num("to", 0)))
	case "delete-records":
		start, err := s.p.DeleteRecordsBefore(num("before", 0))
		if err != nil {
			return err.Error() + "\n"
		}
		return fmt.Sprintf("log start %d\n", start)
	case "retention":
		c := s.p.Config()
		c.RetentionBytes = num("bytes", -1)
		if err := s.p.SetConfig(c); err != nil {
			return err.Error() + "\n"
		}
		r, err := s.p.EnforceRetention()
		if err != nil {
			return err.Error() + "\n"
		}
		return fmt.Sprintf("deleted %d segments, %d bytes, log start %d\n", r.SegmentsDeleted, r.BytesDeleted, r.LogStartOffset)
	case "write":
		text, err := strconv.Unquote(`"` + a["data"] + `"`)
		if err != nil {
			t.Fatalf("%s: data: %v", line, err)
		}
		return errText(writeFileAtomic(s.fs, dir, a["file"], []byte(text)))
	case "rm":
		if err := s.fs.Remove(filepath.Join(dir, a["file"])); err != nil {
			return err.Error() + "\n"
		}
		return errText(s.fs.SyncDir(dir))
	case "describe":
		names, _ := s.fs.List(dir)
		var b strings.Builder
		for _, n := range names {
			size, _ := s.fs.Stat(filepath.Join(dir, n))
			fmt.Fprintf(&b, "%s %d\n", n, size)
		}
		return b.String()
	case "read":
		var b strings.Builder
		for off := num("from", s.p.LogStartOffset()); off < s.p.LogEndOffset(); {
			res, err := s.p.Read(off, ReadOptions{MaxBytes: 1 << 20})
			if err != nil {
				fmt.Fprintf(&b, "error: %v\n", err)
				break
			}
			var buf bytes.Buffer
			res.WriteTo(&buf)
			res.Release()
			if buf.Len() == 0 {
				break
			}
			for d := buf.Bytes(); len(d) > 0; {
				bt, err := batch.Parse(d)
				if err != nil {
					t.Fatalf("read returned a bad batch: %v", err)
				}
				fmt.Fprintf(&b, "batch %d..%d\n", bt.BaseOffset(), bt.LastOffset())
				d, off = d[len(bt):], bt.NextOffset()
			}
		}
		return b.String()
	}
	t.Fatalf("unknown command %q", line)
	return ""
}

func errText(err error) string {
	if err != nil {
		return err.Error() + "\n"
	}
	return "ok\n"
}
