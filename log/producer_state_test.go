package log

import (
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"pgregory.net/rapid"
)

// psBatch builds a batch of n records for producer pid/epoch starting at seq,
// already placed at offset base.
func psBatch(pid int64, epoch int16, seq int32, n int, base int64) batch.Batch {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: 1000, Value: []byte("v")}
	}
	return batch.MustBuild(batch.Options{BaseOffset: base, Idempotent: true,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs...)
}

// psMarker builds a transaction marker (control batch) for pid/epoch.
func psMarker(pid int64, epoch int16, base int64) batch.Batch {
	return batch.MustBuild(batch.Options{BaseOffset: base, Idempotent: true, ProducerID: pid,
		ProducerEpoch: epoch, BaseSequence: -1, Control: true, Transactional: true},
		batch.Record{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}})
}

// TestProducerStateCheck walks scripted histories (KIP-98 rules, see
// docs/20261124_seams.md) and checks each decision.
func TestProducerStateCheck(t *testing.T) {
	type step struct {
		b       batch.Batch
		wantErr error
		wantDup int64 // first offset of the duplicate, or -1
	}
	ok := func(b batch.Batch) step { return step{b: b, wantDup: -1} }
	dup := func(b batch.Batch, first int64) step { return step{b: b, wantDup: first} }
	bad := func(b batch.Batch, err error) step { return step{b: b, wantErr: err, wantDup: -1} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"no producer id is never checked", []step{
			ok(psBatch(-1, -1, 0, 3, 0)), ok(psBatch(-1, -1, 0, 3, 3)), ok(psBatch(-1, -1, 5, 1, 6)),
		}},
		{"in order", []step{
			ok(psBatch(1, 0, 0, 3, 0)), ok(psBatch(1, 0, 3, 2, 3)), ok(psBatch(1, 0, 5, 1, 5)),
		}},
		{"unknown producer starts anywhere", []step{
			ok(psBatch(1, 4, 77, 3, 0)), ok(psBatch(1, 4, 80, 1, 3)),
		}},
		{"gap is out of order", []step{
			ok(psBatch(1, 0, 0, 3, 0)), bad(psBatch(1, 0, 4, 1, 3), ErrOutOfOrderSequence),
		}},
		{"retry of a cached batch is a duplicate", []step{
			ok(psBatch(1, 0, 0, 3, 10)), ok(psBatch(1, 0, 3, 2, 13)), dup(psBatch(1, 0, 0, 3, 99), 10),
			dup(psBatch(1, 0, 3, 2, 99), 13),
		}},
		{"only five batches are cached", []step{
			ok(psBatch(1, 0, 0, 1, 0)), ok(psBatch(1, 0, 1, 1, 1)), ok(psBatch(1, 0, 2, 1, 2)),
			ok(psBatch(1, 0, 3, 1, 3)), ok(psBatch(1, 0, 4, 1, 4)), ok(psBatch(1, 0, 5, 1, 5)),
			dup(psBatch(1, 0, 1, 1, 99), 1), bad(psBatch(1, 0, 0, 1, 99), ErrOutOfOrderSequence),
		}},
		{"same first sequence, different length is not a duplicate", []step{
			ok(psBatch(1, 0, 0, 3, 0)), bad(psBatch(1, 0, 0, 2, 3), ErrOutOfOrderSequence),
		}},
		{"older epoch is fenced", []step{
			ok(psBatch(1, 2, 0, 1, 0)), bad(psBatch(1, 1, 1, 1, 1), ErrInvalidProducerEpoch),
		}},
		{"epoch bump needs sequence 0 (KIP-360)", []step{
			ok(psBatch(1, 0, 0, 5, 0)), bad(psBatch(1, 1, 5, 1, 5), ErrOutOfOrderSequence),
			ok(psBatch(1, 1, 0, 1, 5)), bad(psBatch(1, 0, 1, 1, 6), ErrInvalidProducerEpoch),
			dup(psBatch(1, 1, 0, 1, 6), 5),
		}},
		{"sequence wraps at MaxInt32", []step{
			ok(psBatch(1, 0, math.MaxInt32-1, 2, 0)), ok(psBatch(1, 0, 0, 2, 2)),
			dup(psBatch(1, 0, math.MaxInt32-1, 2, 9), 0),
		}},
		{"batch crossing the wrap", []step{
			ok(psBatch(1, 0, math.MaxInt32-1, 1, 0)), ok(psBatch(1, 0, math.MaxInt32, 3, 1)),
			ok(psBatch(1, 0, 2, 1, 4)),
		}},
		{"producers are independent", []step{
			ok(psBatch(1, 0, 0, 2, 0)), ok(psBatch(2, 0, 0, 2, 2)), ok(psBatch(1, 0, 2, 1, 4)),
			bad(psBatch(2, 0, 3, 1, 5), ErrOutOfOrderSequence),
		}},
		{"marker with a newer epoch resets the sequence", []step{
			ok(psBatch(1, 0, 0, 2, 0)), ok(psMarker(1, 1, 2)), bad(psBatch(1, 1, 2, 1, 3), ErrOutOfOrderSequence),
			ok(psBatch(1, 1, 0, 1, 3)),
		}},
		{"marker with an older epoch is fenced", []step{
			ok(psBatch(1, 3, 0, 2, 0)), bad(psMarker(1, 2, 2), ErrInvalidProducerEpoch),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newProducerStates()
			for i, st := range tt.steps {
				before := s.marshal()
				got, err := s.check(st.b)
				if string(s.marshal()) != string(before) {
					t.Fatalf("step %d: check changed the state", i)
				}
				switch {
				case st.wantErr != nil:
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: err %v, want %v", i, err, st.wantErr)
					}
				case err != nil:
					t.Fatalf("step %d: unexpected error %v", i, err)
				case st.wantDup >= 0:
					if got == nil || got.firstOffset != st.wantDup {
						t.Fatalf("step %d: duplicate %+v, want first offset %d", i, got, st.wantDup)
					}
				case got != nil:
					t.Fatalf("step %d: unexpected duplicate %+v", i, got)
				default:
					s.record(st.b)
				}
			}
		})
	}
}

