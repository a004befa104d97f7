package compat

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// batchHeader returns a minimal well-formed batch (header only, no record
// bytes) for parseBatchHeaders' tests.
func batchHeader(offset int64, attrs int16, records int32) []byte {
	b := make([]byte, batchHeaderLen)
	binary.BigEndian.PutUint64(b, uint64(offset))
	binary.BigEndian.PutUint32(b[batchLengthPos:], batchHeaderLen-12)
	b[batchMagicPos] = 2
	binary.BigEndian.PutUint16(b[batchAttrsPos:], uint16(attrs))
	binary.BigEndian.PutUint32(b[batchCountPos:], uint32(records))
	return b
}

func TestParseBatchHeaders(t *testing.T) {
	two := append(batchHeader(0, 1, 5), batchHeader(5, 0x14, 3)...) // gzip; zstd + transactional bit
	badMagic := batchHeader(0, 0, 1)
	badMagic[batchMagicPos] = 1
	tests := []struct {
		name    string
		in      []byte
		want    []storedBatch
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"two batches", two, []storedBatch{{Offset: 0, Codec: 1, Records: 5}, {Pos: 61, Offset: 5, Codec: 4, Records: 3}}, false},
		{"torn tail", two[:100], []storedBatch{{Offset: 0, Codec: 1, Records: 5}}, true},
		{"bad magic", badMagic, nil, true},
		{"short", []byte{1, 2, 3}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBatchHeaders(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("batch %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzParseBatchHeaders checks that no segment bytes make the walker panic
// or report batches that do not fit the input.
func FuzzParseBatchHeaders(f *testing.F) {
	f.Add(append(batchHeader(0, 1, 5), batchHeader(5, 4, 3)...))
	f.Add(batchHeader(0, 0, 1)[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, _ := parseBatchHeaders(b)
		for _, x := range bs {
			if x.Pos < 0 || x.Pos+batchHeaderLen > int64(len(b)) || x.Codec < 0 || x.Codec > 7 {
				t.Fatalf("batch %+v does not fit %d input bytes", x, len(b))
			}
		}
	})
}

// validBatch encodes an uncompressed v2 batch at base holding one record
// per value, with a correct CRC-32C.
func validBatch(base int64, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // null key
		r = binary.AppendVarint(r, int64(len(v)))
		r = append(r, v...)
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := batchHeader(base, 0, int32(len(values)))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[batchLengthPos:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[23:], uint32(len(values)-1)) // last offset delta
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))            // producer id -1
	binary.BigEndian.PutUint16(b[51:], ^uint16(0))            // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], ^uint32(0))            // base sequence -1
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[batchAttrsPos:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestLogDumpAgreesWithSegmentReader checks the two ways checkStored reads
// stored batches against each other on a segment written here.
func TestLogDumpAgreesWithSegmentReader(t *testing.T) {
	dir := t.TempDir()
	seg := append(validBatch(0, "a", "b"), validBatch(2, "c")...)
	pdir := filepath.Join(dir, "t-0")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "00000000000000000000.log"), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := storedBatches(dir, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []storedBatch{
		{File: "00000000000000000000.log", Offset: 0, Records: 2},
		{File: "00000000000000000000.log", Pos: int64(len(validBatch(0, "a", "b"))), Offset: 2, Records: 1},
	}
	if !slices.Equal(files, want) {
		t.Fatalf("segment reader = %+v, want %+v", files, want)
	}
	dumped, err := dumpBatches(dir, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dumped, want) {
		t.Fatalf("weir log dump = %+v, want %+v", dumped, want)
	}
}
