package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// TestBuiltBatchesDecodeWithFranzGo: whatever Build writes (fresh batches,
// and the rebuilt and empty batches compaction writes) decodes with
// franz-go's own batch codec and decompressors, the code a Kafka client
// runs on fetch, with the same header fields and records.
func TestBuiltBatchesDecodeWithFranzGo(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 20).Draw(t, "n")
		o := Options{
			Codec:                rapid.SampledFrom(allCodecs).Draw(t, "codec"),
			XerialSnappy:         rapid.Bool().Draw(t, "xerial"),
			BaseOffset:           rapid.Int64Range(0, 1<<40).Draw(t, "base"),
			PartitionLeaderEpoch: rapid.Int32Range(-1, 100).Draw(t, "epoch"),
			Idempotent:           rapid.Bool().Draw(t, "idem"),
			ProducerID:           rapid.Int64Range(0, 1<<30).Draw(t, "pid"),
			ProducerEpoch:        int16(rapid.IntRange(0, 100).Draw(t, "pepoch")),
			BaseSequence:         rapid.Int32Range(0, 1<<30).Draw(t, "seq"),
			Transactional:        rapid.Bool().Draw(t, "txn"),
			KeepOffsetDeltas:     true,
		}
		recs := make([]Record, n)
		delta := int32(-1)
		for i := range recs {
			recs[i] = genRecord(t, fmt.Sprint("r", i))
			delta += int32(rapid.IntRange(1, 3).Draw(t, fmt.Sprint("gap", i)))
			recs[i].OffsetDelta = delta
		}
		o.LastOffsetDelta = max(delta, 0) + int32(rapid.IntRange(0, 3).Draw(t, "tail"))
		b, err := Build(o, recs...)
		if err != nil {
			t.Fatal(err)
		}

		wantCodec := o.Codec
		if n == 0 {
			wantCodec = CodecNone // empty batches are written uncompressed, as Kafka does
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("kmsg: %v", err)
		}
		crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
		if rb.FirstOffset != o.BaseOffset || int(rb.Length)+12 != len(b) || rb.Magic != 2 || uint32(rb.CRC) != crc ||
			rb.LastOffsetDelta != o.LastOffsetDelta || rb.NumRecords != int32(n) || rb.Attributes&7 != int16(wantCodec) ||
			rb.PartitionLeaderEpoch != o.PartitionLeaderEpoch {
			t.Fatalf("kmsg header %+v", rb)
		}
		raw, err := dec.Decompress(rb.Records, kgo.CompressionCodecType(wantCodec))
		if err != nil {
			t.Fatalf("kgo decompress %s (xerial %v): %v", o.Codec, o.XerialSnappy, err)
		}
		for i := range n {
			l, k := binary.Varint(raw)
			if k <= 0 || int(l)+k > len(raw) {
				t.Fatalf("record %d: bad length", i)
			}
			var kr kmsg.Record
			if err := kr.ReadFrom(raw[:k+int(l)]); err != nil {
				t.Fatalf("record %d: kmsg: %v", i, err)
			}
			raw = raw[k+int(l):]
			want := recs[i]
			if kr.OffsetDelta != want.OffsetDelta || rb.FirstTimestamp+kr.TimestampDelta64 != want.Timestamp ||
				!bytes.Equal(kr.Key, want.Key) || (kr.Key == nil) != (want.Key == nil) ||
				!bytes.Equal(kr.Value, want.Value) || (kr.Value == nil) != (want.Value == nil) ||
				len(kr.Headers) != len(want.Headers) {
				t.Fatalf("record %d: kmsg %+v, built %+v", i, kr, want)
			}
			for j, h := range kr.Headers {
				if h.Key != string(want.Headers[j].Key) || !bytes.Equal(h.Value, want.Headers[j].Value) {
					t.Fatalf("record %d header %d: %q=%q", i, j, h.Key, h.Value)
				}
			}
		}
		if len(raw) != 0 {
			t.Fatalf("%d bytes after the records", len(raw))
		}
	})
}
