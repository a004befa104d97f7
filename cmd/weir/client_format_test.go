package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// yamlDocs decodes a stream of YAML documents.
func yamlDocs(t *testing.T, out string) []any {
	t.Helper()
	var docs []any
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("output is not a YAML stream (%v):\n%s", err, out)
		}
		docs = append(docs, doc)
	}
}

// jsonLines decodes output with one JSON value per line.
func jsonLines(t *testing.T, out string) []any {
	t.Helper()
	var docs []any
	for line := range strings.Lines(out) {
		var doc any
		decodeJSON(t, cliResult{stdout: line}, &doc)
		docs = append(docs, doc)
	}
	return docs
}

// wantRecord is what one consumed record must show; a nil key or value is
// null.
type wantRecord struct {
	key, value *string
}

// checkRecordDoc checks one decoded record of `consume --format json|yaml`
// with every field selected: its exact keys and each value. Numbers are
// compared as printed, since JSON decodes them as float64 and YAML as int.
func checkRecordDoc(t *testing.T, where string, doc any, topic string, offset int, w wantRecord) {
	t.Helper()
	m, ok := doc.(map[string]any)
	if !ok {
		t.Errorf("%s: %T, want an object", where, doc)
		return
	}
	keys := []string{"topic", "partition", "offset", "timestamp", "headers"}
	var null []any
	if w.key != nil {
		keys = append(keys, "key")
	} else {
		null = append(null, "key")
	}
	if w.value != nil {
		keys = append(keys, "value")
	} else {
		null = append(null, "value")
	}
	if null != nil {
		keys = append(keys, "null")
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		t.Errorf("%s: keys %q, want %q", where, got, slices.Sorted(slices.Values(keys)))
	}
	if m["topic"] != topic || fmt.Sprint(m["partition"]) != "0" || fmt.Sprint(m["offset"]) != fmt.Sprint(offset) {
		t.Errorf("%s: topic %v partition %v offset %v, want %s 0 %d", where, m["topic"], m["partition"], m["offset"], topic, offset)
	}
	if ts, ok := m["timestamp"].(string); !ok {
		t.Errorf("%s: timestamp %#v is not a string", where, m["timestamp"])
	} else if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(at) > time.Hour || time.Since(at) < -time.Minute {
		t.Errorf("%s: timestamp %q: %v", where, ts, err)
	}
	wantHeaders := []any{
		map[string]any{"key": "src", "value": "cli"},
		map[string]any{"key": "n", "value": "1"},
	}
	if hs, _ := m["headers"].([]any); fmt.Sprint(hs) != fmt.Sprint(wantHeaders) {
		t.Errorf("%s: headers %#v, want %v", where, m["headers"], wantHeaders)
	}
	for _, f := range []struct {
		name string
		want *string
	}{{"key", w.key}, {"value", w.value}} {
		if got, present := m[f.name]; f.want != nil && (!present || got != *f.want) {
			t.Errorf("%s: %s %#v, want %q", where, f.name, got, *f.want)
		}
	}
	if got, _ := m["null"].([]any); !slices.Equal(got, null) {
		t.Errorf("%s: null %#v, want %v", where, m["null"], null)
	}
}

