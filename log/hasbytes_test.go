package log

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/weir-broker/weir/log/vfs"
)

// TestHasBytes: HasBytes never claims more bytes than a read up to
// maxOffset returns, and claims all but at most two index intervals and two
// batches of them; it answers false across segments. Sealed segments (index
// in the file) and the active one (index in memory) both.
func TestHasBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := smallConfig()
		cfg.SegmentBytes = 64 << 10
		cfg.IndexIntervalBytes = int64(rapid.IntRange(1, 4096).Draw(t, "interval"))
		p := openT(t, vfs.NewMem(), cfg, Options{})
		defer closeT(t, p)
		const maxRecords, maxValue = 4, 900
		for i := range rapid.IntRange(1, 300).Draw(t, "batches") {
			appendT(t, p, testBatch(rapid.IntRange(1, maxRecords).Draw(t, "records"), int64(i), rapid.IntRange(0, maxValue).Draw(t, "value"), byte(i)), AppendOptions{})
		}
		if p.LogEndOffset() < 2 {
			return
		}
		maxBatch := int64(61 + maxRecords*(maxValue+30))
		for range 30 {
			offset := rapid.Int64Range(0, p.LogEndOffset()-2).Draw(t, "offset")
			maxOffset := rapid.Int64Range(offset+1, p.LogEndOffset()).Draw(t, "maxOffset")
			res, err := p.Read(offset, ReadOptions{MaxBytes: 1 << 30, MaxOffset: maxOffset})
			if err != nil {
				t.Fatal(err)
			}
			actual := res.Bytes
			res.Release()
			if p.HasBytes(offset, maxOffset, actual+1) {
				t.Fatalf("HasBytes(%d, %d, %d) with %d bytes there", offset, maxOffset, actual+1, actual)
			}
			if p.OnOlderSegment(offset, maxOffset-1) {
				if p.HasBytes(offset, maxOffset, 1) {
					t.Fatalf("HasBytes(%d, %d, 1) across segments", offset, maxOffset)
				}
				continue
			}
			if n := actual - 2*(cfg.IndexIntervalBytes+maxBatch); n > 0 && !p.HasBytes(offset, maxOffset, n) {
				t.Fatalf("HasBytes(%d, %d, %d) false with %d bytes there (interval %d)", offset, maxOffset, n, actual, cfg.IndexIntervalBytes)
			}
		}
	})
}
