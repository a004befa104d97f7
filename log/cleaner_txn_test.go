package log

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
	"pgregory.net/rapid"
)

// Compaction and transactions (KIP-98): records of aborted transactions
// never supersede committed ones, and nothing at or past the first
// unstable offset is cleaned.

// ctAppend appends one batch of "k=v" records and returns its first offset.
func ctAppend(t fataler, p *Partition, o batch.Options, kvs ...string) int64 {
	t.Helper()
	res, err := p.Append(batch.MustBuild(o, clRecs(1000, kvs...)...), AppendOptions{})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res.FirstOffset
}

// ctTxn is the options of producer pid's transactional batches.
func ctTxn(pid int64, seq int32) batch.Options {
	return batch.Options{Idempotent: true, Transactional: true, ProducerID: pid, BaseSequence: seq}
}

// ctEnd writes producer pid's commit or abort marker.
func ctEnd(t fataler, p *Partition, pid int64, commit bool) {
	t.Helper()
	b, err := AppendMarker(nil, pid, 0, commit, 0, 0)
	if err != nil {
		t.Fatalf("AppendMarker: %v", err)
	}
	if _, err := p.Append(b, AppendOptions{}); err != nil {
		t.Fatalf("Append marker: %v", err)
	}
}

// ctFill appends filler records (3 keys "f-0".."f-2" that overwrite each other, so
// compaction has work) until the partition has segs segments.
func ctFill(t fataler, p *Partition, segs int) {
	t.Helper()
	for i := 0; len(p.segs.Load().segs) < segs; i++ {
		ctAppend(t, p, batch.Options{}, fmt.Sprintf("f-%d=filler-value-%04d", i%3, i))
	}
}

// ctCommitted reads the partition with read_committed semantics (records
// of batches in an aborted transaction's range are skipped) and returns
// the newest value and offset of every key.
func ctCommitted(t fataler, p *Partition) map[string]clRead {
	t.Helper()
	aborted := p.AbortedTransactions(0, p.LogEndOffset())
	inAborted := func(b batch.Batch) bool { // a plain scan, not the cleaner's abortedSet
		for _, a := range aborted {
			if b.IsTransactional() && a.ProducerID == b.ProducerID() && a.FirstOffset <= b.BaseOffset() && b.BaseOffset() < a.LastOffset {
				return true
			}
		}
		return false
	}
	out := map[string]clRead{}
	for off := p.LogStartOffset(); off < p.LogEndOffset(); {
		res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 16})
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		var buf bytes.Buffer
		_, err = res.WriteTo(&buf)
		res.Release()
		if err != nil || buf.Len() == 0 {
			t.Fatalf("Read(%d): %d bytes, %v", off, buf.Len(), err)
		}
		for data := buf.Bytes(); len(data) > 0; {
			b, err := batch.Parse(data)
			if err != nil {
				t.Fatalf("Read(%d): bad batch: %v", off, err)
			}
			data, off = data[len(b):], b.NextOffset()
			if b.IsControl() || inAborted(b) {
				continue
			}
			it, err := b.Records(1 << 20)
			if err != nil {
				t.Fatalf("records: %v", err)
			}
			for it.Next() {
				if r := it.Record(); r.Key != nil {
					out[string(r.Key)] = clRead{r.Offset, bytes.Clone(r.Key), bytes.Clone(r.Value)}
				}
			}
			if err := it.Err(); err != nil {
				t.Fatalf("records: %v", err)
			}
		}
	}
	return out
}

// ctAbortedSetup writes k=v1, then a transaction of producer 7 that writes
// k=v2 and aborts, then one of producer 8 that overwrites c=c1 with c=c2
// and commits, then filler until the log has segs segments.
func ctAbortedSetup(t fataler, p *Partition, segs int) {
	t.Helper()
	ctAppend(t, p, batch.Options{}, "k=v1", "c=c1")
	ctFill(t, p, 2)
	ctAppend(t, p, ctTxn(7, 0), "k=v2")
	ctAppend(t, p, ctTxn(8, 0), "c=c2")
	ctAppend(t, p, ctTxn(7, 1), "k=v2b")
	ctEnd(t, p, 7, false)
	ctEnd(t, p, 8, true)
	ctFill(t, p, segs)
}

// ctCheckKC checks the committed values of k and c.
func ctCheckKC(t fataler, p *Partition, stage string) {
	t.Helper()
	got := ctCommitted(t, p)
	if v := got["k"].value; string(v) != "v1" {
		t.Fatalf("%s: committed value of k is %q, want v1", stage, v)
	}
	if v := got["c"].value; string(v) != "c2" {
		t.Fatalf("%s: committed value of c is %q, want c2", stage, v)
	}
}

