package outbox

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestParseOptionsAndRoute(t *testing.T) {
	row := Row{
		Seq: 7, ID: "5b8c6f5e-8f1e-4b63-9a55-0c1c7d0e2a11", AggregateType: "order", AggregateID: "1",
		Type: "OrderCreated", Payload: []byte(`{"total": 3}`), Timestamp: time.UnixMilli(1700000000123),
		Headers: map[string]string{"b": "2", "a": "1"},
	}
	tests := []struct {
		name    string
		opts    map[string]string
		topic   string
		headers string
		value   string
	}{
		{"debezium defaults", nil, "outbox.event.order", "id,a,b", `{"total": 3}`},
		{"replacement", map[string]string{"route.topic.replacement": "${routedByValue}.events"}, "order.events", "id,a,b", `{"total": 3}`},
		{"connector prefix", map[string]string{"transforms.outbox.route.topic.replacement": "x.${routedByValue}"}, "x.order", "id,a,b", `{"total": 3}`},
		{"route by type", map[string]string{"route.by.field": "type"}, "outbox.event.OrderCreated", "id,a,b", `{"total": 3}`},
		{"regex group", map[string]string{"route.topic.regex": "(?<routedByValue>ord)er", "route.topic.replacement": "t-${routedByValue}"}, "t-ord", "id,a,b", `{"total": 3}`},
		{"header placement", map[string]string{"table.fields.additional.placement": "type:header:eventType, aggregatetype:header"}, "outbox.event.order", "id,eventType,aggregatetype,a,b", `{"total": 3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseOptions(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := r.Route(&row)
			if err != nil {
				t.Fatal(err)
			}
			var hs []string
			for _, h := range rec.Headers {
				hs = append(hs, h.Key)
			}
			if rec.Topic != tt.topic || string(rec.Key) != "1" || string(rec.Value) != tt.value || strings.Join(hs, ",") != tt.headers {
				t.Fatalf("got topic %q key %q value %q headers %v", rec.Topic, rec.Key, rec.Value, hs)
			}
			if string(rec.Headers[0].Value) != row.ID || rec.Time != 1700000000123 {
				t.Fatalf("header id %q time %d", rec.Headers[0].Value, rec.Time)
			}
		})
	}
}

func TestParseOptionsRefuses(t *testing.T) {
	for _, opts := range []map[string]string{
		{"route.by.feld": "type"},
		{"route.by.field": "nope"},
		{"route.topic.regex": "("},
		{"table.fields.additional.placement": "type:envelope"},
		{"table.fields.additional.placement": "nope:header"},
		{"route.tombstone.on.empty.payload": "maybe"},
	} {
		if _, err := ParseOptions(opts); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%v: err = %v, want ErrInvalidOption", opts, err)
		}
	}
}

func TestRouteUnmatchedAndTombstone(t *testing.T) {
	r, err := ParseOptions(map[string]string{"route.topic.regex": "(?<routedByValue>a+)", "route.tombstone.on.empty.payload": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Route(&Row{AggregateType: "b"}); err == nil {
		t.Fatal("unmatched routing value routed")
	}
	rec, err := r.Route(&Row{AggregateType: "aa", Payload: []byte{}})
	if err != nil || rec.Value != nil || rec.Topic != "outbox.event.aa" {
		t.Fatalf("rec %+v err %v", rec, err)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDIsUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !uuidRE.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func TestQuoteIdentProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "name")
		q, err := QuoteIdent(s)
		if err != nil {
			return
		}
		if strings.Count(q, `"`)%2 != 0 || strings.ContainsAny(s, "\"\x00") {
			t.Fatalf("QuoteIdent(%q) = %q", s, q)
		}
	})
}

func FuzzDecodeHeaders(f *testing.F) {
	f.Add([]byte(`{"a":"1","n":2}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"a":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := DecodeHeaders(b)
		for k, v := range m {
			if k == "" && v == "" {
				continue
			}
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	f.Add("route.topic.regex", "(?<routedByValue>.*)", "order")
	f.Add("table.fields.additional.placement", "type:header:t", "x")
	f.Add("route.topic.replacement", "${routedByValue}${x}", "y")
	f.Fuzz(func(t *testing.T, k, v, routed string) {
		r, err := ParseOptions(map[string]string{k: v})
		if err != nil {
			return
		}
		_, _ = r.Route(&Row{AggregateType: routed, AggregateID: "k", ID: "i", Type: routed})
	})
}
