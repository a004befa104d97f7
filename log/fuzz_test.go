package log

import (
	"bytes"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// FuzzCheckpoint: decoding a checkpoint never panics, and what decodes
// survives a round trip through the encoder.
func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte("0\n1\n42\n"), 1)
	f.Add([]byte("0\n2\n0 0\n3 17\n"), 2)
	f.Add([]byte("0\n5\n1\n"), 1)
	f.Fuzz(func(t *testing.T, data []byte, fields int) {
		if fields != 1 && fields != 2 {
			return
		}
		e, err := decodeCheckpoint(data, fields)
		if err != nil {
			return
		}
		enc := encodeCheckpoint(e, fields == 1)
		again, err := decodeCheckpoint(enc, fields)
		if err != nil || len(again) != len(e) {
			t.Fatalf("re-encoded %q does not decode: %v", enc, err)
		}
		for i := range e {
			if again[i] != e[i] {
				t.Fatalf("entry %d: %v became %v", i, e[i], again[i])
			}
		}
	})
}

// FuzzRecoverSegment: whatever bytes a segment file holds, Open recovers
// without panicking, and every batch it then serves passes its CRC.
func FuzzRecoverSegment(f *testing.F) {
	good := append(testBatch(2, 1, 10, 'a'), testBatch(1, 2, 5, 'b')...)
	f.Add(good, false)
	f.Add(good[:len(good)-3], true)
	f.Add([]byte{0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, data []byte, clean bool) {
		fs := vfs.NewMem()
		fs.MkdirAll("/p/t-0")
		w, _ := fs.Create(fileName("/p/t-0", 0, logSuffix))
		w.WriteAt(data, 0)
		w.Close()
		if clean {
			writeFileAtomic(fs, "/p/t-0", recoveryPointCheckpoint, encodeCheckpoint([][2]int64{{0, 1}}, true))
			writeFileAtomic(fs, "/p/t-0", cleanShutdownMarker, nil)
		}
		p, err := Open("/p/t-0", smallConfig(), Options{FS: fs})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer p.Close()
		for off := p.LogStartOffset(); off < p.LogEndOffset(); {
			res, err := p.Read(off, ReadOptions{MaxBytes: 100})
			if err != nil {
				return // corrupt data is refused, never served
			}
			var buf bytes.Buffer
			res.WriteTo(&buf)
			res.Release()
			if buf.Len() == 0 {
				return
			}
			for d := buf.Bytes(); len(d) > 0; {
				bt, err := batch.Parse(d)
				if err != nil {
					t.Fatalf("served a bad batch: %v", err)
				}
				d = d[len(bt):]
				if bt.NextOffset() <= off {
					t.Fatalf("read at %d made no progress", off)
				}
				off = bt.NextOffset()
			}
		}
	})
}

// FuzzAppend: any bytes given to Append are either appended whole (and read
// back identically) or rejected with the log unchanged; nothing panics.
func FuzzAppend(f *testing.F) {
	good := testBatch(2, 1, 10, 'a')
	f.Add(good, false, int64(0))
	f.Add(append(bytes.Clone(good), good...), true, int64(7))
	f.Add(good[:40], false, int64(0))
	f.Add([]byte{}, false, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, keep bool, appendTime int64) {
		p, err := Open("/p/t-0", smallConfig(), Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		appendT(t, p, testBatch(1, 1, 5, 'z'), AppendOptions{})
		leo, size := p.LogEndOffset(), p.Size()
		in := bytes.Clone(data)
		res, err := p.Append(in, AppendOptions{KeepOffsets: keep, LogAppendTime: appendTime})
		if err != nil {
			if p.LogEndOffset() != leo || p.Size() != size {
				t.Fatalf("rejected append changed the log: %v", err)
			}
			return
		}
		if res.Duplicate {
			return
		}
		if p.Size() != size+int64(len(in)) || p.LogEndOffset() != res.LastOffset+1 {
			t.Fatalf("accepted append: size %d -> %d for %d bytes, LEO %d, result %+v", size, p.Size(), len(in), p.LogEndOffset(), res)
		}
		r, err := p.Read(res.FirstOffset, ReadOptions{MaxBytes: len(in)})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		r.WriteTo(&buf)
		r.Release()
		if !bytes.Equal(buf.Bytes(), in) {
			t.Fatalf("read back %d bytes differ from the %d appended", buf.Len(), len(in))
		}
	})
}