// TestCompactAbortedTxn: an aborted transaction's newer value of a key does
// not make compaction drop the committed one; its records go; a committed
// transaction's value supersedes as any other; reopens agree.
func TestCompactAbortedTxn(t *testing.T) {
	fs := vfs.NewMem()
	p := clOpen(t, fs, clConfig(), 10_000)
	ctAbortedSetup(t, p, 6)
	ctCheckKC(t, p, "before")
	res, err := p.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if res.SegmentsCleaned == 0 {
		t.Fatalf("nothing cleaned: %+v", res)
	}
	ctCheckKC(t, p, "compacted")
	// The aborted records are gone, not merely hidden; c=c1 is superseded.
	for _, r := range clReadAll(t, p) {
		if v := string(r.value); v == "v2" || v == "v2b" || v == "c1" {
			t.Fatalf("offset %d: %s=%s survived compaction", r.offset, r.key, v)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := Verify(fs, clDir, VerifyOptions{Records: true}); err != nil || !r.Clean() {
		t.Fatalf("verify: %v %v", err, r.Problems)
	}
	p = clOpen(t, fs, clConfig(), 10_000)
	ctCheckKC(t, p, "reopened")
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	abandonCL(p)
	p = clOpen(t, fs, clConfig(), 10_000)
	defer p.Close()
	ctCheckKC(t, p, "after a crash")
	// The producers' state still rebuilds from the (now empty) batches.
	if _, err := p.Append(batch.MustBuild(ctTxn(7, 2), clRecs(1000, "k=v3")...), AppendOptions{}); err != nil {
		t.Fatalf("producer 7 goes on after compaction: %v", err)
	}
}

// TestCompactAbortedTxnCrashAtEveryStep: the crash harness of
// TestCompactCrashAtEveryStep on a log with an aborted transaction: at
// every step the reopened log keeps the committed value.
func TestCompactAbortedTxnCrashAtEveryStep(t *testing.T) {
	for n := 0; ; n++ {
		fs := vfs.NewMem()
		p := clOpen(t, fs, clConfig(), 10_000)
		ctAbortedSetup(t, p, 5)
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		ops := 0
		fs.SetInjector(func(op vfs.Op, name string) error {
			if ops++; ops > n {
				return errors.New("injected failure")
			}
			return nil
		})
		res, err := p.Compact()
		done := err == nil && ops <= n
		fs.SetInjector(nil)
		fs.Crash()
		abandonCL(p)

		p = clOpen(t, fs, clConfig(), 10_000)
		ctCheckKC(t, p, fmt.Sprintf("step %d", n))
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if r, err := Verify(fs, clDir, VerifyOptions{Records: true}); err != nil || !r.Clean() {
			t.Fatalf("step %d: verify: %v %v", n, err, r.Problems)
		}
		if done {
			if res.SegmentsCleaned == 0 {
				t.Fatalf("the pass cleaned nothing: %+v", res)
			}
			return
		}
		if n > 10_000 {
			t.Fatal("the pass never completes")
		}
	}
}

// TestCompactStopsAtFirstUnstable: records of an open transaction, and
// everything after its first offset, are not compacted; once it aborts, the
// next pass drops its records and the committed value stays.
func TestCompactStopsAtFirstUnstable(t *testing.T) {
	p := clOpen(t, vfs.NewMem(), clConfig(), 10_000)
	defer p.Close()
	ctAppend(t, p, batch.Options{}, "k=v1")
	ctFill(t, p, 3)
	open := ctAppend(t, p, ctTxn(9, 0), "k=v2")
	ctFill(t, p, 6)
	res, err := p.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if res.SegmentsCleaned == 0 || res.CleanedTo > open {
		t.Fatalf("pass %+v: want some cleaning, and none past the open transaction at %d", res, open)
	}
	var sawV1, sawV2 bool
	for _, r := range clReadAll(t, p) {
		sawV1 = sawV1 || string(r.value) == "v1"
		sawV2 = sawV2 || (r.offset == open && string(r.value) == "v2")
	}
	if !sawV1 || !sawV2 {
		t.Fatalf("v1 kept %v, open transaction's v2 kept %v", sawV1, sawV2)
	}
	ctEnd(t, p, 9, false)
	ctFill(t, p, 8)
	if _, err := p.Compact(); err != nil {
		t.Fatal(err)
	}
	if v := ctCommitted(t, p)["k"].value; string(v) != "v1" {
		t.Fatalf("committed k is %q after the abort and a pass, want v1", v)
	}
	for _, r := range clReadAll(t, p) {
		if string(r.value) == "v2" {
			t.Fatalf("aborted v2 at %d survived the pass after the abort", r.offset)
		}
	}
}

// TestPlanCompactionFirstUnstable: the plan stops at the first segment
// that ends past the first unstable offset.
func TestPlanCompactionFirstUnstable(t *testing.T) {
	cfg := clConfig()
	segs := []cleanCandidate{{0, 10, 100, 1}, {10, 20, 100, 1}, {20, 30, 100, 1}}
	tests := []struct {
		firstUnstable int64
		want          int
	}{
		{-1, 3}, {0, 0}, {9, 0}, {10, 1}, {15, 1}, {20, 2}, {30, 3}, {100, 3},
	}
	for _, tt := range tests {
		if got := planCompaction(segs, -1, cfg, 10, tt.firstUnstable); got != tt.want {
			t.Errorf("first unstable %d: plan %d segments, want %d", tt.firstUnstable, got, tt.want)
		}
	}
}

// TestAbortedSetContains: contains agrees with a scan of the list.
func TestAbortedSetContains(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Each producer's transactions in order, not overlapping.
		var list []AbortedTxn
		next := map[int64]int64{}
		for range rapid.IntRange(0, 20).Draw(t, "n") {
			pid := rapid.Int64Range(0, 3).Draw(t, "pid")
			first := next[pid] + rapid.Int64Range(0, 5).Draw(t, "gap")
			last := first + rapid.Int64Range(1, 5).Draw(t, "len")
			next[pid] = last + 1
			list = append(list, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: last})
		}
		slices.SortStableFunc(list, func(a, b AbortedTxn) int { return int(a.LastOffset - b.LastOffset) })
		set := newAbortedSet(list)
		pid := rapid.Int64Range(-1, 3).Draw(t, "batch pid")
		off := rapid.Int64Range(0, 120).Draw(t, "batch offset")
		txn := rapid.Bool().Draw(t, "transactional")
		o := batch.Options{Idempotent: true, ProducerID: pid, Transactional: txn, BaseOffset: off}
		b := batch.Batch(batch.MustBuild(o, batch.Record{Value: []byte("x")}))
		want := false
		for _, a := range list {
			want = want || (txn && pid >= 0 && a.ProducerID == pid && a.FirstOffset <= off && off < a.LastOffset)
		}
		if got := set.contains(b); got != want {
			t.Fatalf("contains(pid %d, offset %d, txn %v) = %v, want %v; list %v", pid, off, txn, got, want, list)
		}
	})
}

