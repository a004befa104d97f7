package log

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
	"pgregory.net/rapid"
)

// vfFixture is a partition directory written byte by byte in Kafka's layout,
// so Verify is tested independently of the code that writes real logs.
type vfFixture struct {
	fs    *vfs.Mem
	dir   string
	files map[string][]byte // name → content
}

// vfSegment describes the batches of one segment: record counts per batch.
type vfSegment struct {
	base   int64
	counts []int
}

// newVFFixture builds two segments: base 0 with batches of 3, 2 and 1
// records (offsets 0..5) and base 6 with 2 and 2 (offsets 6..9), with an
// offset and time index entry for every batch.
func newVFFixture(t *testing.T) *vfFixture {
	t.Helper()
	return &vfFixture{fs: vfs.NewMem(), dir: "data/orders-0", files: vfFiles()}
}

// vfFiles returns the fixture's file contents by name.
func vfFiles() map[string][]byte {
	files := map[string][]byte{}
	ts := int64(1000)
	for _, seg := range []vfSegment{{0, []int{3, 2, 1}}, {6, []int{2, 2}}} {
		var logb, idx, tidx []byte
		off := seg.base
		for _, n := range seg.counts {
			recs := make([]batch.Record, n)
			for i := range recs {
				recs[i] = batch.Record{Timestamp: ts, Key: fmt.Appendf(nil, "k%d", off+int64(i)), Value: []byte("v")}
				ts++
			}
			pos := len(logb)
			logb = append(logb, batch.MustBuild(batch.Options{BaseOffset: off, Codec: batch.CodecGzip}, recs...)...)
			last := off + int64(n) - 1
			idx = binary.BigEndian.AppendUint32(idx, uint32(last-seg.base))
			idx = binary.BigEndian.AppendUint32(idx, uint32(pos))
			tidx = binary.BigEndian.AppendUint64(tidx, uint64(ts-1))
			tidx = binary.BigEndian.AppendUint32(tidx, uint32(off-seg.base))
			off = last + 1
		}
		files[fmt.Sprintf("%020d.log", seg.base)] = logb
		files[fmt.Sprintf("%020d.index", seg.base)] = idx
		files[fmt.Sprintf("%020d.timeindex", seg.base)] = tidx
	}
	return files
}

