package replica

import (
	"fmt"
	"testing"

	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/batch"
)

// TestKIP98ReadCommitted: an open transaction holds the LSO at its first
// offset; read_committed stops there and waits (no stable bytes), while
// read_uncommitted reads to the HW; an abort marker releases the LSO and
// the read reports the aborted transaction.
func TestKIP98ReadCommitted(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, nil)
	if _, err := p.Append(records("plain", 2, batch.Options{}), 1); err != nil {
		t.Fatal(err)
	}
	txn := batch.Options{Idempotent: true, Transactional: true, ProducerID: 9}
	if _, err := p.Append(records("txn", 3, txn), 1); err != nil {
		t.Fatal(err)
	}
	if hw, lso := p.HighWatermark(), p.LastStableOffset(); hw != 5 || lso != 2 {
		t.Fatalf("HW %d LSO %d, want 5 2", hw, lso)
	}
	tests := []struct {
		name           string
		offset         int64
		wantAvailable  bool
		wantLogRegions bool
	}{
		{"below the LSO", 0, true, true},
		{"at the LSO", 2, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n, _ := p.AvailableStableBytes(tc.offset, 100); (n > 0) != tc.wantAvailable {
				t.Fatalf("available %d bytes, want any: %v", n, tc.wantAvailable)
			}
			r, aborted, err := p.ReadCommitted(tc.offset, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if (r.Log != nil) != tc.wantLogRegions || len(aborted) != 0 || r.LastStableOffset != 2 {
				t.Fatalf("read: log %v aborted %v LSO %d", r.Log != nil, aborted, r.LastStableOffset)
			}
		})
	}
	if n, _ := p.AvailableBytes(2, 100, false); n == 0 {
		t.Fatal("read_uncommitted sees nothing past the LSO")
	}
	res, err := p.AppendMarker(9, 0, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstOffset != 5 || p.LastStableOffset() != 6 || p.HighWatermark() != 6 {
		t.Fatalf("marker at %d, LSO %d HW %d", res.FirstOffset, p.LastStableOffset(), p.HighWatermark())
	}
	r, aborted, err := p.ReadCommitted(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if want := []log.AbortedTxn{{ProducerID: 9, FirstOffset: 2, LastOffset: 5}}; fmt.Sprint(aborted) != fmt.Sprint(want) {
		t.Fatalf("aborted %v, want %v", aborted, want)
	}
}
