package log

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// TestReadersDuringAppendAndRetention reads while one writer appends and
// retention deletes segments: every read returns whole, valid batches, and
// results stay readable after their segment is deleted.
func TestReadersDuringAppendAndRetention(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionBytes = 8192
	p := openT(t, vfs.NewMem(), cfg, Options{})
	defer closeT(t, p)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range 400 {
			if _, err := p.Append(testBatch(2, int64(i), 60, byte(i)), AppendOptions{}); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				if _, err := p.EnforceRetention(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				off := p.LogStartOffset()
				res, err := p.Read(off, ReadOptions{MaxBytes: 600})
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err != nil {
					t.Error(err)
					return
				}
				var buf bytes.Buffer
				if _, err := res.WriteTo(&buf); err != nil {
					t.Error(err)
				}
				res.Release()
				for d := buf.Bytes(); len(d) > 0; {
					bt, err := batch.Parse(d)
					if err != nil {
						t.Errorf("read at %d: %v", off, err)
						return
					}
					d = d[len(bt):]
				}
			}
		})
	}
	wg.Wait()
	if p.Size() > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("size %d above retention.bytes plus a segment", p.Size())
	}
}

// TestIdempotentAppend checks the producer rules at the partition and that
// the state survives a clean and an unclean restart.
func TestIdempotentAppend(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	r1 := appendT(t, p, idemBatch(7, 0, 0, 3, 1), AppendOptions{})
	appendT(t, p, idemBatch(7, 0, 3, 2, 1), AppendOptions{})
	steps := []struct {
		name    string
		b       []byte
		wantErr error
		wantDup bool
	}{
		{"retry of first batch", idemBatch(7, 0, 0, 3, 1), nil, true},
		{"gap", idemBatch(7, 0, 9, 1, 1), ErrOutOfOrderSequence, false},
		{"next in sequence", nil, nil, false},
	}
	steps[2].b = idemBatch(7, 0, 5, 1, 1) // next in sequence: accepted
	for _, st := range steps {
		res, err := p.Append(st.b, AppendOptions{})
		if !errors.Is(err, st.wantErr) || res.Duplicate != st.wantDup {
			t.Fatalf("%s: res %+v err %v", st.name, res, err)
		}
		if st.wantDup && (res.FirstOffset != r1.FirstOffset || res.LastOffset != r1.LastOffset) {
			t.Fatalf("%s: duplicate reported %d..%d, want %d..%d", st.name, res.FirstOffset, res.LastOffset, r1.FirstOffset, r1.LastOffset)
		}
	}
	leo := p.LogEndOffset()
	closeT(t, p)
	p = openT(t, fs, smallConfig(), Options{})
	if res, err := p.Append(idemBatch(7, 0, 0, 3, 1), AppendOptions{}); err != nil || !res.Duplicate {
		t.Fatalf("after clean restart: %+v %v", res, err)
	}
	abandon(p)
	fs.Crash()
	p = openT(t, fs, smallConfig(), Options{})
	defer closeT(t, p)
	if p.LogEndOffset() != leo {
		t.Fatalf("LEO %d after crash, want %d", p.LogEndOffset(), leo)
	}
	if _, err := p.Append(idemBatch(7, 0, 9, 1, 1), AppendOptions{}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("after crash: gap accepted: %v", err)
	}
	if res, err := p.Append(idemBatch(7, 0, 6, 1, 1), AppendOptions{}); err != nil || res.FirstOffset != leo {
		t.Fatalf("after crash: next sequence: %+v %v", res, err)
	}
}

// TestFollowerRecordsProducers: replicated (KeepOffsets) batches are not
// judged by the sequence rules, but they update the producer state, so the
// replica checks correctly once it becomes leader.
func TestFollowerRecordsProducers(t *testing.T) {
	p := openT(t, vfs.NewMem(), smallConfig(), Options{})
	defer closeT(t, p)
	b := idemBatch(9, 2, 40, 3, 1) // sequence 40 from an unknown epoch-2 producer: fine for a follower
	batch.Batch(b).SetBaseOffset(0)
	if _, err := p.Append(b, AppendOptions{KeepOffsets: true}); err != nil {
		t.Fatalf("follower append: %v", err)
	}
	if res, err := p.Append(idemBatch(9, 2, 40, 3, 1), AppendOptions{}); err != nil || !res.Duplicate || res.FirstOffset != 0 {
		t.Fatalf("retry after leadership: %+v %v", res, err)
	}
	if _, err := p.Append(idemBatch(9, 1, 43, 1, 1), AppendOptions{}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("older epoch after leadership: %v", err)
	}
	if res, err := p.Append(idemBatch(9, 2, 43, 1, 1), AppendOptions{}); err != nil || res.FirstOffset != 3 {
		t.Fatalf("next sequence after leadership: %+v %v", res, err)
	}
}

// TestReadersDuringTruncation: readers racing truncations and group-commit
// appends see errors at worst (the contract says not to read what is being
// truncated), never a data race, a panic or a bad batch.
func TestReadersDuringTruncation(t *testing.T) {
	p := openT(t, vfs.NewMem(), smallConfig(), Options{Fsync: FsyncAlways})
	defer closeT(t, p)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 300 {
			if _, err := p.Append(testBatch(2, 1, 50, byte(i)), AppendOptions{}); err != nil {
				t.Error(err)
				return
			}
			if i%7 == 6 {
				if err := p.Truncate(p.LogEndOffset() - 5); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				res, err := p.Read(p.LogEndOffset()/2, ReadOptions{MaxBytes: 400})
				if err != nil {
					continue
				}
				var buf bytes.Buffer
				_, err = res.WriteTo(&buf)
				res.Release()
				if err != nil {
					continue // bytes truncated under the reader
				}
				for d := buf.Bytes(); len(d) > 0; {
					bt, err := batch.Parse(d)
					if err != nil {
						break // a region cut by a truncation: allowed by the contract
					}
					d = d[len(bt):]
				}
			}
		})
	}
	wg.Wait()
}
