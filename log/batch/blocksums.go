package batch

import (
	"hash/crc32"
	"sync"
	"unsafe"
)

// Checking a batch's CRC-32C reads every byte of it once more. For a large
// produce request that read comes from main memory: the request was read
// from the socket a while before, megabytes ago, and the CPU's caches hold
// little of it (docs/benchmarks.md: at 1 KiB records the CRC check was a
// fifth of the broker's CPU, at a quarter of the speed it reaches on cached
// bytes). BlockSums moves that read to the moment each piece of the request
// arrives, while its bytes are still in cache: the connection sums each
// SumBlockSize block as it is filled, and a batch's CRC is then assembled
// from the sums of the blocks inside it, reading only its partial first and
// last blocks again.
//
// Assembling works on the CRC register itself (no initial or final
// inversion): running bytes B through register r gives raw(r, B), and
// raw(r, A‖B) = shift(raw(r, A), len B) ⊕ raw(0, B), where shift(r, n) is r
// run through n zero bytes, a linear map. For the fixed block size it is four
// table lookups.

// SumBlockSize is the size of the blocks BlockSums sums.
const SumBlockSize = 4096

// BlockSums holds the CRC-32C register of every SumBlockSize block of a
// buffer, taken as the buffer was filled. It describes the bytes as they
// were when summed: a batch's CRC may be taken from it only if the bytes the
// CRC covers have not changed since (Append changes only baseOffset and
// partitionLeaderEpoch before checking, which the CRC does not cover, and
// rewrites other fields only after). The zero value describes no buffer. Not
// safe for concurrent Filled calls; Checksum may run concurrently with
// other Checksum calls.
type BlockSums struct {
	buf  []byte
	sums []uint32 // raw(0, block i) for the complete blocks summed so far
}

// Reset makes s describe buf, about to be filled from its start; nothing is
// summed yet. Reset(nil) makes s describe nothing.
func (s *BlockSums) Reset(buf []byte) {
	s.buf = buf
	s.sums = s.sums[:0]
}

// Filled sums the blocks completed now that buf[:n] holds its final bytes.
// Call it right after the bytes arrive, while they are in cache.
func (s *BlockSums) Filled(n int) {
	n = min(n, len(s.buf))
	for i := len(s.sums); (i+1)*SumBlockSize <= n; i++ {
		s.sums = append(s.sums, raw(0, s.buf[i*SumBlockSize:(i+1)*SumBlockSize]))
	}
}

// Checksum returns the CRC-32C of b when b is a part of the buffer s
// describes, using the block sums for the blocks wholly inside b; ok is
// false when b is not part of it (b then has to be read in full).
func (s *BlockSums) Checksum(b []byte) (crc uint32, ok bool) {
	if s == nil || len(b) == 0 || len(s.buf) == 0 {
		return 0, false
	}
	// Where b starts in buf, from the two addresses (decoders hand out
	// sub-slices with their capacity cut, so capacities do not tell). Only
	// the difference is used; no pointer is made from it.
	d := uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(s.buf)))
	if d >= uintptr(len(s.buf)) || uintptr(len(b)) > uintptr(len(s.buf))-d {
		return 0, false
	}
	start := int(d)
	end := start + len(b)
	first := (start + SumBlockSize - 1) / SumBlockSize // first block wholly inside b
	pos := min(first*SumBlockSize, end)
	r := raw(^uint32(0), s.buf[start:pos])
	if i := first; i < len(s.sums) && (i+1)*SumBlockSize <= end {
		shift := shiftTables()
		for ; i < len(s.sums) && (i+1)*SumBlockSize <= end; i++ {
			r = shift.apply(r) ^ s.sums[i]
			pos = (i + 1) * SumBlockSize
		}
	}
	return ^raw(r, s.buf[pos:end]), true
}

// raw runs b through the CRC-32C register r (no inversions).
func raw(r uint32, b []byte) uint32 {
	if len(b) == 0 {
		return r
	}
	return ^crc32.Update(^r, castagnoli, b)
}

// blockShift maps a register r to shift(r, SumBlockSize), byte by byte.
type blockShift [4][256]uint32

func (t *blockShift) apply(r uint32) uint32 {
	return t[0][r&0xff] ^ t[1][r>>8&0xff] ^ t[2][r>>16&0xff] ^ t[3][r>>24]
}

// shiftTables builds the tables from the 32 single-bit shifts (the map is
// linear, so each entry is the XOR of the shifts of its bits).
var shiftTables = sync.OnceValue(func() *blockShift {
	zeros := make([]byte, SumBlockSize)
	var bit [32]uint32
	for i := range bit {
		bit[i] = raw(1<<i, zeros)
	}
	t := new(blockShift)
	for k := range t {
		for v := 1; v < 256; v++ {
			var r uint32
			for j := range 8 {
				if v&(1<<j) != 0 {
					r ^= bit[8*k+j]
				}
			}
			t[k][v] = r
		}
	}
	return t
})
