package replica

import (
	"testing"

	"github.com/weir-broker/weir/log/batch"
)

// BenchmarkPartitionAppend appends 100-record batches of 100-byte values
// (about 11 KiB) with acks=1: validation, offset assignment, the write and
// the high watermark update.
func BenchmarkPartitionAppend(b *testing.B) {
	m := newTestManager(b, b.TempDir(), nil)
	defer m.Close()
	p := mustCreate(b, m, "bench", 0, nil)
	proto := benchBatch()
	buf := make([]byte, len(proto))
	b.SetBytes(int64(len(proto)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, proto)
		if _, err := p.Append(buf, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartitionRead reads 1 MiB of committed batches as file regions
// (no bytes copied) from a random-ish offset.
func BenchmarkPartitionRead(b *testing.B) {
	m := newTestManager(b, b.TempDir(), nil)
	defer m.Close()
	p := mustCreate(b, m, "bench", 0, nil)
	proto := benchBatch()
	for range 200 {
		if _, err := p.Append(append([]byte(nil), proto...), 1); err != nil {
			b.Fatal(err)
		}
	}
	hw := p.HighWatermark()
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		r, err := p.Read(i%(hw/2), 1<<20)
		if err != nil || r.Bytes() == 0 {
			b.Fatal(err)
		}
		r.Release()
		i += 37
	}
}

func benchBatch() []byte {
	recs := make([]batch.Record, 100)
	val := make([]byte, 100)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: testNow.UnixMilli(), Value: val}
	}
	return batch.MustBuild(batch.Options{}, recs...)
}