// TestConsumeYAML: `consume --format yaml` prints each record as one YAML
// document opened by "---", so the output decodes as a stream of documents
// with the field names and values of --format json: keys, headers, a null
// key, a tombstone, and strings YAML would otherwise read as other types.
func TestConsumeYAML(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	mustCLI(t, b, "", "topic", "create", topic, "-p", "1")
	mustCLI(t, b, "k1:v1\nk2:\nnokey\nnull:true\nk4:a: b # c\n",
		"produce", topic, "--key-delim", ":", "-H", "src=cli", "-H", "n=1", "-Z")
	s := func(v string) *string { return &v }
	wants := []wantRecord{
		{s("k1"), s("v1")},
		{s("k2"), nil}, // -Z: an empty value is a tombstone
		{nil, s("nokey")},
		{s("null"), s("true")},
		{s("k4"), s("a: b # c")},
	}

	out := mustCLI(t, b, "", "consume", topic, "-e", "--format", "yaml").stdout
	if !strings.HasPrefix(out, "---\n") || strings.Count(out, "---\n") != len(wants) {
		t.Fatalf("want %d documents each opened by ---:\n%s", len(wants), out)
	}
	docs := yamlDocs(t, out)
	js := jsonLines(t, mustCLI(t, b, "", "consume", topic, "-e", "--format", "json").stdout)
	if len(docs) != len(wants) || len(js) != len(wants) {
		t.Fatalf("%d YAML documents and %d JSON lines, want %d:\n%s", len(docs), len(js), len(wants), out)
	}
	for i, w := range wants {
		checkRecordDoc(t, fmt.Sprintf("yaml record %d", i), docs[i], topic, i, w)
		checkRecordDoc(t, fmt.Sprintf("json record %d", i), js[i], topic, i, w)
		if y, j := docs[i].(map[string]any)["timestamp"], js[i].(map[string]any)["timestamp"]; y != j {
			t.Errorf("record %d: yaml timestamp %v, json %v", i, y, j)
		}
	}

	// -n and --fields bound and select as in the other formats.
	docs = yamlDocs(t, mustCLI(t, b, "", "consume", topic, "-o", "1", "-n", "2", "--fields", "offset,key,value", "--format", "yaml").stdout)
	want := []any{
		map[string]any{"offset": 1, "key": "k2", "null": []any{"value"}},
		map[string]any{"offset": 2, "value": "nokey", "null": []any{"key"}},
	}
	if fmt.Sprint(docs) != fmt.Sprint(want) {
		t.Fatalf("-o 1 -n 2 --fields offset,key,value: %v, want %v", docs, want)
	}
	docs = yamlDocs(t, mustCLI(t, b, "", "consume", topic, "-o", "-1", "-e", "--fields", "value", "--encoding", "base64", "--format", "yaml").stdout)
	if want := []any{map[string]any{"value": "YTogYiAjIGM="}}; fmt.Sprint(docs) != fmt.Sprint(want) {
		t.Fatalf("--encoding base64: %v, want %v", docs, want)
	}
}

// TestConsumeFormatFlag: shell completion of consume's --format offers
// every format, and an unknown one is a usage error naming them.
func TestConsumeFormatFlag(t *testing.T) {
	comp := mustCLI(t, nil, "", "__complete", "consume", "t", "--format", "").stdout
	var got []string
	for line := range strings.Lines(comp) {
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, ":") {
			got = append(got, line)
		}
	}
	if want := []string{"text", "wide", "json", "yaml"}; !slices.Equal(got, want) {
		t.Fatalf("completion of --format: %q, want %q", got, want)
	}
	r := cli(t, nil, "", "consume", "t", "--format", "xml", "-b", "127.0.0.1:1")
	if r.code != 2 || !strings.Contains(r.stderr, "text, wide, json or yaml") {
		t.Fatalf("--format xml: exit %d, stderr %q", r.code, r.stderr)
	}
	oneLineError(t, r, false)
}

// object is the expected shape of a JSON or YAML object: every key it must
// have (and no other), each with the shape of its value: nil for a scalar
// or a list of scalars, object for an object, listOf for a list of objects.
type object map[string]any

// listOf is the shape of a non-empty list whose elements are all objects of
// the given shape.
type listOf object

// matchShape checks got, a decoded JSON or YAML value, against want (an
// object or a listOf).
func matchShape(t *testing.T, path string, got, want any) {
	t.Helper()
	switch want := want.(type) {
	case listOf:
		l, ok := got.([]any)
		if !ok || len(l) == 0 {
			t.Errorf("%s: %#v, want a non-empty list of objects", path, got)
			return
		}
		for i, e := range l {
			matchShape(t, fmt.Sprintf("%s[%d]", path, i), e, object(want))
		}
	case object:
		m, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: %#v, want an object", path, got)
			return
		}
		if g, w := slices.Sorted(maps.Keys(m)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
			t.Errorf("%s: keys %q, want %q", path, g, w)
		}
		for k, sub := range want {
			v, present := m[k]
			switch {
			case !present:
			case sub != nil:
				matchShape(t, path+"."+k, v, sub)
			default:
				if _, isObj := v.(map[string]any); isObj {
					t.Errorf("%s.%s: an object, want a scalar", path, k)
				}
			}
		}
	default:
		t.Fatalf("%s: bad expected shape %T", path, want)
	}
}