// refEvent is one batch the reference model saw appended.
type refEvent struct {
	pid                     int64
	epoch                   int16
	control                 bool
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

// refStates is the naive reference: it keeps the whole history and derives
// every decision from it.
type refStates struct{ events []refEvent }

func (r *refStates) check(b batch.Batch) (first int64, err error) {
	pid := b.ProducerID()
	if pid < 0 {
		return -1, nil
	}
	var mine []refEvent
	epoch := int16(math.MinInt16)
	for _, e := range r.events {
		if e.pid == pid {
			mine = append(mine, e)
			epoch = max(epoch, e.epoch)
		}
	}
	if len(mine) == 0 {
		return -1, nil
	}
	if b.ProducerEpoch() < epoch {
		return -1, ErrInvalidProducerEpoch
	}
	if b.IsControl() {
		return -1, nil
	}
	var cur []refEvent
	for _, e := range mine {
		if e.epoch == epoch && !e.control {
			cur = append(cur, e)
		}
	}
	if len(cur) > 5 {
		cur = cur[len(cur)-5:]
	}
	if b.ProducerEpoch() > epoch || len(cur) == 0 {
		if b.BaseSequence() != 0 {
			return -1, ErrOutOfOrderSequence
		}
		return -1, nil
	}
	last := int32((int64(b.BaseSequence()) + int64(b.LastOffsetDelta())) % (1 << 31))
	for _, e := range cur {
		if e.firstSeq == b.BaseSequence() && e.lastSeq == last {
			return e.firstOffset, nil
		}
	}
	if int64(b.BaseSequence()) != (int64(cur[len(cur)-1].lastSeq)+1)%(1<<31) {
		return -1, ErrOutOfOrderSequence
	}
	return -1, nil
}

func (r *refStates) record(b batch.Batch) {
	if b.ProducerID() < 0 {
		return
	}
	r.events = append(r.events, refEvent{pid: b.ProducerID(), epoch: b.ProducerEpoch(), control: b.IsControl(),
		firstSeq: b.BaseSequence(), lastSeq: b.LastSequence(), firstOffset: b.BaseOffset(), lastOffset: b.LastOffset()})
}

// TestProducerStateMatchesReference runs random produce histories against
// the state and the naive reference, and checks snapshots and clones on the way.
func TestProducerStateMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, ref := newProducerStates(), &refStates{}
		next, curEpoch := map[int64]int32{}, map[int64]int16{}
		leo := int64(0)
		var sent []batch.Batch // accepted data batches, for retries
		for i := range rapid.IntRange(1, 80).Draw(t, "steps") {
			pid := rapid.SampledFrom([]int64{-1, 1, 2, 3}).Draw(t, fmt.Sprint("pid", i))
			// Mostly the producer's current epoch and next sequence, so
			// histories grow long enough to exercise the five-batch cache.
			epoch := curEpoch[pid]
			switch rapid.IntRange(0, 9).Draw(t, fmt.Sprint("epochKind", i)) {
			case 0:
				epoch--
			case 1:
				epoch++
			}
			n := rapid.IntRange(1, 4).Draw(t, fmt.Sprint("n", i))
			var seq int32
			switch k := rapid.IntRange(0, 9).Draw(t, fmt.Sprint("seqKind", i)); {
			case k < 6:
				seq = next[pid]
			case k == 6:
				seq = max(next[pid]-int32(rapid.IntRange(1, 8).Draw(t, fmt.Sprint("back", i))), 0)
			case k < 9:
				seq = rapid.Int32Range(0, 12).Draw(t, fmt.Sprint("seq", i))
			default:
				seq = math.MaxInt32 - rapid.Int32Range(0, 4).Draw(t, fmt.Sprint("high", i))
			}
			var b batch.Batch
			if k := len(sent); k > 0 && rapid.IntRange(0, 3).Draw(t, fmt.Sprint("retry", i)) == 0 {
				// Retry one of the last few accepted batches exactly.
				old := sent[k-1-rapid.IntRange(0, min(k-1, 7)).Draw(t, fmt.Sprint("which", i))]
				b = psBatch(old.ProducerID(), old.ProducerEpoch(), old.BaseSequence(), int(old.RecordCount()), leo)
			} else if pid >= 0 && rapid.IntRange(0, 9).Draw(t, fmt.Sprint("marker", i)) == 0 {
				b = psMarker(pid, epoch, leo)
			} else {
				b = psBatch(pid, epoch, seq, n, leo)
			}
			wantFirst, wantErr := ref.check(b)
			got, err := s.check(b)
			switch {
			case wantErr != nil:
				if !errors.Is(err, wantErr) {
					t.Fatalf("step %d: err %v, want %v", i, err, wantErr)
				}
			case err != nil:
				t.Fatalf("step %d: unexpected error %v", i, err)
			case wantFirst >= 0:
				if got == nil || got.firstOffset != wantFirst {
					t.Fatalf("step %d: duplicate %+v, want first offset %d", i, got, wantFirst)
				}
			case got != nil:
				t.Fatalf("step %d: unexpected duplicate %+v", i, got)
			default:
				s.record(b)
				ref.record(b)
				leo = b.NextOffset()
				if b.ProducerEpoch() > curEpoch[b.ProducerID()] {
					curEpoch[b.ProducerID()] = b.ProducerEpoch()
				}
				if !b.IsControl() {
					next[b.ProducerID()] = nextSequence(b.LastSequence())
					sent = append(sent, b)
				}
			}
			if rapid.IntRange(0, 9).Draw(t, fmt.Sprint("snap", i)) == 0 {
				c := s.clone()
				r, err := unmarshalProducerStates(s.marshal())
				if err != nil {
					t.Fatalf("step %d: snapshot: %v", i, err)
				}
				if string(r.marshal()) != string(c.marshal()) || r.len() != c.len() {
					t.Fatalf("step %d: snapshot round trip differs", i)
				}
				s = r // carry on from the restored state
			}
		}
	})
}

