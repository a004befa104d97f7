package log

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// clBenchLog writes about 4 MB in 64 KB segments: batches of 10 records of
// 200-byte values over 1000 keys, with codec c.
func clBenchLog(b *testing.B, c batch.Codec) (*vfs.Mem, int64) {
	b.Helper()
	fs := vfs.NewMem()
	cfg := clConfig()
	cfg.SegmentBytes = 64 << 10
	cfg.IndexIntervalBytes = 4096
	p := clOpen(b, fs, cfg, 10_000)
	rng := rand.New(rand.NewPCG(1, 1))
	val := make([]byte, 200)
	for p.Size() < 4<<20 {
		recs := make([]batch.Record, 10)
		for i := range recs {
			recs[i] = batch.Record{Timestamp: 1000, Key: fmt.Appendf(nil, "key-%04d", rng.IntN(1000)), Value: val}
		}
		if _, err := p.Append(batch.MustBuild(batch.Options{Codec: c}, recs...), AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	size := p.Size()
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	return fs, size
}

// BenchmarkCompact measures one compaction pass over a freshly written log
// (SetBytes: the log's size). BenchmarkVerify/headers, a read of the same
// bytes with CRC checks only, is the baseline to compare it with.
func BenchmarkCompact(b *testing.B) {
	for _, c := range []batch.Codec{batch.CodecNone, batch.CodecZstd} {
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				b.StopTimer()
				fs, n := clBenchLog(b, c)
				p := clOpen(b, fs, clConfig(), 10_000)
				size = n
				b.StartTimer()
				res, err := p.Compact()
				b.StopTimer()
				if err != nil || res.SegmentsCleaned == 0 {
					b.Fatalf("%+v %v", res, err)
				}
				if err := p.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.SetBytes(size)
		})
	}
}

// BenchmarkVerify measures Verify over the same log: headers and CRCs only,
// and with every record decoded.
func BenchmarkVerify(b *testing.B) {
	for _, c := range []batch.Codec{batch.CodecNone, batch.CodecZstd} {
		fs, size := clBenchLog(b, c)
		for _, deep := range []bool{false, true} {
			name := fmt.Sprintf("%s/headers", c)
			if deep {
				name = fmt.Sprintf("%s/records", c)
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					r, err := Verify(fs, clDir, VerifyOptions{Records: deep})
					if err != nil || !r.Clean() {
						b.Fatalf("%v %v", err, r.Problems)
					}
				}
			})
		}
	}
}
