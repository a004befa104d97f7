package replica

import (
	"bytes"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// FuzzAppend feeds arbitrary produce records to a partition: Append never
// panics; on error the log is unchanged; on success the high watermark is
// the log end offset and reading back returns the bytes as stored (offsets
// and leader epoch assigned, everything else as produced).
func FuzzAppend(f *testing.F) {
	two := append(records("a", 2, batch.Options{}), records("b", 3, batch.Options{})...)
	f.Add(records("a", 1, batch.Options{}), int16(1))
	f.Add(two, int16(-1))
	f.Add(records("c", 1, batch.Options{Control: true}), int16(1))
	f.Add(records("t", 1, batch.Options{Transactional: true, Idempotent: true, ProducerID: 7}), int16(1))
	f.Add(records("i", 4, batch.Options{Idempotent: true, ProducerID: 3, BaseSequence: 0}), int16(-1))
	f.Add(corrupt(records("x", 2, batch.Options{})), int16(1))
	f.Add(two[:len(two)-1], int16(1))
	f.Add([]byte{}, int16(0))
	f.Fuzz(func(t *testing.T, recs []byte, acks int16) {
		m := newTestManager(t, "/data", vfs.NewMem())
		defer m.Close()
		p := mustCreate(t, m, "f", 0, func(c *Config) { c.MaxMessageBytes = 4096 })
		in := bytes.Clone(recs)
		res, err := p.Append(recs, acks)
		if err != nil {
			if p.LogEndOffset() != 0 || p.HighWatermark() != 0 {
				t.Fatalf("failed append (%v) changed the log: LEO %d", err, p.LogEndOffset())
			}
			return
		}
		if p.HighWatermark() != p.LogEndOffset() || p.LogEndOffset() != res.LastOffset+1 {
			t.Fatalf("HW %d LEO %d last %d", p.HighWatermark(), p.LogEndOffset(), res.LastOffset)
		}
		got := readAll(t, p, 0, 1<<20)
		// What was stored is the input with offsets and epochs assigned:
		// compare everything from the magic byte on, batch by batch.
		for len(in) > 0 && len(got) > 0 {
			n, _ := batch.Size(in)
			if !bytes.Equal(in[16:n], got[16:n]) {
				t.Fatal("stored batch differs from the produced one past its header offsets")
			}
			in, got = in[n:], got[n:]
		}
	})
}
