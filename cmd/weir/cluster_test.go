package main

import (
	"strings"
	"testing"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

func brokerConfigEntry(d brokerConfigsDescription, name string) (configEntry, bool) {
	for _, c := range d.Configs {
		if c.Name == name {
			return c, true
		}
	}
	return configEntry{}, false
}

// TestClusterConfig: against a real `weir serve`, `cluster config set`
// changes the cluster-wide default and this broker's value of
// log.retention.ms, `describe` shows them with their sources, a topic
// without an override takes them, bad input fails and changes nothing, and
// `delete` goes back one level at a time.
func TestClusterConfig(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic)
	t.Cleanup(func() {
		cli(t, b, "", "cluster", "config", "delete", "log.retention.ms")
		cli(t, b, "", "cluster", "config", "delete", "log.retention.ms", "--default")
	})
	describeOne := func(args ...string) brokerConfigsDescription {
		t.Helper()
		var d brokerConfigsDescription
		decodeJSON(t, mustCLI(t, b, "", append([]string{"cluster", "config", "describe", "--format", "json"}, args...)...), &d)
		return d
	}
	retention := func() (configEntry, configEntry) {
		t.Helper()
		bc, ok := brokerConfigEntry(describeOne(), "log.retention.ms")
		if !ok {
			t.Fatal("describe lists no log.retention.ms")
		}
		var td topicDescription
		decodeJSON(t, mustCLI(t, b, "", "topic", "describe", topic, "--format", "json"), &td)
		for _, c := range td.Configs {
			if c.Name == "retention.ms" {
				return bc, c
			}
		}
		t.Fatal("topic describe lists no retention.ms")
		return bc, configEntry{}
	}

	d := describeOne()
	if d.Broker == nil {
		t.Fatalf("describe without --default: %+v", d)
	}
	if c, ok := brokerConfigEntry(d, "log.dirs"); !ok || !c.ReadOnly || c.Source != "static-broker" {
		t.Fatalf("log.dirs: %+v", c)
	}
	if c, _ := brokerConfigEntry(d, "log.retention.ms"); c.ReadOnly || c.Source != "default" || c.Value != "604800000" {
		t.Fatalf("log.retention.ms before: %+v", c)
	}

	r := mustCLI(t, b, "", "cluster", "config", "set", "log.retention.ms=3600000", "--default")
	if !strings.Contains(r.stdout, "cluster default") || !strings.Contains(r.stdout, "OK") {
		t.Fatalf("set --default output:\n%s", r.stdout)
	}
	bc, tc := retention()
	if bc.Value != "3600000" || bc.Source != "dynamic-default-broker" || tc.Value != "3600000" || tc.Source != "dynamic-default-broker" {
		t.Fatalf("after set --default: broker %+v, topic %+v", bc, tc)
	}
	def := describeOne("--default")
	if c, ok := brokerConfigEntry(def, "log.retention.ms"); def.Broker != nil || !ok || c.Value != "3600000" || len(def.Configs) != 1 {
		t.Fatalf("describe --default: %+v", def)
	}

	mustCLI(t, b, "", "cluster", "config", "set", "log.retention.ms=7200000")
	bc, tc = retention()
	if bc.Value != "7200000" || bc.Source != "dynamic-broker" || tc.Value != "7200000" || tc.Source != "dynamic-broker" {
		t.Fatalf("after set: broker %+v, topic %+v", bc, tc)
	}
	text := mustCLI(t, b, "", "cluster", "config", "describe").stdout
	if !strings.HasPrefix(text, "BROKER ") || !strings.Contains(text, "log.retention.ms") || strings.Contains(text, "log.roll.ms") {
		t.Fatalf("describe text:\n%s", text)
	}

	for _, args := range [][]string{
		{"cluster", "config", "set", "log.dirs=/elsewhere"},
		{"cluster", "config", "set", "no.such.config=1"},
		{"cluster", "config", "set", "log.retention.ms=soon", "--default"},
		{"cluster", "config", "delete", "no.such.config"},
	} {
		r := cli(t, b, "", args...)
		if r.code != 1 {
			t.Fatalf("weir %s: exit %d, want 1", strings.Join(args, " "), r.code)
		}
		oneLineError(t, r, true)
	}
	if r := cli(t, b, "", "cluster", "config", "describe", "--broker", "999"); r.code != 2 {
		t.Fatalf("unknown --broker: exit %d, want 2", r.code)
	}
	if r := cli(t, b, "", "cluster", "config", "set", "log.retention.ms"); r.code != 2 {
		t.Fatalf("set without =: exit %d, want 2", r.code)
	}
	if bc, _ := retention(); bc.Value != "7200000" {
		t.Fatalf("failed commands changed log.retention.ms: %+v", bc)
	}

	mustCLI(t, b, "", "cluster", "config", "delete", "log.retention.ms")
	if bc, tc := retention(); bc.Value != "3600000" || tc.Source != "dynamic-default-broker" {
		t.Fatalf("after delete: broker %+v, topic %+v", bc, tc)
	}
	mustCLI(t, b, "", "cluster", "config", "delete", "log.retention.ms", "--default")
	if bc, tc := retention(); bc.Source != "default" || tc.Source != "default" || tc.Value != "604800000" {
		t.Fatalf("after delete --default: broker %+v, topic %+v", bc, tc)
	}
}
