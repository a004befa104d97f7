package compat

import (
	"encoding/binary"
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