// write stores the fixture's files in its Mem FS.
func (fx *vfFixture) write(t *testing.T) {
	t.Helper()
	if err := fx.fs.MkdirAll(fx.dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range fx.files {
		f, err := fx.fs.Create(filepath.Join(fx.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// batchPos returns the byte position of batch i of the segment file.
func (fx *vfFixture) batchPos(name string, i int) int {
	data, pos := fx.files[name], 0
	for range i {
		n, _ := batch.Size(data[pos:])
		pos += n
	}
	return pos
}

const (
	seg0 = "00000000000000000000.log"
	seg1 = "00000000000000000006.log"
	idx0 = "00000000000000000000.index"
	tix0 = "00000000000000000000.timeindex"
)

func TestVerifyClean(t *testing.T) {
	fx := newVFFixture(t)
	fx.write(t)
	r, err := Verify(fx.fs, fx.dir, VerifyOptions{Records: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("problems in a clean log: %v", r.Problems)
	}
	if len(r.Segments) != 2 || r.Segments[0].Batches != 3 || r.Segments[1].LastOffset != 9 || r.Segments[0].Records != 6 {
		t.Fatalf("segments %+v", r.Segments)
	}
	if r.Segments[0].IndexEntries != 3 || r.Segments[1].TimeIndexEntries != 2 {
		t.Fatalf("index entries %+v", r.Segments)
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	tests := []struct {
		name    string
		opts    VerifyOptions
		damage  func(fx *vfFixture)
		file    string
		pos     func(fx *vfFixture) int64
		offset  int64
		reason  string
		wantMax int // most problems expected (a damage may be seen by several checks)
	}{
		{name: "flipped record byte fails the CRC", damage: func(fx *vfFixture) {
			fx.files[seg0][fx.batchPos(seg0, 1)+batch.HeaderSize+3] ^= 0x40
		}, file: seg0, pos: func(fx *vfFixture) int64 { return int64(fx.batchPos(seg0, 1)) }, offset: 3, reason: "CRC mismatch",
			wantMax: 2},
		{name: "bad magic", damage: func(fx *vfFixture) {
			fx.files[seg1][16] = 1
		}, file: seg1, pos: func(*vfFixture) int64 { return 0 }, offset: 6, reason: "unsupported magic", wantMax: 3},
		{name: "torn tail", damage: func(fx *vfFixture) {
			fx.files[seg1] = fx.files[seg1][:len(fx.files[seg1])-10]
		}, file: seg1, pos: func(fx *vfFixture) int64 { return int64(fx.batchPos(seg1, 1)) }, offset: 8,
			reason: "runs past the end", wantMax: 4},
		{name: "trailing garbage", damage: func(fx *vfFixture) {
			fx.files[seg1] = append(fx.files[seg1], 1, 2, 3)
		}, file: seg1, pos: func(fx *vfFixture) int64 { return int64(len(fx.files[seg1]) - 3) }, offset: -1,
			reason: "trailing bytes", wantMax: 1},
		{name: "impossible length", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint32(fx.files[seg0][fx.batchPos(seg0, 2)+8:], 5)
		}, file: seg0, pos: func(fx *vfFixture) int64 { return int64(fx.batchPos(seg0, 2)) }, offset: 5,
			reason: "invalid batch length", wantMax: 4},
		{name: "offset goes backwards", damage: func(fx *vfFixture) {
			batch.Batch(fx.files[seg0][fx.batchPos(seg0, 2):]).SetBaseOffset(1)
		}, file: seg0, pos: func(fx *vfFixture) int64 { return int64(fx.batchPos(seg0, 2)) }, offset: 1,
			reason: "not above the previous", wantMax: 3},
		{name: "batch below the file's base offset", damage: func(fx *vfFixture) {
			fx.files["00000000000000000007.log"] = fx.files[seg1]
			delete(fx.files, seg1)
		}, file: "00000000000000000007.log", pos: func(*vfFixture) int64 { return 0 }, offset: 6,
			reason: "below the segment's base offset", wantMax: 1},
		{name: "batch runs into the next segment", damage: func(fx *vfFixture) {
			fx.files["00000000000000000005.log"] = fx.files[seg1]
			delete(fx.files, seg1)
			// Move segment 1 to base 5: segment 0's last batch (offset 5) now overlaps it.
		}, file: seg0, pos: func(fx *vfFixture) int64 { return int64(fx.batchPos(seg0, 2)) }, offset: 5,
			reason: "next segment's base", wantMax: 1},
		{name: "index entry between batches", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint32(fx.files[idx0][12:], uint32(fx.batchPos(seg0, 1)+1))
		}, file: idx0, pos: func(*vfFixture) int64 { return 8 }, offset: 4, reason: "not the start of a valid batch", wantMax: 1},
		{name: "index offset outside its batch", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint32(fx.files[idx0][8:], 2) // offset 2 is in batch 0, entry points at batch 1
		}, file: idx0, pos: func(*vfFixture) int64 { return 8 }, offset: 2, reason: "not above entry 0", wantMax: 2},
		{name: "index offset past its batch", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint32(fx.files[idx0][16:], 7) // entry 2 points at the batch holding offset 5 only
		}, file: idx0, pos: func(*vfFixture) int64 { return 16 }, offset: 7, reason: "is not in the batch", wantMax: 1},
		{name: "index not monotonic", damage: func(fx *vfFixture) {
			e := fx.files[idx0]
			copy(e[16:24], e[0:8]) // entry 2 repeats entry 0
		}, file: idx0, pos: func(*vfFixture) int64 { return 16 }, offset: 2, reason: "not above entry 1", wantMax: 1},
		{name: "index partial entry", damage: func(fx *vfFixture) {
			fx.files[idx0] = append(fx.files[idx0], 0, 0, 0)
		}, file: idx0, pos: func(*vfFixture) int64 { return 24 }, offset: -1, reason: "trailing bytes", wantMax: 1},
		{name: "time index goes backwards", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint64(fx.files[tix0][12:], 1)
		}, file: tix0, pos: func(*vfFixture) int64 { return 12 }, offset: 3, reason: "below the entry before it", wantMax: 1},
		{name: "time index past the segment", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint32(fx.files[tix0][32:], 40)
		}, file: tix0, pos: func(*vfFixture) int64 { return 24 }, offset: 40, reason: "outside the segment's batches", wantMax: 1},
		{name: "time index timestamp from the future", damage: func(fx *vfFixture) {
			binary.BigEndian.PutUint64(fx.files[tix0][24:], 1<<50)
		}, file: tix0, pos: func(*vfFixture) int64 { return 24 }, offset: 5, reason: "above every batch's maxTimestamp", wantMax: 1},
		{name: "records that do not decode, with a valid CRC", opts: VerifyOptions{Records: true}, damage: func(fx *vfFixture) {
			b := batch.MustBuild(batch.Options{BaseOffset: 10}, batch.Record{Value: []byte("x")})
			b[batch.HeaderSize] = 0x7f // record length far beyond the section
			b.SetCRC()
			fx.files[seg1] = append(fx.files[seg1], b...)
		}, file: seg1, pos: func(fx *vfFixture) int64 { return int64(fx.batchPos(seg1, 2)) }, offset: 10,
			reason: "malformed records", wantMax: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newVFFixture(t)
			tt.damage(fx)
			fx.write(t)
			r, err := Verify(fx.fs, fx.dir, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) == 0 || len(r.Problems) > tt.wantMax {
				t.Fatalf("%d problems, want 1..%d: %v", len(r.Problems), tt.wantMax, r.Problems)
			}
			p := r.Problems[0]
			want := filepath.Join(fx.dir, tt.file)
			if p.Path != want || p.Pos != tt.pos(fx) || p.Offset != tt.offset || !strings.Contains(p.Reason, tt.reason) {
				t.Fatalf("first problem %v\nwant %s at %d (offset %d): %q", p, want, tt.pos(fx), tt.offset, tt.reason)
			}
		})
	}
}

