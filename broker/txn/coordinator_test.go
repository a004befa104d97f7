package txn

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/log/batch"
)

// memStore is an in-memory Store.
type memStore struct {
	mu    sync.Mutex
	parts map[int32][][]byte
	fail  error
}

func (s *memStore) Append(p int32, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.parts == nil {
		s.parts = make(map[int32][][]byte)
	}
	s.parts[p] = append(s.parts[p], append([]byte(nil), b...))
	return nil
}

func (s *memStore) Scan(p int32, fn func(batch.Batch) error) error {
	s.mu.Lock()
	bs := s.parts[p]
	s.mu.Unlock()
	for _, b := range bs {
		if err := fn(batch.Batch(b)); err != nil {
			return err
		}
	}
	return nil
}

// marker is one WriteMarkers call.
type marker struct {
	pid    int64
	epoch  int16
	commit bool
	n      int
}

type memMarkers struct {
	mu   sync.Mutex
	got  []marker
	fail error
}

func (m *memMarkers) WriteMarkers(pid int64, epoch int16, commit bool, tps []TopicPartition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.got = append(m.got, marker{pid, epoch, commit, len(tps)})
	return nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestCoordinator(t *testing.T, store *memStore, mk *memMarkers, clk *clock) *Coordinator {
	t.Helper()
	var next int64
	c := NewCoordinator(store, mk, Config{Partitions: 3, Now: clk.now, NewProducerID: func() (int64, error) { next++; return 1000 + next, nil }})
	if err := c.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCoordinatorLifecycle: init, add, commit; a second init fences; the
// state survives a reload.
func TestCoordinatorLifecycle(t *testing.T) {
	store, mk, clk := &memStore{}, &memMarkers{}, &clock{t: t0}
	c := newTestCoordinator(t, store, mk, clk)
	pid, epoch, err := c.InitProducerID("app", 60000, -1, -1)
	if err != nil || epoch != 0 {
		t.Fatalf("init: %d %d %v", pid, epoch, err)
	}
	tp := TopicPartition{"t", 0}
	if err := c.Verify("app", pid, epoch, tp, nil); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("write before AddPartitions: %v", err)
	}
	if err := c.AddPartitions("app", pid, epoch, []TopicPartition{tp}); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify("app", pid, epoch, tp, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.EndTxn("app", pid, epoch, true); err != nil {
		t.Fatal(err)
	}
	if err := c.EndTxn("app", pid, epoch, true); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	if len(mk.got) != 1 || mk.got[0] != (marker{pid, 0, true, 1}) {
		t.Fatalf("markers %v", mk.got)
	}
	pid2, epoch2, err := c.InitProducerID("app", 60000, -1, -1)
	if err != nil || pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: %d %d %v", pid2, epoch2, err)
	}
	if err := c.AddPartitions("app", pid, epoch, []TopicPartition{tp}); !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("zombie add: %v", err)
	}
	_ = c.Close()
	c2 := newTestCoordinator(t, store, &memMarkers{}, clk)
	m, ok := c2.Describe("app")
	if !ok || m.ProducerID != pid || m.Epoch != 1 || m.State != Empty || m.Timeout != time.Minute {
		t.Fatalf("reloaded: %+v %v", m, ok)
	}
}

// TestCoordinatorRecovery: after a restart, Prepare* transactions are
// completed the way they were decided and Ongoing ones aborted with a
// bumped epoch; none stays open.
func TestCoordinatorRecovery(t *testing.T) {
	tests := []struct {
		name       string
		state      State
		wantCommit bool
		wantEpoch  int16
		wantState  State
	}{
		{"PrepareCommit completes", PrepareCommit, true, 3, CompleteCommit},
		{"PrepareAbort completes", PrepareAbort, false, 3, CompleteAbort},
		{"Ongoing is aborted", Ongoing, false, 4, CompleteAbort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &memStore{}
			m := meta(tc.state)
			b, err := buildBatch(&m, t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Append(PartitionFor(m.ID, 3), b); err != nil {
				t.Fatal(err)
			}
			mk := &memMarkers{}
			c := newTestCoordinator(t, store, mk, &clock{t: t0})
			if len(mk.got) != 1 || mk.got[0] != (marker{7, tc.wantEpoch, tc.wantCommit, 1}) {
				t.Fatalf("markers %v", mk.got)
			}
			got, _ := c.Describe("x")
			if got.State != tc.wantState || got.Epoch != tc.wantEpoch {
				t.Fatalf("after recovery: %+v", got)
			}
		})
	}
}

