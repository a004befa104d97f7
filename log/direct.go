package log

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/weir-broker/weir/log/vfs"
)

// directHandle is a segment's log file opened for direct I/O; f is nil
// when the file system refused (tmpfs, or no DirectOpener), so the attempt
// is made once per segment.
type directHandle struct{ f vfs.File }

// directFile returns the segment's log file opened for direct I/O, opening
// it on first use, or nil when the file system cannot. The caller holds a
// reference to the segment; the handle is closed with the segment's files.
func (s *segment) directFile() vfs.File {
	if d := s.direct.Load(); d != nil {
		return d.f
	}
	d := &directHandle{}
	if o, ok := s.fs.(vfs.DirectOpener); ok {
		if f, err := o.OpenDirect(s.logPath()); err == nil {
			d.f = f
		}
	}
	if !s.direct.CompareAndSwap(nil, d) {
		if d.f != nil {
			_ = d.f.Close()
		}
		return s.direct.Load().f
	}
	return d.f
}

// directChunk is the most a direct copy reads from the device at a time.
const directChunk = 1 << 20

// directBufs holds directChunk-byte buffers aligned to vfs.DirectAlignment.
var directBufs = sync.Pool{New: func() any {
	raw := make([]byte, directChunk+vfs.DirectAlignment)
	skip := (vfs.DirectAlignment - int(uintptr(unsafe.Pointer(&raw[0]))%vfs.DirectAlignment)) % vfs.DirectAlignment
	b := raw[skip : skip+directChunk : skip+directChunk]
	return &b
}}

// CopyDirect copies the region to w: through Direct in aligned chunks when
// it is set, otherwise (or when the device refuses the direct read) through
// File and the page cache. To overlap the device reads of several regions
// with writing, use a DirectReader.
func (r Region) CopyDirect(w io.Writer) (int64, error) {
	d := NewDirectReader([]Region{r})
	defer d.Close()
	return d.Copy(w, r)
}

// DirectReader reads the Direct regions of a response ahead of the writer
// on its own goroutine, a chunk or two ahead, so that the device read of
// the next chunk overlaps the writing of the current one. Copy must be
// called for the regions in the order they were given; Close lets go of
// the goroutine and its buffers and must always be called.
type DirectReader struct {
	chunks chan directRead
	stop   chan struct{}
	done   chan struct{}
}

// directRead is one chunk read ahead: data (in buf) of the region at
// position pos, or err, or fallback when the device refused direct reads
// from pos on.
type directRead struct {
	buf      *[]byte
	data     []byte
	pos      int64
	fallback bool
	err      error
}

// NewDirectReader starts reading the regions that have Direct set.
func NewDirectReader(regions []Region) *DirectReader {
	d := &DirectReader{chunks: make(chan directRead, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run(regions)
	return d
}

func (d *DirectReader) run(regions []Region) {
	defer close(d.done)
	defer close(d.chunks)
	const align = vfs.DirectAlignment
	for _, r := range regions {
		if r.Direct == nil {
			continue
		}
		for done := int64(0); done < r.Size; {
			at := r.Pos + done
			start := at &^ (align - 1)
			skip := at - start
			bp := directBufs.Get().(*[]byte)
			buf := *bp
			n := min(int64(len(buf)), (skip+r.Size-done+align-1)&^(align-1))
			m, err := r.Direct.ReadAt(buf[:n], start)
			got := min(int64(m)-skip, r.Size-done)
			c := directRead{buf: bp, pos: at}
			switch {
			case got > 0:
				c.data = buf[skip : skip+got]
			case err == nil || errors.Is(err, io.EOF):
				c.err = fmt.Errorf("log: read %s at %d: %w", r.File.Name(), at, io.ErrUnexpectedEOF)
			default:
				c.fallback = true // refused: the writer reads the rest through the cache
			}
			select {
			case d.chunks <- c:
			case <-d.stop:
				directBufs.Put(bp)
				return
			}
			if c.data == nil {
				break
			}
			done += got
		}
	}
}

// Copy writes region r, the next of the regions given to NewDirectReader,
// to w.
func (d *DirectReader) Copy(w io.Writer, r Region) (int64, error) {
	if r.Direct == nil {
		return r.copyBuffered(w, 0)
	}
	var done int64
	for done < r.Size {
		c, ok := <-d.chunks
		if !ok {
			return done, fmt.Errorf("log: direct read of %s: regions copied out of order", r.File.Name())
		}
		if c.data == nil {
			directBufs.Put(c.buf)
			if c.fallback {
				return r.copyBuffered(w, done)
			}
			return done, c.err
		}
		k, err := w.Write(c.data)
		directBufs.Put(c.buf)
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Close stops reading ahead and returns the buffers read but not written.
func (d *DirectReader) Close() {
	close(d.stop)
	for c := range d.chunks {
		directBufs.Put(c.buf)
	}
	<-d.done
}

// copyBuffered copies the region from done on through File.
func (r Region) copyBuffered(w io.Writer, done int64) (int64, error) {
	n, err := io.Copy(w, io.NewSectionReader(r.File, r.Pos+done, r.Size-done))
	if err == nil && n < r.Size-done {
		err = fmt.Errorf("log: read %s at %d: %w", r.File.Name(), r.Pos+done+n, io.ErrUnexpectedEOF)
	}
	return done + n, err
}
