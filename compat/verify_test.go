package compat

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestDifferences checks the checker: every kind of damage a broker could do
// to a round trip is reported.
func TestDifferences(t *testing.T) {
	want := messagesFor("c", 9)
	edit := func(f func([]record) []record) []record {
		return f(slices.Clone(want))
	}
	tests := []struct {
		name string
		got  []record
		want string // substring of the first difference; "" = none
	}{
		{"identical", want, ""},
		{"lost record", edit(func(r []record) []record { return slices.Delete(r, 4, 5) }), "read 2 records, want 3"},
		{"duplicate", edit(func(r []record) []record { return append(r, r[0]) }), "read 4 records, want 3"},
		{"reordered", edit(func(r []record) []record { r[0], r[3] = r[3], r[0]; return r }), "offset differs"},
		{"wrong partition", edit(func(r []record) []record { r[1].Partition = 7; return r }), "unexpected partition 7"},
		{"key", edit(func(r []record) []record { r[2].Key = "x"; return r }), "key differs"},
		{"value", edit(func(r []record) []record { r[2].Value += "!"; return r }), "value differs"},
		{"header dropped", edit(func(r []record) []record { r[5].Headers = r[5].Headers[:1]; return r }), "header count"},
		{"header value", edit(func(r []record) []record {
			r[5].Headers = []header{{"client", "c"}, {"seq", "6"}}
			return r
		}), "header 1 differs"},
		{"nothing read", nil, "read 0 records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := differences(tt.got, want, 10)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Fatalf("differences = %q, want none", errs)
			case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0], tt.want)):
				t.Fatalf("differences = %q, want first to contain %q", errs, tt.want)
			}
		})
	}
}

// TestMessagePlacement checks that message() spreads n messages so that
// countIn agrees with it and offsets are dense from 0 in every partition.
func TestMessagePlacement(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 10, 10_000} {
		next := make([]int64, partitions)
		for _, r := range messagesFor("c", n) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("n=%d: %v, want offset %d", n, r, next[r.Partition])
			}
			next[r.Partition]++
		}
		for p := range int32(partitions) {
			if int64(countIn(n, p)) != next[p] {
				t.Errorf("n=%d: countIn(%d) = %d, want %d", n, p, countIn(n, p), next[p])
			}
		}
	}
}

// TestPythonMessageDefinition checks that client_common.py builds the same
// messages as message(), so the Python clients' round trips are checked
// against what they really sent.
func TestPythonMessageDefinition(t *testing.T) {
	requireCommand(t, python, "python3")
	idx := []int{0, 1, 2, 3, 96, 97, 98, 9_999}
	code := fmt.Sprintf(`import json, client_common as cc
print(json.dumps([cc.message("py", i) for i in %s]))`, strings.ReplaceAll(fmt.Sprint(idx), " ", ", "))
	out := run(t, opTimeout, nil, python, "-B", "-c", code)
	var got [][]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client_common.message output %q: %v", out, err)
	}
	if len(got) != len(idx) {
		t.Fatalf("got %d messages, want %d", len(got), len(idx))
	}
	for k, i := range idx {
		w := message("py", i)
		var hs []any
		for _, h := range w.Headers {
			hs = append(hs, []any{h.Key, h.Value})
		}
		want := []any{float64(w.Partition), float64(w.Offset), w.Key, w.Value, hs}
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("message %d: python %v, go %v", i, got[k], want)
		}
	}
}
