package batch

import (
	"fmt"
	"testing"
)

// benchRecords is a typical produce batch: 100 records of 200-byte JSON-ish
// values with 16-byte keys and one header.
func benchRecords() []Record {
	recs := make([]Record, 100)
	for i := range recs {
		v := fmt.Appendf(nil, `{"order":%d,"state":"created","items":[1,2,3],"note":"%0160d"}`, i, i)
		recs[i] = Record{Timestamp: 1700000000000 + int64(i), Key: fmt.Appendf(nil, "order-%010d", i), Value: v,
			Headers: []Header{{Key: []byte("id"), Value: fmt.Appendf(nil, "%d", i)}}}
	}
	return recs
}

// BenchmarkParse measures header validation plus CRC-32C of one batch: the
// work Append does per batch.
func BenchmarkParse(b *testing.B) {
	bt := MustBuild(Options{}, benchRecords()...)
	b.SetBytes(int64(len(bt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecords measures decompressing a batch and iterating its records,
// per codec. SetBytes counts uncompressed record bytes.
func BenchmarkRecords(b *testing.B) {
	recs := benchRecords()
	raw := MustBuild(Options{}, recs...)
	for _, c := range allCodecs {
		bt := MustBuild(Options{Codec: c}, recs...)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(raw.RecordsSection())))
			b.ReportAllocs()
			for b.Loop() {
				it, err := bt.Records(1 << 20)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for it.Next() {
					n += len(it.Record().Value)
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
			}
		})
	}
}

// BenchmarkIterReset is BenchmarkRecords with one Iter reused across
// batches, as the cleaner and verifier loop: the decompression buffer is
// allocated once.
func BenchmarkIterReset(b *testing.B) {
	recs := benchRecords()
	raw := MustBuild(Options{}, recs...)
	for _, c := range allCodecs {
		bt := MustBuild(Options{Codec: c}, recs...)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(raw.RecordsSection())))
			b.ReportAllocs()
			var it Iter
			for b.Loop() {
				if err := it.Reset(bt, 1<<20); err != nil {
					b.Fatal(err)
				}
				for it.Next() {
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
			}
		})
	}
}

// BenchmarkBuild measures encoding a batch with each codec.
func BenchmarkBuild(b *testing.B) {
	recs := benchRecords()
	raw := MustBuild(Options{}, recs...)
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(raw.RecordsSection())))
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				buf, err = AppendBuild(buf[:0], Options{Codec: c}, recs...)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
