package main

import (
	"strings"
	"testing"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"go.yaml.in/yaml/v3"
)

func TestBenchModes(t *testing.T) {
	b := weirtest.Start(t)
	for _, client := range benchClients {
		t.Run(client, func(t *testing.T) {
			topic := uniqueTopic(t)
			common := []string{"-t", topic, "--client", client, "-p", "3", "--format", "json"}
			run := func(mode string, extra ...string) benchReport {
				t.Helper()
				var rep benchReport
				decodeJSON(t, mustCLI(t, b, "", append(append([]string{"bench", mode}, common...), extra...)...), &rep)
				if rep.Mode != mode || rep.Client != client || rep.Topic != topic || rep.Partitions != 3 {
					t.Fatalf("%s report header: %+v", mode, rep)
				}
				return rep
			}

			p := run("produce", "-n", "3000", "-s", "128", "--concurrency", "2")
			if p.Records != 3000 || p.Bytes != 3000*128 || p.MsgsPerSec <= 0 || p.MBPerSec <= 0 {
				t.Fatalf("produce report: %+v", p)
			}
			l := p.Latency
			if l == nil || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
				t.Fatalf("produce latency not ordered: %+v", l)
			}
			if p.Idempotent != (client == "franz-go") || p.Acks != "all" {
				t.Fatalf("produce settings: idempotent %t acks %q", p.Idempotent, p.Acks)
			}

			c := run("consume", "-n", "2000")
			if c.Records != 2000 || c.Bytes != 2000*128 || c.Latency != nil {
				t.Fatalf("consume report: %+v", c)
			}
			all := run("consume", "-n", "0", "-d", "1m")
			if all.Records != 3000 {
				t.Fatalf("consume of the whole topic read %d records, want 3000", all.Records)
			}

			e := run("e2e", "--rate", "2000", "-n", "600")
			if e.Records != 600 || e.TargetRate != 2000 || e.Latency == nil || e.Latency.P50 <= 0 {
				t.Fatalf("e2e report: %+v", e)
			}
		})
	}
}

func TestBenchTextAndYAML(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	text := mustCLI(t, b, "", "bench", "produce", "-t", topic, "-n", "500", "--acks", "1").stdout
	for _, want := range []string{"500 records sent", "records/sec", "ms 99.9th", "acks=1", "idempotent=false"} {
		if !strings.Contains(text, want) {
			t.Fatalf("bench text lacks %q:\n%s", want, text)
		}
	}
	var rep benchReport
	if err := yaml.Unmarshal([]byte(mustCLI(t, b, "", "bench", "consume", "-t", topic, "-n", "100", "--format", "yaml").stdout), &rep); err != nil || rep.Records != 100 {
		t.Fatalf("bench yaml: %v %+v", err, rep)
	}
}