// FuzzFilterBatchAborted: no batch and no aborted range makes filterBatch
// panic; what it writes is one batch with the input's offsets, and a batch
// of an aborted transaction keeps no record.
func FuzzFilterBatchAborted(f *testing.F) {
	f.Add([]byte(batch.MustBuild(ctTxn(7, 0), clRecs(1000, "k=v", "k=w")...)), int64(7), int64(0), int64(5))
	f.Add([]byte(batch.MustBuild(ctTxn(7, 0), clRecs(1000, "k=v")...)), int64(8), int64(0), int64(5))
	f.Add([]byte(batch.MustBuild(batch.Options{Codec: batch.CodecGzip}, clRecs(1000, "a=1", "b=")...)), int64(-1), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, pid, first, last int64) {
		b, err := batch.Parse(data)
		if err != nil {
			return
		}
		aborted := newAbortedSet([]AbortedTxn{{ProducerID: pid, FirstOffset: first, LastOffset: last}})
		om := newOffsetMap()
		om.add([]byte("k"), 1)
		out, _, err := filterBatch(nil, b, true, om, aborted, 0, 1<<20, &batch.Iter{})
		if err != nil || len(out) == 0 {
			return
		}
		ob, err := batch.Parse(out)
		if err != nil || len(ob) != len(out) {
			t.Fatalf("output does not parse as one batch: %v", err)
		}
		if ob.BaseOffset() != b.BaseOffset() || ob.LastOffset() != b.LastOffset() {
			t.Fatalf("offsets %d..%d, input %d..%d", ob.BaseOffset(), ob.LastOffset(), b.BaseOffset(), b.LastOffset())
		}
		if aborted.contains(b) && ob.RecordCount() != 0 {
			t.Fatalf("aborted batch kept %d records", ob.RecordCount())
		}
	})
}