// TestVerifyRecordsOnlyWhenAsked: record damage under a valid CRC is only
// visible to the deep check.
func TestVerifyRecordsOnlyWhenAsked(t *testing.T) {
	fx := newVFFixture(t)
	b := batch.MustBuild(batch.Options{BaseOffset: 10}, batch.Record{Value: []byte("x")})
	b[batch.HeaderSize] = 0x7f
	b.SetCRC()
	fx.files[seg1] = append(fx.files[seg1], b...)
	fx.write(t)
	r, err := Verify(fx.fs, fx.dir, VerifyOptions{})
	if err != nil || !r.Clean() {
		t.Fatalf("shallow verify: %v %v", err, r.Problems)
	}
}

func TestVerifyNotes(t *testing.T) {
	fx := newVFFixture(t)
	delete(fx.files, idx0)
	fx.files["00000000000000000006.log.cleaned"] = []byte{}
	fx.write(t)
	r, err := Verify(fx.fs, fx.dir, VerifyOptions{})
	if err != nil || !r.Clean() {
		t.Fatalf("%v %v", err, r.Problems)
	}
	if len(r.Notes) != 2 {
		t.Fatalf("notes %q", r.Notes)
	}
}

func TestVerifyMissingDir(t *testing.T) {
	if _, err := Verify(vfs.NewMem(), "nope", VerifyOptions{}); err == nil {
		t.Fatal("no error for a missing directory")
	}
}

// TestVerifyNeverPanics damages the fixture at random (flipped bytes,
// truncations, appended junk, in any file) and checks that Verify reports
// without panicking, and that damage to a .log outside the two fields the
// CRC does not cover is always found.
func TestVerifyNeverPanics(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fx := newVFFixture(t)
		names := []string{seg0, seg1, idx0, tix0, "00000000000000000006.index", "00000000000000000006.timeindex"}
		// One damage per run, so the expectation below stays exact.
		logDamaged := false
		name := rapid.SampledFrom(names).Draw(rt, "file")
		data := fx.files[name]
		isLog := strings.HasSuffix(name, ".log")
		switch rapid.IntRange(0, 2).Draw(rt, "kind") {
		case 0:
			at := rapid.IntRange(0, len(data)-1).Draw(rt, "at")
			logDamaged = isLog && crcCovered(data, at)
			data[at] ^= byte(rapid.IntRange(1, 255).Draw(rt, "mask"))
		case 1:
			data = data[:rapid.IntRange(0, len(data)-1).Draw(rt, "cut")]
			logDamaged = isLog && !endsOnBatch(data)
		case 2:
			data = append(data, rapid.SliceOfN(rapid.Byte(), 1, 30).Draw(rt, "junk")...)
			logDamaged = isLog
		}
		fx.files[name] = data
		fx.write(t)
		r, err := Verify(fx.fs, fx.dir, VerifyOptions{Records: true})
		if err != nil {
			rt.Fatal(err)
		}
		if logDamaged && r.Clean() {
			rt.Fatalf("damage to a log file not reported")
		}
	})
}

