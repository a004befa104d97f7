package log

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/weir-broker/weir/log/batch"
)

func TestPlanCompaction(t *testing.T) {
	compact := DefaultConfig()
	compact.CleanupPolicy = "compact"
	with := func(f func(*Config)) Config { c := compact; f(&c); return c }
	segs := []cleanCandidate{
		{base: 0, next: 10, size: 100, maxTs: 1000},
		{base: 10, next: 20, size: 100, maxTs: 2000},
		{base: 20, next: 30, size: 100, maxTs: 3000},
	}
	tests := []struct {
		name      string
		segs      []cleanCandidate
		cleanedTo int64
		cfg       Config
		now       int64
		want      int
	}{
		{"delete policy never compacts", segs, -1, DefaultConfig(), 5000, 0},
		{"nothing sealed", nil, -1, compact, 5000, 0},
		{"all dirty", segs, -1, compact, 5000, 3},
		{"compact,delete", segs, -1, with(func(c *Config) { c.CleanupPolicy = "compact,delete" }), 5000, 3},
		{"dirty ratio 1/3 below 0.5", segs, 20, compact, 5000, 0},
		{"dirty ratio 2/3 above 0.5", segs, 10, compact, 5000, 3},
		{"dirty ratio 1/3 above 0.3", segs, 20, with(func(c *Config) { c.MinCleanableDirtyRatio = 0.3 }), 5000, 3},
		{"all clean", segs, 30, compact, 5000, 0},
		{"min lag holds back the newest", segs, -1, with(func(c *Config) { c.MinCompactionLagMs = 2500 }), 5000, 2},
		{"min lag holds back all", segs, -1, with(func(c *Config) { c.MinCompactionLagMs = 10000 }), 5000, 0},
		{"max lag overrides the ratio", segs, 20, with(func(c *Config) { c.MaxCompactionLagMs = 1000 }), 5000, 3},
		{"max lag not reached", segs, 20, with(func(c *Config) { c.MaxCompactionLagMs = math.MaxInt64 }), 5000, 0},
		{"empty segments are no work", []cleanCandidate{{base: 0, next: 0, size: 0, maxTs: -1}}, -1, compact, 5000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planCompaction(tt.segs, tt.cleanedTo, tt.cfg, tt.now, -1); got != tt.want {
				t.Fatalf("planCompaction = %d, want %d", got, tt.want)
			}
		})
	}
}

// clRecs builds records with keys and values from "k=v" strings; "k=" is a
// tombstone, "=v" a record without key.
func clRecs(ts int64, kvs ...string) []batch.Record {
	recs := make([]batch.Record, len(kvs))
	for i, kv := range kvs {
		k, v, _ := bytes.Cut([]byte(kv), []byte("="))
		r := batch.Record{Timestamp: ts + int64(i)}
		if len(k) > 0 {
			r.Key = k
		}
		if len(v) > 0 {
			r.Value = v
		}
		recs[i] = r
	}
	return recs
}