// TestProducerStateRebuild: recording the log's batches in order rebuilds
// the same state, as the log does on open.
func TestProducerStateRebuild(t *testing.T) {
	history := []batch.Batch{psBatch(1, 0, 0, 2, 0), psBatch(2, 0, 9, 1, 2), psMarker(1, 1, 3),
		psBatch(1, 1, 0, 3, 4), psBatch(1, 0, 2, 1, 7) /* stale epoch: ignored */}
	s := newProducerStates()
	for _, b := range history {
		s.record(b)
	}
	e := s.m[1]
	if e.epoch != 1 || len(e.batches) != 1 || e.batches[0].firstOffset != 4 || e.batches[0].lastSeq != 2 {
		t.Fatalf("producer 1: %+v", e)
	}
	if s.len() != 2 {
		t.Fatalf("%d producers", s.len())
	}
}

func TestProducerStateClone(t *testing.T) {
	s := newProducerStates()
	s.record(psBatch(1, 0, 0, 1, 0))
	c := s.clone()
	s.record(psBatch(1, 0, 1, 1, 1))
	if len(c.m[1].batches) != 1 || len(s.m[1].batches) != 2 {
		t.Fatalf("clone shares state: %d vs %d batches", len(c.m[1].batches), len(s.m[1].batches))
	}
}