// crcCovered reports whether byte at of a segment file lies in a part of a
// batch that the CRC or the header checks cover (everything but baseOffset
// and partitionLeaderEpoch), judging by the undamaged batch boundaries.
func crcCovered(data []byte, at int) bool {
	for pos := 0; pos < len(data); {
		n, err := batch.Size(data[pos:])
		if err != nil || pos+n > len(data) || at < pos {
			return true
		}
		if at < pos+n {
			rel := at - pos
			return !(rel < 8 || (rel >= 12 && rel < 16))
		}
		pos += n
	}
	return true
}

// endsOnBatch reports whether data is a whole number of batches.
func endsOnBatch(data []byte) bool {
	pos := 0
	for pos < len(data) {
		n, err := batch.Size(data[pos:])
		if err != nil || pos+n > len(data) {
			return false
		}
		pos += n
	}
	return true
}

func TestPartitionDirs(t *testing.T) {
	fs := vfs.NewMem()
	for _, d := range []string{"data/orders-0", "data/orders-1", "data/__consumer_offsets-12", "data/not a partition", "data/meta"} {
		if err := fs.MkdirAll(d); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := fs.Create("data/orders-0/00000000000000000000.log")
	f.Close()
	f, _ = fs.Create("data/stray-3") // a file, not a directory
	f.Close()
	tests := []struct {
		dir  string
		want []string
	}{
		{"data", []string{"data/__consumer_offsets-12", "data/orders-0", "data/orders-1"}},
		{"data/orders-0", []string{"data/orders-0"}},
		{"data/orders-1", []string{"data/orders-1"}},
		{"data/meta", nil},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got, err := PartitionDirs(fs, tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVerifyPartitionWrittenLog: a log written by Partition.Append (several
// segments, every codec, dense indexes) verifies clean after Close.
func TestVerifyPartitionWrittenLog(t *testing.T) {
	fs := vfs.NewMem()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 200
	p, err := Open("data/t-0", cfg, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	codecs := []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	var records int64
	for i := range 100 {
		recs := make([]batch.Record, 1+i%4)
		for j := range recs {
			recs[j] = batch.Record{Timestamp: int64(1000 + i), Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "value %d/%d", i, j)}
		}
		records += int64(len(recs))
		b := batch.MustBuild(batch.Options{Codec: codecs[i%len(codecs)]}, recs...)
		if _, err := p.Append(b, AppendOptions{LeaderEpoch: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(fs, "data/t-0", VerifyOptions{Records: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("problems: %v", r.Problems)
	}
	var got int64
	for _, s := range r.Segments {
		got += s.Records
	}
	if len(r.Segments) < 3 || got != records {
		t.Fatalf("%d segments, %d records, want ≥3 and %d", len(r.Segments), got, records)
	}
}

func TestVerifyProducerSnapshots(t *testing.T) {
	s := newProducerStates()
	s.record(psBatch(3, 0, 0, 2, 0))
	good := s.marshal()
	bad := append([]byte{}, good...)
	bad[len(bad)-1] ^= 1
	fx := newVFFixture(t)
	fx.files["00000000000000000006.snapshot"] = good
	fx.files["00000000000000000010.snapshot"] = bad
	fx.write(t)
	r, err := Verify(fx.fs, fx.dir, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 {
		t.Fatalf("problems %v", r.Problems)
	}
	p := r.Problems[0]
	if p.Path != filepath.Join(fx.dir, "00000000000000000010.snapshot") || p.Offset != 10 || !strings.Contains(p.Reason, "CRC") {
		t.Fatalf("problem %v", p)
	}
}

// FuzzVerify: Verify never panics on whatever a segment file, its offset
// index and its time index hold, and a clean report means the log file is
// a whole number of valid batches.
func FuzzVerify(f *testing.F) {
	files := vfFiles()
	f.Add(files[seg0], files[idx0], files[tix0])
	f.Add(files[seg1], []byte{0, 0, 0, 1, 0, 0, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, logData, idx, tidx []byte) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("p-0"); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{seg0: logData, idx0: idx, tix0: tidx} {
			w, err := fs.Create("p-0/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
		r, err := Verify(fs, "p-0", VerifyOptions{Records: true, MaxRecordBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if r.Clean() && !endsOnBatch(logData) {
			t.Fatalf("clean report for a log that is not whole batches")
		}
	})
}
