package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The committed corpus under testdata/fuzz/FuzzParse and FuzzRecords holds
// batches franz-go produced for every codec (go run ./internal/seedgen).
// builderSeeds adds what no Go client sends.
func builderSeeds() [][]byte {
	recs := []Record{
		{Timestamp: 1700000000000, Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 40000)},
		{Timestamp: 1700000000001, Key: []byte("k2"), Value: []byte("v"), Headers: []Header{{Key: []byte("h"), Value: []byte("1")}}},
	}
	return [][]byte{
		MustBuild(Options{Codec: CodecSnappy, XerialSnappy: true}, recs...), // Java clients
		MustBuild(Options{Control: true, Transactional: true, Idempotent: true, ProducerID: 9, BaseSequence: -1},
			Record{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}),
		MustBuild(Options{LogAppendTime: true, MaxTimestamp: 1700000000999, Codec: CodecLZ4}, recs...),
		MustBuild(Options{KeepOffsetDeltas: true, LastOffsetDelta: 7, BaseTimestamp: 1, MaxTimestamp: 2}),
	}
}

const fuzzLimit = 1 << 20

// FuzzParse: Parse never panics, never accepts a batch whose CRC is wrong,
// and never reports a size beyond its input. Accepted batches go through the
// record decoder too.
func FuzzParse(f *testing.F) {
	for _, s := range builderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(b) > len(data) || b.ComputeCRC() != b.CRC() || b.Magic() != Magic {
			t.Fatalf("accepted a bad batch: %d of %d bytes", len(b), len(data))
		}
		checkRecords(t, b)
	})
}

// FuzzRecords fixes up the length and CRC of the input before parsing it,
// so mutations reach the decompressors and the record decoder instead of
// failing the CRC. Whatever decodes must survive a rebuild with the same
// options and decode to the same records.
func FuzzRecords(f *testing.F) {
	for _, s := range builderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < HeaderSize {
			return
		}
		data = bytes.Clone(data)
		binary.BigEndian.PutUint32(data[posBatchLength:], uint32(len(data)-LogOverhead))
		data[posMagic] = Magic
		Batch(data).SetCRC()
		b, err := Parse(data)
		if err != nil {
			return
		}
		checkRecords(t, b)
	})
}

// checkRecords decodes b; if that works, rebuilding from the records must
// give a batch that decodes to the same records.
func checkRecords(t *testing.T, b Batch) {
	t.Helper()
	it, err := b.Records(fuzzLimit)
	if err != nil {
		if _, ok := errors.AsType[*Error](err); !ok {
			t.Fatalf("untyped error %v", err)
		}
		return
	}
	var recs []Record
	for it.Next() {
		recs = append(recs, cloneRecord(*it.Record()))
	}
	if err := it.Err(); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("iteration error %v does not unwrap to ErrCorrupt", err)
		}
		return
	}
	if int32(len(recs)) != b.RecordCount() {
		t.Fatalf("%d records, header says %d", len(recs), b.RecordCount())
	}
	o := Options{Codec: b.Codec(), BaseOffset: b.BaseOffset(), KeepOffsetDeltas: true,
		LastOffsetDelta: b.LastOffsetDelta(), BaseTimestamp: b.BaseTimestamp(), MaxTimestamp: b.MaxTimestamp()}
	rb, err := Build(o, recs...)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	got := decodeAll(t, rb, fuzzLimit*2)
	for i := range recs {
		if err := sameRecord(got[i], recs[i]); err != nil {
			t.Fatalf("record %d after rebuild: %v", i, err)
		}
		if got[i].OffsetDelta != recs[i].OffsetDelta {
			t.Fatalf("record %d offsetDelta %d, want %d", i, got[i].OffsetDelta, recs[i].OffsetDelta)
		}
	}
}
