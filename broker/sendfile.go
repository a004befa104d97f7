package broker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/weir-broker/weir/log/vfs"
)

// fileRegion is a run of stored batches: Size bytes at Pos in File.
type fileRegion struct {
	file      vfs.File
	pos, size int64
	data      []byte // log.Region.Data: the bytes, already read past the page cache
}

// bodyPart is one piece of a fetch body: encoded bytes buf[start:end] or,
// when file is set, a region of a segment file.
type bodyPart struct {
	start, end int
	region     fileRegion
}

// fetchBody is a Fetch response body whose record batches stay in the
// segment files: the fields around them are encoded into buf and the
// batches are written from disk, with sendfile when the writer is a socket
// and the file an OS file (zero copy), or copied otherwise. It implements
// wire.Body.
type fetchBody struct {
	buf      []byte
	parts    []bodyPart
	n        int64
	releases []func() // let go of the read results the regions belong to
	copyOnly bool     // never sendfile (benchmarks of the copy path)
}

// Len implements wire.Body.
func (b *fetchBody) Len() int64 { return b.n }

// Release implements wire.Body.
func (b *fetchBody) Release() {
	for _, r := range b.releases {
		r()
	}
	b.releases = nil
}

// WriteTo implements wire.Body: encoded parts with Write, regions with
// sendfile from their own offset (never the file's shared offset, which
// concurrent fetches of one segment would race on), or with Write when the
// log read them past the page cache already.
func (b *fetchBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, p := range b.parts {
		var n int64
		var err error
		switch {
		case p.region.file == nil:
			var m int
			m, err = w.Write(b.buf[p.start:p.end])
			n = int64(m)
		case p.region.data != nil:
			var m int
			m, err = w.Write(p.region.data)
			n = int64(m)
		default:
			n, err = writeRegion(w, p.region, b.copyOnly)
		}
		total += n
		if err != nil {
			return total, fmt.Errorf("broker: write fetch body: %w", err)
		}
	}
	return total, nil
}

// AppendBody implements wire.BodyAppender: the encoded parts and the
// regions' bytes (read from the file, or the bytes the log already read)
// appended to buf, for a small body sent in one write with its header.
func (b *fetchBody) AppendBody(buf []byte) ([]byte, error) {
	buf = slices.Grow(buf, int(b.n))
	for _, p := range b.parts {
		switch {
		case p.region.file == nil:
			buf = append(buf, b.buf[p.start:p.end]...)
		case p.region.data != nil:
			buf = append(buf, p.region.data...)
		default:
			at := len(buf)
			buf = buf[:at+int(p.region.size)]
			n, err := p.region.file.ReadAt(buf[at:], p.region.pos)
			if n < int(p.region.size) {
				if err == nil || errors.Is(err, io.EOF) {
					err = errShortRegion
				}
				return buf[:at], fmt.Errorf("broker: read fetch region: %w", err)
			}
		}
	}
	return buf, nil
}

// errShortRegion: a segment file ended before the region did (it was
// truncated after the read). The stream cannot continue: the length was
// already sent.
var errShortRegion = errors.New("broker: segment file shorter than fetched region")

// writeRegion sends one region, zero-copy when possible.
func writeRegion(w io.Writer, r fileRegion, copyOnly bool) (int64, error) {
	if !copyOnly {
		if of, ok := r.file.(vfs.OSFiler); ok {
			if sc, ok := w.(syscall.Conn); ok {
				return sendfile(sc, of.OSFile(), r.pos, r.size)
			}
		}
	}
	n, err := io.Copy(w, io.NewSectionReader(r.file, r.pos, r.size))
	if err == nil && n < r.size {
		err = errShortRegion
	}
	return n, err
}

