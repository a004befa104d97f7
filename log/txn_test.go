package log

import (
	"errors"
	"fmt"
	"testing"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// txnBatch builds a transactional batch of n records.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: []byte("t")}
	}
	return batch.MustBuild(batch.Options{Idempotent: true, Transactional: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs...)
}

func markerT(t *testing.T, pid int64, epoch int16, commit bool) []byte {
	t.Helper()
	b, err := AppendMarker(nil, pid, epoch, commit, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKIP98LastStableAndAborted: the first unstable offset follows the
// oldest open transaction; aborted transactions are listed by range; both
// are rebuilt when the partition reopens (after a crash too).
func TestKIP98LastStableAndAborted(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	appendT(t, p, testBatch(2, 0, 1, 'a'), AppendOptions{}) // 0-1
	appendT(t, p, txnBatch(1, 0, 0, 3), AppendOptions{})    // 2-4, pid 1 opens
	appendT(t, p, txnBatch(2, 0, 0, 2), AppendOptions{})    // 5-6, pid 2 opens
	if got := p.FirstUnstableOffset(); got != 2 {
		t.Fatalf("first unstable %d, want 2", got)
	}
	appendT(t, p, markerT(t, 1, 0, false), AppendOptions{}) // 7: pid 1 aborts
	if got := p.FirstUnstableOffset(); got != 5 {
		t.Fatalf("first unstable %d after abort, want 5", got)
	}
	appendT(t, p, markerT(t, 2, 0, true), AppendOptions{}) // 8: pid 2 commits
	appendT(t, p, txnBatch(1, 0, 3, 1), AppendOptions{})   // 9: pid 1 opens again
	want := []AbortedTxn{{ProducerID: 1, FirstOffset: 2, LastOffset: 7}}
	check := func(p *Partition, stage string) {
		t.Helper()
		if got := p.FirstUnstableOffset(); got != 9 {
			t.Fatalf("%s: first unstable %d, want 9", stage, got)
		}
		tests := []struct {
			from, to int64
			want     []AbortedTxn
		}{
			{0, 10, want}, {0, 2, nil}, {2, 3, want}, {7, 10, want}, {8, 10, nil},
		}
		for _, tc := range tests {
			if got := p.AbortedTransactions(tc.from, tc.to); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("%s: aborted in [%d, %d) = %v, want %v", stage, tc.from, tc.to, got, tc.want)
			}
		}
	}
	check(p, "live")
	closeT(t, p)
	p = openT(t, fs, smallConfig(), Options{})
	check(p, "reopened")
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	_ = p.Close() // the crashed handles: nothing reaches the files
	p2 := openT(t, fs, smallConfig(), Options{})
	if p2.Recovery().Clean {
		t.Fatal("reopen after a crash was clean")
	}
	check(p2, "after crash")
	closeT(t, p2)
}

// TestKIP98MarkerFencesOldEpoch: a marker with a bumped epoch (the
// coordinator aborting a timed-out transaction) fences the producer's
// older epoch on the partition.
func TestKIP98MarkerFencesOldEpoch(t *testing.T) {
	p := openT(t, vfs.NewMem(), smallConfig(), Options{})
	defer closeT(t, p)
	appendT(t, p, txnBatch(5, 0, 0, 1), AppendOptions{})
	appendT(t, p, markerT(t, 5, 1, false), AppendOptions{})
	if _, err := p.Append(txnBatch(5, 0, 1, 1), AppendOptions{}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("zombie append: %v, want ErrInvalidProducerEpoch", err)
	}
	if _, err := p.Append(markerT(t, 5, 0, true), AppendOptions{}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("stale marker: %v, want ErrInvalidProducerEpoch", err)
	}
	if got := p.FirstUnstableOffset(); got != -1 {
		t.Fatalf("first unstable %d, want -1", got)
	}
}

// TestControlMarkerRejects: only well-formed markers decode.
func TestControlMarkerRejects(t *testing.T) {
	ok, err := AppendMarker(nil, 1, 0, true, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if typ, err := ControlMarker(batch.Batch(ok)); err != nil || typ != MarkerCommit {
		t.Fatalf("commit marker: %d %v", typ, err)
	}
	tests := []struct {
		name string
		b    batch.Batch
	}{
		{"not control", batch.Batch(txnBatch(1, 0, 0, 1))},
		{"short key", batch.MustBuild(batch.Options{Control: true}, batch.Record{Key: []byte{0}})},
		{"unknown type", batch.MustBuild(batch.Options{Control: true}, batch.Record{Key: []byte{0, 0, 0, 9}})},
		{"no record", batch.MustBuild(batch.Options{Control: true})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ControlMarker(tc.b); !errors.Is(err, ErrInvalidMarker) {
				t.Fatalf("err %v, want ErrInvalidMarker", err)
			}
		})
	}
}

// FuzzControlMarker: no batch makes ControlMarker panic, and what it
// accepts is a commit or an abort.
func FuzzControlMarker(f *testing.F) {
	for _, commit := range []bool{true, false} {
		b, err := AppendMarker(nil, 1, 0, commit, 0, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := batch.Parse(data)
		if err != nil {
			return
		}
		typ, err := ControlMarker(b)
		if err == nil && typ != MarkerAbort && typ != MarkerCommit {
			t.Fatalf("type %d accepted", typ)
		}
	})
}

// TestTxnCheckpoint: a clean close saves the transaction state and a clean
// open uses it; a damaged checkpoint is reported and the state rebuilt
// from the log; a partition without transactions writes none.
func TestTxnCheckpoint(t *testing.T) {
	fs := vfs.NewMem()
	p := openT(t, fs, smallConfig(), Options{})
	appendT(t, p, txnBatch(1, 0, 0, 2), AppendOptions{})    // 0-1
	appendT(t, p, markerT(t, 1, 0, false), AppendOptions{}) // 2
	appendT(t, p, txnBatch(3, 0, 0, 1), AppendOptions{})    // 3: stays open
	closeT(t, p)
	path := "/p/t-0/" + txnCheckpointName
	if _, err := fs.Stat(path); err != nil {
		t.Fatalf("no checkpoint after a clean close: %v", err)
	}
	want := "3 [{1 0 2}]"
	state := func(p *Partition) string {
		return fmt.Sprint(p.FirstUnstableOffset(), " ", p.AbortedTransactions(0, 10))
	}
	p = openT(t, fs, smallConfig(), Options{})
	if got := state(p); got != want {
		t.Fatalf("from the checkpoint: %s, want %s", got, want)
	}
	closeT(t, p)
	f, err := fs.OpenReadWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, 10); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	p = openT(t, fs, smallConfig(), Options{})
	if got := state(p); got != want {
		t.Fatalf("after a damaged checkpoint: %s, want %s", got, want)
	}
	if len(p.Recovery().Problems) == 0 {
		t.Fatal("damaged checkpoint not reported")
	}
	closeT(t, p)

	q := openT(t, vfs.NewMem(), smallConfig(), Options{})
	appendT(t, q, testBatch(3, 0, 1, 'x'), AppendOptions{})
	closeT(t, q)
	names, _ := q.fs.List("/p/t-0")
	for _, n := range names {
		if n == txnCheckpointName {
			t.Fatal("checkpoint written for a partition without transactions")
		}
	}
}

// TestTxnAbortedTrimmed: aborted transactions below the log start offset
// are forgotten when the next marker is written.
func TestTxnAbortedTrimmed(t *testing.T) {
	p := openT(t, vfs.NewMem(), smallConfig(), Options{})
	defer closeT(t, p)
	appendT(t, p, txnBatch(1, 0, 0, 2), AppendOptions{})    // 0-1
	appendT(t, p, markerT(t, 1, 0, false), AppendOptions{}) // 2
	if _, err := p.DeleteRecordsBefore(3); err != nil {
		t.Fatal(err)
	}
	appendT(t, p, txnBatch(2, 0, 0, 1), AppendOptions{})    // 3
	appendT(t, p, markerT(t, 2, 0, false), AppendOptions{}) // 4
	if got := fmt.Sprint(p.AbortedTransactions(0, 10)); got != "[{2 3 4}]" {
		t.Fatalf("aborted %s, want only producer 2's", got)
	}
}
