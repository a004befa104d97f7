package group

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/scripts")

// TestScripts replays testdata/scripts/*.txt against the pure core. Each
// block is one command, "----", and the expected output (the replies the
// command produced, "persist" when it asked for a metadata write, and the
// group afterwards), ended by a blank line. Commands:
//
//	join client=C [member=M] [instance=I] [protocols=p1,p2:meta] [session=D] [rebalance=D] [v4]
//	sync member=M gen=N [instance=I] [assign=M1:a;M2:b]
//	heartbeat member=M gen=N [instance=I]
//	leave [member=M] [instance=I]
//	commit member=M gen=N [instance=I] offset=N
//	tick D
//	delay D   (only as the first command: the initial rebalance delay)
//
// Run with -rewrite to regenerate the expected output; review the diff.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/scripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	h := newHarness(0)
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			out.WriteString(line + "\n")
			continue
		}
		cmd := line
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ----", path, i+1)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		got := strings.TrimRight(runCommand(t, h, cmd), "\n")
		out.WriteString(cmd + "\n----\n" + got + "\n\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", path, cmd, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runCommand(t *testing.T, h *harness, line string) string {
	fields := strings.Fields(line)
	args := map[string]string{}
	var pos []string
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	dur := func(s, def string) time.Duration {
		if s == "" {
			s = def
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return d
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return n
	}
	var b strings.Builder
	var fx Effects
	switch fields[0] {
	case "delay":
		h.rules.InitialRebalanceDelay = dur(pos[0], "")
		return h.describe()
	case "join":
		ps := args["protocols"]
		if ps == "" {
			ps = "range"
		}
		_, fx = h.join(JoinRequest{ClientID: args["client"], MemberID: args["member"], InstanceID: args["instance"],
			ProtocolType: "consumer", Protocols: protocols(ps), SessionTimeout: dur(args["session"], "10s"),
			RebalanceTimeout: dur(args["rebalance"], "10s"), RequireKnownMemberID: len(pos) > 0 && pos[0] == "v4"})
	case "sync":
		req := SyncRequest{MemberID: args["member"], InstanceID: args["instance"], Generation: int32(num(args["gen"]))}
		if a := args["assign"]; a != "" {
			req.Assignments = map[string][]byte{}
			for kv := range strings.SplitSeq(a, ";") {
				k, v, _ := strings.Cut(kv, ":")
				req.Assignments[k] = []byte(v)
			}
		}
		_, fx = h.sync(req)
	case "heartbeat":
		err := h.g.Heartbeat(h.now, args["member"], args["instance"], int32(num(args["gen"])))
		fmt.Fprintf(&b, "heartbeat: %s\n", orNone(errName(err)))
	case "leave":
		errs, lfx := h.leave(LeaveMember{MemberID: args["member"], InstanceID: args["instance"]})
		fx = lfx
		fmt.Fprintf(&b, "leave: %s\n", orNone(errName(errs[0])))
	case "commit":
		err := h.g.CheckCommit(int32(num(args["gen"])), args["member"], args["instance"])
		if err == nil {
			h.g.Commit(h.now, args["member"], TopicPartition{"t", 0}, Offset{Offset: num(args["offset"]), CommitTime: h.now})
		}
		o, _ := h.g.Offset(TopicPartition{"t", 0})
		fmt.Fprintf(&b, "commit: %s committed=%d\n", orNone(errName(err)), o.Offset)
	case "tick":
		fx = h.tick(dur(pos[0], ""))
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	for _, r := range fx.Replies {
		b.WriteString(renderReply(r) + "\n")
	}
	if fx.Persist {
		b.WriteString("persist\n")
	}
	b.WriteString(h.describe())
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "ok"
	}
	return s
}