// sendfile copies size bytes at pos of f to the socket with sendfile(2),
// passing an explicit offset so the file's own offset is neither used nor
// moved. It waits for the socket through Go's poller on EAGAIN, so the
// connection's write deadline applies.
func sendfile(dst syscall.Conn, f *os.File, pos, size int64) (int64, error) {
	out, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	in, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var written int64
	var serr error
	cerr := in.Control(func(infd uintptr) {
		off := pos
		werr := out.Write(func(outfd uintptr) bool {
			for written < size {
				n, e := unix.Sendfile(int(outfd), int(infd), &off, int(min(size-written, 1<<30)))
				if n > 0 {
					written += int64(n)
				}
				switch {
				case e == unix.EAGAIN:
					return false // wait until the socket is writable
				case e == unix.EINTR:
				case e != nil:
					serr = os.NewSyscallError("sendfile", e)
					return true
				case n == 0:
					serr = errShortRegion
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	return written, serr
}

// fetchEncoder builds a fetchBody for a FetchResponse (versions 4-12) whose
// partitions' record batches are file regions. The layout is kmsg's, field
// for field; TestFetchBodyMatchesKmsg checks it byte for byte.
type fetchEncoder struct {
	b        *fetchBody
	version  int16
	flexible bool
	mark     int // start of the encoded bytes not yet in a part
}

func newFetchEncoder(version int16) *fetchEncoder {
	return &fetchEncoder{b: &fetchBody{}, version: version, flexible: version >= 12}
}

func (e *fetchEncoder) arrayLen(n int) {
	if e.flexible {
		e.b.buf = kbin.AppendCompactArrayLen(e.b.buf, n)
	} else {
		e.b.buf = kbin.AppendArrayLen(e.b.buf, n)
	}
}

// header encodes the top-level fields up to the topic array's length.
func (e *fetchEncoder) header(resp *kmsg.FetchResponse) {
	e.b.buf = kbin.AppendInt32(e.b.buf, resp.ThrottleMillis)
	if e.version >= 7 {
		e.b.buf = kbin.AppendInt16(e.b.buf, resp.ErrorCode)
		e.b.buf = kbin.AppendInt32(e.b.buf, resp.SessionID)
	}
	e.arrayLen(len(resp.Topics))
}

// topic encodes a topic's name and partition count.
func (e *fetchEncoder) topic(name string, partitions int) {
	if e.flexible {
		e.b.buf = kbin.AppendCompactString(e.b.buf, name)
	} else {
		e.b.buf = kbin.AppendString(e.b.buf, name)
	}
	e.arrayLen(partitions)
}

// endTopic closes a topic (its tag buffer in flexible versions).
func (e *fetchEncoder) endTopic() {
	if e.flexible {
		e.b.buf = append(e.b.buf, 0)
	}
}

// partition encodes one partition; its RecordBatches are p.RecordBatches
// followed by regions (either may be empty). Aborted transactions are
// encoded as given; tagged fields are left at their defaults.
func (e *fetchEncoder) partition(p *kmsg.FetchResponseTopicPartition, regions []fileRegion) {
	buf := e.b.buf
	buf = kbin.AppendInt32(buf, p.Partition)
	buf = kbin.AppendInt16(buf, p.ErrorCode)
	buf = kbin.AppendInt64(buf, p.HighWatermark)
	buf = kbin.AppendInt64(buf, p.LastStableOffset)
	if e.version >= 5 {
		buf = kbin.AppendInt64(buf, p.LogStartOffset)
	}
	at := p.AbortedTransactions
	if e.flexible {
		buf = kbin.AppendCompactNullableArrayLen(buf, len(at), at == nil)
	} else {
		buf = kbin.AppendNullableArrayLen(buf, len(at), at == nil)
	}
	for _, a := range at {
		buf = kbin.AppendInt64(buf, a.ProducerID)
		buf = kbin.AppendInt64(buf, a.FirstOffset)
		if e.flexible {
			buf = append(buf, 0)
		}
	}
	if e.version >= 11 {
		buf = kbin.AppendInt32(buf, p.PreferredReadReplica)
	}
	size := int64(len(p.RecordBatches))
	for _, r := range regions {
		size += r.size
	}
	switch {
	case e.flexible:
		buf = kbin.AppendUvarint(buf, uint32(size+1))
	default:
		buf = kbin.AppendInt32(buf, int32(size))
	}
	buf = append(buf, p.RecordBatches...)
	e.b.buf = buf
	for _, r := range regions {
		if r.size == 0 {
			continue
		}
		e.cut()
		e.b.parts = append(e.b.parts, bodyPart{region: r})
		e.b.n += r.size
	}
	if e.flexible {
		e.b.buf = append(e.b.buf, 0)
	}
}

// cut closes the run of encoded bytes since the last cut into a part.
func (e *fetchEncoder) cut() {
	if end := len(e.b.buf); end > e.mark {
		e.b.parts = append(e.b.parts, bodyPart{start: e.mark, end: end})
		e.b.n += int64(end - e.mark)
		e.mark = end
	}
}

// finish closes the response (top-level tag buffer) and returns the body.
func (e *fetchEncoder) finish() *fetchBody {
	if e.flexible {
		e.b.buf = append(e.b.buf, 0)
	}
	e.cut()
	return e.b
}

// encodeFetchBody encodes resp at version with regions[t][p] appended to the
// records of topic t, partition p (nil entries: none).
func encodeFetchBody(resp *kmsg.FetchResponse, version int16, regions [][][]fileRegion) *fetchBody {
	e := newFetchEncoder(version)
	e.header(resp)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		e.topic(t.Topic, len(t.Partitions))
		for pi := range t.Partitions {
			var rs []fileRegion
			if ti < len(regions) && pi < len(regions[ti]) {
				rs = regions[ti][pi]
			}
			e.partition(&t.Partitions[pi], rs)
		}
		e.endTopic()
	}
	return e.finish()
}
