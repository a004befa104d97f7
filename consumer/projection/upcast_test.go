package projection_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
	"github.com/weir-broker/weir/consumer/projection"
)

func hdr(kv ...string) []kafka.Header {
	var hs []kafka.Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func TestUpcastersUpcast(t *testing.T) {
	var u projection.Upcasters
	u.Register("deposit", 1, func(v []byte) ([]byte, error) { return append(v, "00"...), nil })
	u.Register("deposit", 2, func(v []byte) ([]byte, error) { return append([]byte("+"), v...), nil })
	u.Register("refund", 1, func([]byte) ([]byte, error) { return nil, errors.New("unreadable") })
	tests := []struct {
		name    string
		headers []kafka.Header
		value   string
		want    string
		version string
		err     bool
	}{
		{"no type", nil, "5", "5", "", false},
		{"v1 implicit", hdr("type", "deposit"), "5", "+500", "3", false},
		{"v2", hdr("type", "deposit", "schema.version", "2"), "5", "+5", "3", false},
		{"current", hdr("type", "deposit", "schema.version", "3"), "5", "5", "3", false},
		{"unknown type", hdr("type", "other"), "5", "5", "", false},
		{"step fails", hdr("type", "refund"), "5", "", "", true},
		{"bad version", hdr("type", "deposit", "schema.version", "x"), "5", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := kafka.Message{Value: []byte(tc.value), Headers: tc.headers}
			got, err := u.Upcast(in)
			if tc.err {
				if !errors.Is(err, projection.ErrUpcast) {
					t.Fatalf("Upcast = %v, want ErrUpcast", err)
				}
				return
			}
			if err != nil || string(got.Value) != tc.want {
				t.Fatalf("Upcast = %q, %v; want %q", got.Value, err, tc.want)
			}
			var version string
			for _, h := range got.Headers {
				if h.Key == projection.HeaderSchemaVersion {
					version = string(h.Value)
				}
			}
			if version != tc.version {
				t.Fatalf("schema.version = %q, want %q", version, tc.version)
			}
			if string(in.Value) != tc.value {
				t.Fatalf("input value changed to %q", in.Value)
			}
		})
	}
}

// TestUpcastLiveAndRebuildAgree mixes v1 (whole units) and v2 (cents)
// deposit events; with a v1->v2 upcaster the live projection and a rebuild
// from offset 0 produce identical tables, equal to the upcast fold.
func TestUpcastLiveAndRebuildAgree(t *testing.T) {
	d := openSQLite(t)
	if err := projection.CreateTables(context.Background(), d.db, d.dialect); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	const topic = "deposits"
	e.createTopic(t, topic, 1)
	var u projection.Upcasters
	u.Register("deposit", 1, func(v []byte) ([]byte, error) {
		n, err := strconv.Atoi(string(v))
		return []byte(strconv.Itoa(n * 100)), err
	})
	var recs []kafka.Record
	want := map[string][2]int64{}
	for i := range 60 {
		acct := "a" + strconv.Itoa(i%4)
		r := kafka.Record{Key: kafka.NewBytes([]byte(acct))}
		cents := int64(i * 100)
		if i%2 == 0 {
			r.Value, r.Headers = kafka.NewBytes([]byte(strconv.Itoa(i))), hdr("type", "deposit")
		} else {
			r.Value, r.Headers = kafka.NewBytes([]byte(strconv.FormatInt(cents, 10))), hdr("type", "deposit", "schema.version", "2")
		}
		recs = append(recs, r)
		w := want[acct]
		want[acct] = [2]int64{w[0] + cents, w[1] + 1}
	}
	if _, err := e.client.Produce(context.Background(), &kafka.ProduceRequest{Topic: topic, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(recs...)}); err != nil {
		t.Fatal(err)
	}
	pos := projection.Position{consumer.TopicPartition{Topic: topic}: int64(len(recs) - 1)}
	for v := 1; v <= 2; v++ {
		p := newBalances(topic, v)
		p.create(t, d.db)
		r, stop := start(t, e, d, p, func(c *projection.Config) { c.Upcasters = &u })
		if err := r.WaitFor(waitCtx(t), pos); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := readModel(t, d.db, fmt.Sprintf("balances_v%d", v)); !maps.Equal(got, want) {
			t.Fatalf("version %d: %v, want %v", v, got, want)
		}
	}
}