// clKVs renders a batch's records as "offset:k=v" strings.
func clKVs(t *testing.T, b batch.Batch) []string {
	t.Helper()
	it, err := b.Records(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for it.Next() {
		r := it.Record()
		out = append(out, fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, r.Value))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFilterBatch(t *testing.T) {
	// Newest offsets: a@12, b@7, c@11 (tombstone, ts 100), d@13 (tombstone, ts 5000).
	om := newOffsetMap()
	for k, off := range map[string]int64{"a": 12, "b": 7, "c": 11, "d": 13} {
		om.add([]byte(k), off)
	}
	om.add([]byte("a"), 3) // older offsets never win
	const horizon = 1000
	idem := batch.Options{Idempotent: true, ProducerID: 5, ProducerEpoch: 2, BaseSequence: 40}
	tests := []struct {
		name      string
		o         batch.Options
		recs      []batch.Record
		last      bool
		want      []string // records kept, "offset:k=v"
		same      bool     // copied byte for byte
		dropped   bool     // nothing written
		removed   int64
		tombstone int64
	}{
		{name: "all newest: copied as is", o: batch.Options{BaseOffset: 7, Codec: batch.CodecLZ4},
			recs: clRecs(100, "b=1"), want: []string{"7:b=1"}, same: true},
		{name: "superseded values go", o: batch.Options{BaseOffset: 5, Codec: batch.CodecGzip},
			recs: clRecs(100, "a=old", "x=1", "b=new", "=nokey"), want: []string{"6:x=1", "7:b=new", "8:=nokey"}, removed: 1},
		{name: "expired tombstone goes, recent one stays", o: batch.Options{BaseOffset: 11},
			recs: append(clRecs(100, "c=", "a=1"), clRecs(5000, "d=")...), want: []string{"12:a=1", "13:d="}, removed: 1, tombstone: 1},
		{name: "all superseded, no producer: dropped", o: batch.Options{BaseOffset: 0, Codec: batch.CodecZstd},
			recs: clRecs(100, "a=1", "b=2"), dropped: true, removed: 2},
		{name: "all superseded, producer: empty batch", o: func() batch.Options { o := idem; o.BaseOffset = 0; return o }(),
			recs: clRecs(100, "a=1", "b=2"), want: nil, removed: 2},
		{name: "all superseded, last of its segment: empty batch", o: batch.Options{BaseOffset: 0},
			recs: clRecs(100, "a=1", "b=2"), last: true, want: nil, removed: 2},
		{name: "control batch kept whole", o: batch.Options{BaseOffset: 1, Control: true, Transactional: true, Idempotent: true, ProducerID: 5},
			recs: []batch.Record{{Key: []byte("a"), Value: []byte{0, 0}}}, want: []string{"1:a=\x00\x00"}, same: true},
		{name: "log append time: the batch time judges tombstones", o: batch.Options{BaseOffset: 13, LogAppendTime: true, MaxTimestamp: 5000},
			recs: clRecs(10, "d="), want: []string{"13:d="}, same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := batch.MustBuild(tt.o, tt.recs...)
			out, st, err := filterBatch([]byte("x"), in, tt.last, om, nil, horizon, 1<<20, &batch.Iter{})
			if err != nil {
				t.Fatal(err)
			}
			if st.records != tt.removed || st.tombstones != tt.tombstone {
				t.Fatalf("removed %d (%d tombstones), want %d (%d)", st.records, st.tombstones, tt.removed, tt.tombstone)
			}
			out = out[1:]
			if tt.dropped {
				if len(out) != 0 {
					t.Fatalf("wrote %d bytes", len(out))
				}
				return
			}
			got, err := batch.Parse(out)
			if err != nil || len(got) != len(out) {
				t.Fatalf("output is not one valid batch: %v", err)
			}
			if tt.same != bytes.Equal(got, in) {
				t.Fatalf("copied verbatim = %v, want %v", !tt.same, tt.same)
			}
			if kvs := clKVs(t, got); fmt.Sprint(kvs) != fmt.Sprint(tt.want) {
				t.Fatalf("kept %q, want %q", kvs, tt.want)
			}
			// The header fields that matter to offsets, producers and readers survive.
			if got.BaseOffset() != in.BaseOffset() || got.LastOffsetDelta() != in.LastOffsetDelta() ||
				got.ProducerID() != in.ProducerID() || got.ProducerEpoch() != in.ProducerEpoch() ||
				got.BaseSequence() != in.BaseSequence() || got.LastSequence() != in.LastSequence() ||
				got.Codec() != in.Codec() || got.IsTransactional() != in.IsTransactional() ||
				got.PartitionLeaderEpoch() != in.PartitionLeaderEpoch() {
				t.Fatalf("header changed:\n in  %x\n out %x", in[:batch.HeaderSize], got[:batch.HeaderSize])
			}
		})
	}
}

func TestFilterBatchUndecodable(t *testing.T) {
	b := batch.MustBuild(batch.Options{Codec: batch.CodecGzip}, clRecs(1, "a=1")...)
	b[len(b)-6] ^= 0xff // damage the gzip trailer's CRC-32
	b.SetCRC()
	out, _, err := filterBatch(nil, b, false, newOffsetMap(), nil, 0, 1<<20, &batch.Iter{})
	if err == nil || len(out) != 0 {
		t.Fatalf("err %v, %d bytes", err, len(out))
	}
}
