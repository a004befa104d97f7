package batch

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

// TestBlockSumsChecksum: for any buffer filled in any steps, the CRC
// assembled from block sums of any part of it is the CRC of that part.
func TestBlockSumsChecksum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 6*SumBlockSize+100).Draw(t, "size")
		buf := make([]byte, n, n+rapid.IntRange(0, 3).Draw(t, "spare"))
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		var s BlockSums
		s.Reset(buf)
		for filled := 0; filled < n; {
			filled += rapid.IntRange(1, 3*SumBlockSize).Draw(t, "step")
			s.Filled(filled)
		}
		if n == 0 {
			return
		}
		for range 20 {
			a := rapid.IntRange(0, n-1).Draw(t, "from")
			e := rapid.IntRange(a+1, n).Draw(t, "to")
			got, ok := s.Checksum(buf[a:e])
			if want := crc32.Checksum(buf[a:e], castagnoli); !ok || got != want {
				t.Fatalf("Checksum(buf[%d:%d]) = %08x, %t; want %08x", a, e, got, ok, want)
			}
		}
	})
}

// TestBlockSumsPartlySummed: blocks not summed yet (a buffer still being
// filled) are read instead; the result is the same.
func TestBlockSumsPartlySummed(t *testing.T) {
	buf := bytes.Repeat([]byte("weir-log"), 5*SumBlockSize/8)
	var s BlockSums
	s.Reset(buf)
	s.Filled(2*SumBlockSize + 7)
	if len(s.sums) != 2 {
		t.Fatalf("%d blocks summed, want 2", len(s.sums))
	}
	for _, r := range [][2]int{{0, len(buf)}, {100, 3*SumBlockSize + 1}, {SumBlockSize, 2 * SumBlockSize}, {5, 9}} {
		got, ok := s.Checksum(buf[r[0]:r[1]])
		if want := crc32.Checksum(buf[r[0]:r[1]], castagnoli); !ok || got != want {
			t.Errorf("Checksum(buf[%d:%d]) = %08x, %t; want %08x", r[0], r[1], got, ok, want)
		}
	}
}

// TestBlockSumsForeign: bytes that are not part of the summed buffer, equal
// or not, are refused rather than answered from the sums.
func TestBlockSumsForeign(t *testing.T) {
	buf := bytes.Repeat([]byte{7}, 3*SumBlockSize)
	var s BlockSums
	s.Reset(buf[:2*SumBlockSize])
	s.Filled(2 * SumBlockSize)
	other := bytes.Clone(buf)
	for name, b := range map[string][]byte{
		"copy":               other[:SumBlockSize],
		"past the described": buf[2*SumBlockSize:],
		"empty":              buf[:0],
	} {
		if _, ok := s.Checksum(b); ok {
			t.Errorf("%s: Checksum answered", name)
		}
	}
	if got, ok := s.Checksum(buf[10:SumBlockSize:SumBlockSize]); !ok || got != crc32.Checksum(buf[10:SumBlockSize], castagnoli) {
		t.Errorf("a part with its capacity cut (as kmsg slices records): %08x, %t", got, ok)
	}
	var none *BlockSums
	if _, ok := none.Checksum(buf); ok {
		t.Error("nil BlockSums answered")
	}
	s.Reset(nil)
	if _, ok := s.Checksum(buf); ok {
		t.Error("BlockSums reset to nothing answered")
	}
}

// TestParseSummedCatchesCorruption: a byte flipped in a batch before the
// buffer holding it was summed (as a client or the network would) fails the
// CRC check wherever it lies, in a summed block or a partial one.
func TestParseSummedCatchesCorruption(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := make([]Record, rapid.IntRange(1, 40).Draw(t, "records"))
		for i := range recs {
			recs[i] = Record{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{byte(i)}, rapid.IntRange(0, 2000).Draw(t, "value"))}
		}
		bt, err := Build(Options{}, recs...)
		if err != nil {
			t.Fatal(err)
		}
		lead := rapid.IntRange(0, 2*SumBlockSize).Draw(t, "lead")
		buf := append(make([]byte, lead), bt...)
		flip := rapid.IntRange(-1, len(bt)-1-posAttributes).Draw(t, "flip")
		if flip >= 0 {
			buf[lead+posAttributes+flip] ^= byte(rapid.IntRange(1, 255).Draw(t, "bits"))
		}
		var s BlockSums
		s.Reset(buf)
		s.Filled(len(buf))
		_, err = ParseSummed(buf[lead:], &s)
		var be *Error
		switch {
		case flip < 0 && err != nil:
			t.Fatalf("intact batch: %v", err)
		case flip >= 0 && (!errors.As(err, &be) || be.Reason != ReasonCRC):
			t.Fatalf("byte %d of the CRC range flipped: err = %v, want a CRC mismatch", flip, err)
		}
	})
}

// BenchmarkValidate checks 1 MiB batches spread over a 16 MiB buffer (more
// than the CPU's caches, as a large produce request is by the time it is
// checked): reading them in full against assembling from block sums. The
// summing itself happens as the request arrives (BenchmarkBlockSumsFilled).
func BenchmarkValidate(b *testing.B) {
	const batchBytes = 1 << 20
	one, err := Build(Options{}, Record{Value: make([]byte, batchBytes-200)})
	if err != nil {
		b.Fatal(err)
	}
	buf := bytes.Repeat(one, 16)
	var s BlockSums
	s.Reset(buf)
	s.Filled(len(buf))
	for _, bc := range []struct {
		name string
		sums *BlockSums
	}{{"full", nil}, {"summed", &s}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				for pos := 0; pos < len(buf); {
					bt, err := ParseSummed(buf[pos:], bc.sums)
					if err != nil {
						b.Fatal(err)
					}
					pos += len(bt)
				}
			}
		})
	}
}

// BenchmarkBlockSumsFilled: the cost of summing as bytes arrive, per
// 256 KiB piece (the connection's read size), while the piece is cached.
func BenchmarkBlockSumsFilled(b *testing.B) {
	buf := make([]byte, 256<<10)
	var s BlockSums
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		s.Reset(buf)
		s.Filled(len(buf))
	}
}
