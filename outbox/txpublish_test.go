package outbox

import (
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestSeqsRoundTrip: a position record decodes to the round's seqs,
// sorted, whatever their order and sign.
func TestSeqsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seqs := rapid.SliceOf(rapid.Int64()).Draw(t, "seqs")
		got, err := decodeSeqs(encodeSeqs(seqs))
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(seqs))
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("decoded %v, want %v", got, want)
		}
	})
}

func TestDecodeSeqsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"count beyond the bytes", []byte{0x7f}},
		{"truncated delta", []byte{0x02, 0x02}},
		{"trailing bytes", append(encodeSeqs([]int64{1, 2}), 0)},
		{"unterminated varint", []byte{0x01, 0x80}},
		{"descending", []byte("\x0211")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeSeqs(tc.in); !errors.Is(err, ErrBadPosition) {
				t.Fatalf("decodeSeqs(%x) = %v, want ErrBadPosition", tc.in, err)
			}
		})
	}
}

func FuzzDecodeSeqs(f *testing.F) {
	f.Add(encodeSeqs([]int64{3, 1, 2}))
	f.Add([]byte{0x7f})
	f.Add([]byte{0x01, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		seqs, err := decodeSeqs(b)
		if err != nil {
			return
		}
		again, err := decodeSeqs(encodeSeqs(seqs))
		if err != nil || !slices.Equal(again, seqs) {
			t.Fatalf("re-encoding %v gave %v (%v)", seqs, again, err)
		}
	})
}
