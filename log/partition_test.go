package log

import (
	"bytes"
	"errors"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

func TestAppendReadAcrossRolls(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	var want []int64
	for i := range 50 {
		res := appendT(t, p, testBatch(3, int64(1000+i), 50, byte(i)), AppendOptions{LeaderEpoch: 1})
		if res.FirstOffset != int64(3*i) || res.LastOffset != int64(3*i+2) {
			t.Fatalf("append %d: offsets %d..%d", i, res.FirstOffset, res.LastOffset)
		}
		want = append(want, res.FirstOffset)
	}
	if n := len(p.segs.Load().segs); n < 3 {
		t.Fatalf("expected several segments, got %d", n)
	}
	check := func(p *Partition) {
		t.Helper()
		got := readBatches(t, p, 0)
		if len(got) != len(want) {
			t.Fatalf("read %d batches, want %d", len(got), len(want))
		}
		for i, b := range got {
			if b.BaseOffset() != want[i] || b.PartitionLeaderEpoch() != 1 {
				t.Fatalf("batch %d: base %d epoch %d", i, b.BaseOffset(), b.PartitionLeaderEpoch())
			}
		}
		// Every offset, also inside a batch, reads from its batch.
		for off := int64(0); off < p.LogEndOffset(); off++ {
			res, err := p.Read(off, ReadOptions{MaxBytes: 1})
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			var buf bytes.Buffer
			res.WriteTo(&buf)
			res.Release()
			bt, err := batch.Parse(buf.Bytes())
			if err != nil || bt.BaseOffset() > off || bt.LastOffset() < off {
				t.Fatalf("Read(%d): batch %d..%d, err %v", off, bt.BaseOffset(), bt.LastOffset(), err)
			}
		}
	}
	check(p)
	closeT(t, p)
	p = openT(t, fs, smallConfig(), Options{})
	defer closeT(t, p)
	if r := p.Recovery(); !r.Clean || r.SegmentsScanned != 0 {
		t.Fatalf("clean reopen: %+v", r)
	}
	if p.LogEndOffset() != 150 {
		t.Fatalf("LEO after reopen = %d", p.LogEndOffset())
	}
	check(p)
	res := appendT(t, p, testBatch(1, 5000, 10, 'x'), AppendOptions{})
	if res.FirstOffset != 150 {
		t.Fatalf("append after reopen at %d", res.FirstOffset)
	}
}

func TestReadBounds(t *testing.T) {
	p := openT(t, vfs.NewMem(), smallConfig(), Options{})
	defer closeT(t, p)
	for i := range 5 {
		appendT(t, p, testBatch(2, int64(i), 10, 'a'), AppendOptions{})
	}
	tests := []struct {
		name      string
		offset    int64
		opts      ReadOptions
		wantErr   error
		wantBytes bool
	}{
		{"below start", -1, ReadOptions{}, ErrOffsetOutOfRange, false},
		{"past end", 11, ReadOptions{}, ErrOffsetOutOfRange, false},
		{"at end", 10, ReadOptions{}, nil, false},
		{"first", 0, ReadOptions{MaxBytes: 1 << 20}, nil, true},
		{"mid batch", 3, ReadOptions{}, nil, true},
		{"max offset stops before", 4, ReadOptions{MaxOffset: 4}, nil, false},
		{"max offset inside batch", 2, ReadOptions{MaxOffset: 3}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Read(tt.offset, tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer res.Release()
			if (res.Bytes > 0) != tt.wantBytes {
				t.Fatalf("bytes = %d, want some: %v", res.Bytes, tt.wantBytes)
			}
		})
	}
	res, err := p.Read(0, ReadOptions{MaxBytes: 1 << 20, MaxOffset: 6})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res.WriteTo(&buf)
	res.Release()
	var last int64
	for data := buf.Bytes(); len(data) > 0; {
		bt, err := batch.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		last = bt.LastOffset()
		data = data[len(bt):]
	}
	if last != 5 {
		t.Fatalf("MaxOffset 6: last offset read %d, want 5", last)
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	good := testBatch(2, 1, 10, 'g')
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrEmptyAppend},
		{"crc", flipped, batch.ErrCorrupt},
		{"short", good[:30], batch.ErrCorrupt},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3), batch.ErrCorrupt},
		{"good then bad", append(bytes.Clone(good), flipped...), batch.ErrCorrupt},
	}
	p := openT(t, vfs.NewMem(), smallConfig(), Options{})
	defer closeT(t, p)
	appendT(t, p, testBatch(1, 0, 1, 'z'), AppendOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Append(tt.in, AppendOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if p.LogEndOffset() != 1 || p.Size() != int64(len(testBatch(1, 0, 1, 'z'))) {
				t.Fatalf("log changed: LEO %d size %d", p.LogEndOffset(), p.Size())
			}
		})
	}
}
