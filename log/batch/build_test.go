package batch

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

// TestMain checks that the codec pools start no goroutines that outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// fataler is what decodeAll needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// decodeAll parses b and returns deep copies of its records.
func decodeAll(t fataler, b []byte, limit int) []Record {
	t.Helper()
	bt, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	it, err := bt.Records(limit)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	var out []Record
	for it.Next() {
		out = append(out, cloneRecord(*it.Record()))
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return out
}

func cloneRecord(r Record) Record {
	c := r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	c.Headers = nil
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, Header{Key: cloneBytes(h.Key), Value: cloneBytes(h.Value)})
	}
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func sameRecord(a, b Record) error {
	switch {
	case a.Attributes != b.Attributes:
		return fmt.Errorf("attributes %d vs %d", a.Attributes, b.Attributes)
	case a.Timestamp != b.Timestamp:
		return fmt.Errorf("timestamp %d vs %d", a.Timestamp, b.Timestamp)
	case (a.Key == nil) != (b.Key == nil) || !bytes.Equal(a.Key, b.Key):
		return fmt.Errorf("key %q vs %q", a.Key, b.Key)
	case (a.Value == nil) != (b.Value == nil) || !bytes.Equal(a.Value, b.Value):
		return fmt.Errorf("value %q vs %q", a.Value, b.Value)
	case len(a.Headers) != len(b.Headers):
		return fmt.Errorf("%d headers vs %d", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		ha, hb := a.Headers[i], b.Headers[i]
		if !bytes.Equal(ha.Key, hb.Key) || (ha.Value == nil) != (hb.Value == nil) || !bytes.Equal(ha.Value, hb.Value) {
			return fmt.Errorf("header %d: %q=%q vs %q=%q", i, ha.Key, ha.Value, hb.Key, hb.Value)
		}
	}
	return nil
}

func TestBuildHeaderFields(t *testing.T) {
	recs := []Record{
		{Timestamp: 1000, Key: []byte("k1"), Value: []byte("v1")},
		{Timestamp: 990, Key: nil, Value: []byte("v2"), Headers: []Header{{Key: []byte("h"), Value: nil}}},
		{Timestamp: 1005, Key: []byte("k3"), Value: nil},
	}
	tests := []struct {
		name string
		o    Options
		want func(Batch) error
	}{
		{"plain", Options{BaseOffset: 42}, func(b Batch) error {
			if b.BaseOffset() != 42 || b.LastOffsetDelta() != 2 || b.RecordCount() != 3 {
				return fmt.Errorf("offsets %d+%d count %d", b.BaseOffset(), b.LastOffsetDelta(), b.RecordCount())
			}
			if b.ProducerID() != -1 || b.ProducerEpoch() != -1 || b.BaseSequence() != -1 {
				return fmt.Errorf("producer %d/%d/%d", b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
			}
			if b.BaseTimestamp() != 1000 || b.MaxTimestamp() != 1005 {
				return fmt.Errorf("timestamps %d..%d", b.BaseTimestamp(), b.MaxTimestamp())
			}
			return nil
		}},
		{"idempotent", Options{Idempotent: true, ProducerID: 7, ProducerEpoch: 3, BaseSequence: 100}, func(b Batch) error {
			if b.ProducerID() != 7 || b.ProducerEpoch() != 3 || b.BaseSequence() != 100 || b.LastSequence() != 102 {
				return fmt.Errorf("producer %d/%d/%d..%d", b.ProducerID(), b.ProducerEpoch(), b.BaseSequence(), b.LastSequence())
			}
			return nil
		}},
		{"transactional control", Options{Transactional: true, Control: true}, func(b Batch) error {
			if !b.IsTransactional() || !b.IsControl() || b.IsLogAppendTime() {
				return fmt.Errorf("attributes %#x", b.Attributes())
			}
			return nil
		}},
		{"log append time", Options{LogAppendTime: true, MaxTimestamp: 5000, Codec: CodecZstd}, func(b Batch) error {
			if !b.IsLogAppendTime() || b.MaxTimestamp() != 5000 || b.Codec() != CodecZstd {
				return fmt.Errorf("attributes %#x max %d", b.Attributes(), b.MaxTimestamp())
			}
			return nil
		}},
		{"kept deltas", Options{KeepOffsetDeltas: true, LastOffsetDelta: 9}, func(b Batch) error {
			if b.LastOffsetDelta() != 9 || b.RecordCount() != 3 {
				return fmt.Errorf("lastOffsetDelta %d count %d", b.LastOffsetDelta(), b.RecordCount())
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Record{}, recs...)
			if tt.o.KeepOffsetDeltas {
				in[0].OffsetDelta, in[1].OffsetDelta, in[2].OffsetDelta = 1, 4, 6
			}
			b, err := Build(tt.o, in...)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.want(b); err != nil {
				t.Fatal(err)
			}
			got := decodeAll(t, b, 1<<20)
			if len(got) != len(in) {
				t.Fatalf("%d records, want %d", len(got), len(in))
			}
			for i := range in {
				if err := sameRecord(got[i], in[i]); err != nil {
					t.Errorf("record %d: %v", i, err)
				}
				want := int64(i)
				if tt.o.KeepOffsetDeltas {
					want = int64(in[i].OffsetDelta)
				}
				if got[i].Offset != b.BaseOffset()+want {
					t.Errorf("record %d offset %d, want %d", i, got[i].Offset, b.BaseOffset()+want)
				}
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		recs []Record
	}{
		{"unknown codec", Options{Codec: 5}, nil},
		{"negative codec", Options{Codec: -1}, nil},
		{"deltas not increasing", Options{KeepOffsetDeltas: true}, []Record{{OffsetDelta: 2}, {OffsetDelta: 2}}},
		{"negative delta", Options{KeepOffsetDeltas: true}, []Record{{OffsetDelta: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := AppendBuild(dst, tt.o, tt.recs...)
			if err == nil {
				t.Fatal("no error")
			}
			if string(out) != "prefix" {
				t.Fatalf("dst changed to %q", out)
			}
		})
	}
}

func TestEmptyBatch(t *testing.T) {
	b := MustBuild(Options{KeepOffsetDeltas: true, LastOffsetDelta: 4, BaseTimestamp: 7, MaxTimestamp: 9})
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
	if b.RecordCount() != 0 || b.LastOffsetDelta() != 4 || b.BaseTimestamp() != 7 || b.MaxTimestamp() != 9 {
		t.Fatalf("count %d lod %d ts %d..%d", b.RecordCount(), b.LastOffsetDelta(), b.BaseTimestamp(), b.MaxTimestamp())
	}
	if got := decodeAll(t, b, 100); len(got) != 0 {
		t.Fatalf("%d records", len(got))
	}
}

func genRecord(t *rapid.T, label string) Record {
	bs := func(l string) []byte {
		if rapid.Bool().Draw(t, l+"Null") {
			return nil
		}
		return rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, l)
	}
	r := Record{
		Timestamp: rapid.Int64Range(-1, 1<<42).Draw(t, label+"ts"),
		Key:       bs(label + "key"),
		Value:     bs(label + "value"),
	}
	for i := range rapid.IntRange(0, 3).Draw(t, label+"nh") {
		k := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, fmt.Sprint(label, "hk", i))
		r.Headers = append(r.Headers, Header{Key: k, Value: bs(fmt.Sprint(label, "hv", i))})
	}
	return r
}

// TestRoundTripProperty: build → parse → decode gives back every record for
// every codec, including xerial-framed snappy.
func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(t, "n")
		recs := make([]Record, n)
		for i := range recs {
			recs[i] = genRecord(t, fmt.Sprint("r", i))
		}
		o := Options{
			Codec:        rapid.SampledFrom(allCodecs).Draw(t, "codec"),
			BaseOffset:   rapid.Int64Range(0, 1<<40).Draw(t, "base"),
			XerialSnappy: rapid.Bool().Draw(t, "xerial"),
			Idempotent:   rapid.Bool().Draw(t, "idem"),
			ProducerID:   rapid.Int64Range(0, 1<<40).Draw(t, "pid"),
		}
		b, err := Build(o, recs...)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeAll(t, b, 1<<22)
		if len(got) != n {
			t.Fatalf("%d records, want %d", len(got), n)
		}
		for i := range recs {
			if err := sameRecord(got[i], recs[i]); err != nil {
				t.Fatalf("record %d (%s): %v", i, o.Codec, err)
			}
			if got[i].Offset != o.BaseOffset+int64(i) {
				t.Fatalf("record %d offset %d", i, got[i].Offset)
			}
		}
	})
}

// TestDecompressLimit: a batch that inflates beyond the limit fails with
// ReasonTooLarge for every codec, and one exactly at the limit succeeds.
func TestDecompressLimit(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 1<<20)
	for _, c := range allCodecs {
		for _, xerial := range []bool{false, true} {
			if xerial && c != CodecSnappy {
				continue
			}
			t.Run(fmt.Sprint(c, xerial), func(t *testing.T) {
				b := MustBuild(Options{Codec: c, XerialSnappy: xerial}, Record{Value: big}, Record{Value: big})
				raw, err := b.Decompress(nil, 4<<20)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Decompress(nil, len(raw)); err != nil {
					t.Fatalf("at the limit: %v", err)
				}
				_, err = b.Decompress(nil, len(raw)-1)
				if e, ok := errors.AsType[*Error](err); !ok || e.Reason != ReasonTooLarge {
					t.Fatalf("below the limit: %v", err)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%v does not unwrap to ErrCorrupt", err)
				}
			})
		}
	}
}