// TestReadCommandsFieldNames pins the field names of the read commands'
// JSON and YAML output, which scripts depend on: each command's output must
// have exactly the keys written here at every level. The keys are literal
// on purpose: renaming a struct tag must fail this test. Fields that are
// omitted when empty and stay empty in this setup are noted beside their
// objects.
func TestReadCommandsFieldNames(t *testing.T) {
	b := weirtest.Start(t)
	topic := uniqueTopic(t)
	group := "g-" + topic
	mustCLI(t, b, "", "topic", "create", topic, "-p", "2", "-c", "retention.ms=3600000")
	mustCLI(t, b, "a\nb\n", "produce", topic, "-p", "0")
	mustCLI(t, b, "c\n", "produce", topic, "-p", "1")
	mustCLI(t, b, "", "consume", topic, "-g", group, "-n", "3")
	joinKgo(t, b.Addr(), group, topic)
	waitFor(t, 30*time.Second, "stable group with an assigned member", func() bool {
		d := describeJSON(t, b, group)
		owned := len(d.Offsets) == 2
		for _, o := range d.Offsets {
			owned = owned && o.MemberID != ""
		}
		return d.State == "Stable" && len(d.Members) == 1 && owned
	})

	configs := listOf{"name": nil, "value": nil, "source": nil, "read_only": nil, "sensitive": nil}
	tests := []struct {
		name string
		args []string
		want any
	}{
		// Each entry also has "error" when its metadata failed.
		{"topic list", []string{"topic", "list"},
			listOf{"name": nil, "partitions": nil, "replicas": nil, "internal": nil}},
		{"topic describe", []string{"topic", "describe", topic}, object{
			"name": nil, "internal": nil, "configs": configs,
			"partitions": listOf{"partition": nil, "leader": nil, "replicas": nil, "isr": nil,
				"log_start_offset": nil, "high_watermark": nil},
		}},
		{"topic describe several", []string{"topic", "describe", topic, topic}, listOf{
			"name": nil, "internal": nil, "configs": configs,
			"partitions": listOf{"partition": nil, "leader": nil, "replicas": nil, "isr": nil,
				"log_start_offset": nil, "high_watermark": nil},
		}},
		// Brokers have "rack" when one is configured.
		{"cluster info", []string{"cluster", "info"}, object{
			"cluster_id": nil, "controller_id": nil, "topics": nil, "partitions": nil,
			"brokers": listOf{"id": nil, "host": nil, "port": nil, "controller": nil},
		}},
		{"cluster config describe", []string{"cluster", "config", "describe"},
			object{"broker": nil, "configs": configs}},
		{"group list", []string{"group", "list"},
			listOf{"group": nil, "protocol_type": nil, "state": nil, "members": nil, "coordinator": nil}},
		// Members have "instance_id" when static and "assignment_error"
		// when their assignment does not parse; offset rows lack "lag"
		// without a commit and "member_id"/"client_id" when unassigned.
		{"group describe", []string{"group", "describe", group}, object{
			"group": nil, "state": nil, "protocol_type": nil, "protocol": nil, "total_lag": nil,
			"members": listOf{"member_id": nil, "client_id": nil, "client_host": nil,
				"assignments": listOf{"topic": nil, "partitions": nil}},
			"offsets": listOf{"topic": nil, "partition": nil, "committed_offset": nil,
				"log_end_offset": nil, "lag": nil, "member_id": nil, "client_id": nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var j any
			decodeJSON(t, mustCLI(t, b, "", append(tc.args, "--format", "json")...), &j)
			matchShape(t, "json", j, tc.want)
			var y any
			out := mustCLI(t, b, "", append(tc.args, "--format", "yaml")...).stdout
			if err := yaml.Unmarshal([]byte(out), &y); err != nil {
				t.Fatalf("output is not YAML (%v):\n%s", err, out)
			}
			matchShape(t, "yaml", y, tc.want)
		})
	}
}
