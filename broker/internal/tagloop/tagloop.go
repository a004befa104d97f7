// Package tagloop tells the request fuzz targets which inputs could make
// kmsg spin, so that they can skip them and look for everything else.
//
// kmsg v1.15.0 (franz-go's pkg/kmsg, the latest release; no fix upstream)
// skips or collects the tagged fields of flexible versions with
//
//	for num := b.Uvarint(); num > 0; num-- { ... }
//
// and keeps counting down after its reader has failed: a tag count near
// 2^32 in a body of a few dozen bytes costs seconds of CPU before the
// request fails to decode. The broker itself is still exposed to such
// requests (docs/20261124_broker_server.md, "Known limits"); this package
// only keeps the fuzzers from reporting that one known finding as a hang.
//
// Where kmsg reads a tag count depends on each message's schema, which kmsg
// does not expose, and this package does not re-implement the codec: it
// asks kmsg. A tag loop can only be long when its count, a uvarint of at
// least 3 bytes (kmsg's reader takes at most 5, the fifth at most 0x0f), is
// larger than the bytes left after it; each tag takes at least 2 bytes, so
// a smaller count ends with the bytes. For each such uvarint, in order,
// Hazard keeps the bytes before it and rewrites it and every later one, with
// the same length and continuation bits, to a count just above the bytes
// left (at least 2^14). kmsg decodes that cheaply and, up to the uvarint,
// along the path of the original bytes. It decodes once more with the
// uvarint's count one higher. If kmsg reads a tag count there, its loop runs
// out of bytes with either count and only spins longer after that, so the
// two decodes are equal: the input is a hazard. If the uvarint's first byte
// belongs to a field, the decodes differ. Earlier uvarints found not to be
// tag counts cannot spin in the later decodes.
//
// Equal decodes also come from bytes that a failing decode never reaches and
// from lengths larger than the bytes left, so some inputs that fail to
// decode anyway are skipped too; inputs that decode, as every real client
// request does, are not. An input is also skipped, to be safe, when a
// rewrite would turn a 5-byte run that kmsg rejects into a valid huge count,
// or when it has more than maxChecks long uvarints.
package tagloop

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// minLen is the shortest uvarint that can count a slow loop: two bytes
	// count at most 16383 tags.
	minLen = 3
	// minCount is the smallest rewritten count: it keeps a tag key that was
	// rewritten unknown (Kafka's tagged fields have small numbers), so the
	// decode takes the same branch as with the original key.
	minCount = 1 << 14
	// maxChecks bounds the decodes per input (two per long uvarint); an
	// input with more long uvarints than that is reported as a hazard.
	maxChecks = 256
)

// Hazard reports whether kmsg could loop on a huge tag count while decoding
// body, the bytes after the request header (and its tag buffer) of a request
// of key at version. It is false for keys kmsg does not know and for versions
// without tagged fields. Its cost is a few kmsg decodes of body.
func Hazard(key, version int16, body []byte) bool {
	probe := kmsg.RequestForKey(key)
	if probe == nil {
		return false
	}
	probe.SetVersion(version)
	if !probe.IsFlexible() {
		return false
	}
	checked := 0
	for p := range body {
		v, n := uvarint(body[p:])
		if n < minLen || uint64(v) <= uint64(len(body)-p-n) {
			continue
		}
		if checked++; checked > maxChecks {
			return true // too many to tell: skip
		}
		// Earlier long uvarints are not tag counts (or we would have
		// returned), so the original bytes before p decode cheaply, along
		// the path they take in body; from p on, capped ones do.
		capped, ok := capFrom(body, p)
		if !ok {
			return true
		}
		// Decoded byte slices alias their input: bump a copy.
		bumped := bytes.Clone(capped)
		count, _ := uvarint(capped[p:])
		putUvarint(bumped[p:p+n], int(count)+1)
		if reflect.DeepEqual(decode(key, version, bumped), decode(key, version, capped)) {
			return true
		}
	}
	return false
}

// capFrom returns a copy of body in which, from position from on, every
// uvarint of at least minLen bytes larger than the bytes after it is
// rewritten, with the same length and continuation bits, to a count just
// above those bytes and at least minCount; ok is false when one (or that
// count plus one) does not fit its length. The scan goes on after each
// rewritten uvarint: one read from inside it counts at most count>>7.
func capFrom(body []byte, from int) (capped []byte, ok bool) {
	capped = bytes.Clone(body)
	for p := from; p < len(capped); p++ {
		v, n := uvarint(capped[p:])
		left := len(capped) - p - n
		if n < minLen || uint64(v) <= uint64(left) {
			continue
		}
		if r := p - (5 - n); n < 5 && r >= 0 && capped[p+n-1] > 0x0f && allHigh(capped[r:p]) {
			// With the bytes before p, these make a 5-byte uvarint whose
			// fifth byte kmsg rejects at once. A small count would make
			// that a huge valid one, and a count that keeps the fifth byte
			// above 0x0f (2^18 or 2^25) is itself slow to loop on.
			return nil, false
		}
		count := max(left+1, minCount)
		if !putUvarint(capped[p:p+n], count+1) {
			return nil, false
		}
		putUvarint(capped[p:p+n], count)
		p += n - 1
	}
	return capped, true
}

// decoded is what one decode produced, comparable with reflect.DeepEqual.
type decoded struct {
	msg kmsg.Request
	err string
}

func decode(key, version int16, body []byte) (d decoded) {
	d.msg = kmsg.RequestForKey(key)
	d.msg.SetVersion(version)
	defer func() {
		if r := recover(); r != nil {
			d.err = fmt.Sprint("panic: ", r)
		}
	}()
	if err := d.msg.ReadFrom(body); err != nil {
		d.err = err.Error()
	}
	return d
}

// uvarint decodes a uvarint as kmsg's reader does (kbin.Uvarint): at most 5
// bytes, the fifth at most 0x0f. n is 0 when b holds none.
func uvarint(b []byte) (v uint32, n int) {
	for i := 0; i < 5 && i < len(b); i++ {
		if i == 4 {
			if b[i] > 0x0f {
				return 0, 0
			}
			return v | uint32(b[i])<<28, 5
		}
		v |= uint32(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// allHigh reports whether every byte of b has its continuation bit set.
func allHigh(b []byte) bool {
	for _, c := range b {
		if c < 0x80 {
			return false
		}
	}
	return true
}

// putUvarint writes v into all of dst as a uvarint of exactly len(dst)
// bytes (continuation bits on all but the last), as long as it fits.
func putUvarint(dst []byte, v int) bool {
	last := len(dst) - 1
	if v < 0 || v>>(7*last) >= 0x80 || (last == 4 && v>>28 > 0x0f) {
		return false
	}
	for i := range last {
		dst[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	dst[last] = byte(v)
	return true
}