// TestCoordinatorAbortsExpired: a transaction open past its timeout is
// aborted with a bumped epoch; its producer gets INVALID_PRODUCER_EPOCH,
// from which it recovers by re-initialising with its id and epoch
// (KIP-360/KIP-588), while a fresh InitProducerId fences it for good.
func TestCoordinatorAbortsExpired(t *testing.T) {
	store, mk, clk := &memStore{}, &memMarkers{}, &clock{t: t0}
	c := newTestCoordinator(t, store, mk, clk)
	pid, epoch, err := c.InitProducerID("slow", 1000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddPartitions("slow", pid, epoch, []TopicPartition{{"t", 0}}); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if n := c.AbortExpired(); n != 0 {
		t.Fatalf("aborted %d at the timeout", n)
	}
	clk.add(time.Millisecond)
	if n := c.AbortExpired(); n != 1 {
		t.Fatalf("aborted %d past the timeout", n)
	}
	if len(mk.got) != 1 || mk.got[0] != (marker{pid, epoch + 1, false, 1}) {
		t.Fatalf("markers %v", mk.got)
	}
	if err := c.EndTxn("slow", pid, epoch, true); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("commit after expiry: %v", err)
	}
	pid2, epoch2, err := c.InitProducerID("slow", 1000, pid, epoch)
	if err != nil || pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("KIP-360 re-init: %d %d %v", pid2, epoch2, err)
	}
	if err := c.AddPartitions("slow", pid, epoch, nil); !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("the old epoch after a re-init: %v, want PRODUCER_FENCED", err)
	}
	if _, _, err := c.InitProducerID("slow", 1000, pid, epoch); !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("second KIP-360 re-init from the old epoch: %v, want PRODUCER_FENCED", err)
	}
}

// TestCoordinatorMarkerFailureRetried: markers that fail leave the
// transaction prepared; the periodic round completes it.
func TestCoordinatorMarkerFailureRetried(t *testing.T) {
	store, mk, clk := &memStore{}, &memMarkers{}, &clock{t: t0}
	c := newTestCoordinator(t, store, mk, clk)
	pid, epoch, _ := c.InitProducerID("m", 60000, -1, -1)
	if err := c.AddPartitions("m", pid, epoch, []TopicPartition{{"t", 0}}); err != nil {
		t.Fatal(err)
	}
	mk.fail = fmt.Errorf("partition offline")
	if err := c.EndTxn("m", pid, epoch, true); err == nil {
		t.Fatal("EndTxn succeeded without markers")
	}
	if err := c.EndTxn("m", pid, epoch, true); !errors.Is(err, kerr.ConcurrentTransactions) {
		t.Fatalf("retry while prepared: %v", err)
	}
	mk.fail = nil
	c.AbortExpired()
	if m, _ := c.Describe("m"); m.State != CompleteCommit {
		t.Fatalf("state %s, want CompleteCommit", m.State)
	}
	if err := c.EndTxn("m", pid, epoch, true); err != nil {
		t.Fatalf("retried commit after completion: %v", err)
	}
}

// TestCoordinatorStartClose: the timer goroutine stops on Close (goleak
// checks) and requests after Close fail.
func TestCoordinatorStartClose(t *testing.T) {
	c := newTestCoordinator(t, &memStore{}, &memMarkers{}, &clock{t: t0})
	c.Start()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.InitProducerID("a", 1000, -1, -1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