func TestUnmarshalProducerStatesRejects(t *testing.T) {
	s := newProducerStates()
	s.record(psBatch(5, 1, 0, 3, 0))
	s.record(psBatch(9, 0, 4, 1, 3))
	good := s.marshal()
	fix := func(b []byte) []byte {
		// Recompute the CRC so the test reaches the later checks.
		out := append([]byte{}, b...)
		if len(out) >= snapshotHeaderSize {
			crc := crcOf(out[6:])
			out[2], out[3], out[4], out[5] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
		}
		return out
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", good[:5]},
		{"bad version", append([]byte{0, 9}, good[2:]...)},
		{"flipped byte", func() []byte { b := append([]byte{}, good...); b[len(b)-1] ^= 1; return b }()},
		{"truncated", fix(good[:len(good)-3])},
		{"trailing", fix(append(append([]byte{}, good...), 0))},
		{"huge count", fix(func() []byte { b := append([]byte{}, good...); b[6] = 0x7f; return b }())},
		{"negative count", fix(func() []byte { b := append([]byte{}, good...); b[6] = 0x80; return b }())},
		{"too many batches", fix(func() []byte { b := append([]byte{}, good...); b[snapshotHeaderSize+10] = 6; return b }())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := unmarshalProducerStates(tt.data); !errors.Is(err, ErrCorruptProducerSnapshot) {
				t.Fatalf("err %v", err)
			}
		})
	}
	if _, err := unmarshalProducerStates(newProducerStates().marshal()); err != nil {
		t.Fatalf("empty state: %v", err)
	}
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, snapshotCRCTable) }

// FuzzProducerSnapshot: the snapshot decoder never panics, and whatever it
// accepts re-encodes to the same bytes.
func FuzzProducerSnapshot(f *testing.F) {
	s := newProducerStates()
	f.Add(s.marshal())
	s.record(psBatch(1, 0, 0, 3, 0))
	s.record(psBatch(2, 7, math.MaxInt32, 2, 3))
	f.Add(s.marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := unmarshalProducerStates(data)
		if err != nil {
			return
		}
		if got := st.marshal(); string(got) != string(data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, data)
		}
	})
}