// TestIterReset: one Iter walks batches of every codec in turn, reusing its
// buffer, and an undecodable batch leaves it empty with the error.
func TestIterReset(t *testing.T) {
	var it Iter
	for i, c := range append(allCodecs, allCodecs...) {
		want := fmt.Sprintf("value %d", i)
		b := MustBuild(Options{Codec: c, BaseOffset: int64(10 * i)}, Record{Key: []byte("k"), Value: []byte(want)}, Record{Value: []byte("x")})
		if err := it.Reset(b, 1<<20); err != nil {
			t.Fatal(err)
		}
		var got []string
		for it.Next() {
			got = append(got, fmt.Sprintf("%d:%s", it.Record().Offset, it.Record().Value))
		}
		if it.Err() != nil || fmt.Sprint(got) != fmt.Sprintf("[%d:%s %d:x]", 10*i, want, 10*i+1) {
			t.Fatalf("%s: %v %v", c, got, it.Err())
		}
	}
	bad := MustBuild(Options{Codec: CodecGzip}, Record{Value: []byte("v")})
	bad[len(bad)-6] ^= 0xff
	if err := it.Reset(bad, 1<<20); !errors.Is(err, ErrCorrupt) || it.Next() || !errors.Is(it.Err(), ErrCorrupt) {
		t.Fatalf("Reset on a damaged batch: %v, Next true or Err %v", err, it.Err())
	}
}
