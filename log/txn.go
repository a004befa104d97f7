package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/weir-broker/weir/log/batch"
)

// Transactions in the log (KIP-98). A transactional producer's batches carry
// the transactional bit; the transaction coordinator ends each transaction
// with a control batch (a marker) on every partition it touched. The log
// tracks, per producer id, the first offset of its open transaction, which
// bounds the last stable offset (LSO), and keeps the list of aborted
// transactions that read_committed fetches return so clients drop their
// records. Kafka keeps the aborted list in a .txnindex file per segment; Weir
// rebuilds it from batch headers when the partition opens or is truncated.
//
// Marker records (Kafka's control record format): the key is
// version int16 (0) and type int16 (0 abort, 1 commit); the value is
// version int16 (0) and coordinatorEpoch int32.

// Marker types, as in the control record key.
const (
	MarkerAbort  int16 = 0
	MarkerCommit int16 = 1
)

// ErrInvalidMarker: a control batch whose first record is not a transaction
// marker Weir understands.
var ErrInvalidMarker = errors.New("log: invalid transaction marker")

// AbortedTxn is one aborted transaction on a partition: the producer, the
// first offset it wrote in the transaction and the offset of its abort
// marker (Kafka's AbortedTxn without the LSO).
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// ControlMarker returns the marker type of a control batch (MarkerAbort or
// MarkerCommit). It wraps ErrInvalidMarker for anything else.
func ControlMarker(b batch.Batch) (int16, error) {
	if !b.IsControl() {
		return 0, fmt.Errorf("%w: not a control batch", ErrInvalidMarker)
	}
	it, err := b.Records(1 << 16)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidMarker, err)
	}
	if !it.Next() {
		return 0, fmt.Errorf("%w: no record (%v)", ErrInvalidMarker, it.Err())
	}
	key := it.Record().Key
	if len(key) < 4 {
		return 0, fmt.Errorf("%w: key of %d bytes", ErrInvalidMarker, len(key))
	}
	t := int16(binary.BigEndian.Uint16(key[2:]))
	if t != MarkerAbort && t != MarkerCommit {
		return 0, fmt.Errorf("%w: type %d", ErrInvalidMarker, t)
	}
	return t, nil
}

// AppendMarker appends to dst a control batch ending producerID's
// transaction: commit or abort, written by the coordinator at
// coordinatorEpoch, with the producer's epoch and timestamp now (ms).
func AppendMarker(dst []byte, producerID int64, epoch int16, commit bool, coordinatorEpoch int32, now int64) ([]byte, error) {
	key := make([]byte, 4)
	if commit {
		binary.BigEndian.PutUint16(key[2:], uint16(MarkerCommit))
	}
	val := make([]byte, 6)
	binary.BigEndian.PutUint32(val[2:], uint32(coordinatorEpoch))
	return batch.AppendBuild(dst, batch.Options{
		Idempotent: true, ProducerID: producerID, ProducerEpoch: epoch, BaseSequence: -1,
		Transactional: true, Control: true,
	}, batch.Record{Key: key, Value: val, Timestamp: now})
}

// txnState is a partition's transaction bookkeeping. The writer updates it
// under the writer lock; readers take mu, which is the last lock in the
// partition's lock order.
type txnState struct {
	mu      sync.Mutex
	ongoing map[int64]int64 // producer id → first offset of its open transaction
	aborted []AbortedTxn    // in LastOffset order
}

// observe notes a batch just written with its final offsets.
func (t *txnState) observe(b batch.Batch) {
	if !b.IsTransactional() || b.ProducerID() < 0 {
		return
	}
	pid := b.ProducerID()
	if !b.IsControl() {
		t.mu.Lock()
		if _, ok := t.ongoing[pid]; !ok {
			if t.ongoing == nil {
				t.ongoing = make(map[int64]int64)
			}
			t.ongoing[pid] = b.BaseOffset()
		}
		t.mu.Unlock()
		return
	}
	typ, err := ControlMarker(b)
	if err != nil {
		return // the producer path never writes such a batch; recovery ignores it
	}
	t.mu.Lock()
	first, ok := t.ongoing[pid]
	delete(t.ongoing, pid)
	if ok && typ == MarkerAbort {
		t.aborted = append(t.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: b.BaseOffset()})
	}
	t.mu.Unlock()
}

// reset forgets everything (before a rebuild).
func (t *txnState) reset() {
	t.mu.Lock()
	t.ongoing, t.aborted = nil, nil
	t.mu.Unlock()
}

// firstUnstable returns the first offset of the oldest open transaction, or
// -1 when none is open.
func (t *txnState) firstUnstable() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := int64(-1)
	for _, off := range t.ongoing {
		if first < 0 || off < first {
			first = off
		}
	}
	return first
}

// abortedIn returns the aborted transactions that overlap [from, to).
func (t *txnState) abortedIn(from, to int64) []AbortedTxn {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, _ := slices.BinarySearchFunc(t.aborted, from, func(a AbortedTxn, off int64) int {
		switch {
		case a.LastOffset < off:
			return -1
		case a.LastOffset > off:
			return 1
		}
		return 0
	})
	var out []AbortedTxn
	for _, a := range t.aborted[i:] {
		if a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// FirstUnstableOffset returns the first offset of the oldest transaction
// still open on this partition, or -1 when none is. The last stable offset
// is the smaller of it and the high watermark.
func (p *Partition) FirstUnstableOffset() int64 { return p.txns.firstUnstable() }

// AbortedTransactions returns the aborted transactions with records in
// [from, to), oldest marker first: what a read_committed fetch of that
// range reports.
func (p *Partition) AbortedTransactions(from, to int64) []AbortedTxn {
	return p.txns.abortedIn(from, to)
}

// rebuildTxns rebuilds the transaction state: from the checkpoint of a
// clean shutdown when clean is set and it matches the log, otherwise from
// the batch headers of the whole log (control batches are read whole to
// learn their type). Writer only.
func (p *Partition) rebuildTxns(clean bool) error {
	p.txns.reset()
	if clean && p.loadTxnCheckpoint() {
		return nil
	}
	l := p.segs.Load()
	hdr := make([]byte, batch.HeaderSize)
	for _, s := range l.segs {
		limit := s.size.Load()
		for pos := int64(0); pos < limit; {
			if n, err := s.log.ReadAt(hdr, pos); n < len(hdr) {
				return fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
			}
			h, ok := parseHeader(hdr)
			if !ok {
				return &CorruptError{Path: s.logPath(), Pos: pos, Offset: -1, Reason: "invalid batch header"}
			}
			bt := batch.Batch(hdr)
			switch {
			case !bt.IsTransactional():
			case bt.IsControl():
				whole := make([]byte, h.size)
				if n, err := s.log.ReadAt(whole, pos); int64(n) < h.size {
					return fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
				}
				p.txns.observe(batch.Batch(whole))
			default:
				p.txns.observe(bt)
			}
			pos += h.size
		}
	}
	return nil
}

// observeTxns feeds every batch of an append (validated, offsets assigned)
// to t, and forgets aborted transactions wholly below the log start offset
// (retention or DeleteRecords removed them) when an abort is added.
func observeTxns(t *txnState, b []byte, logStart int64) {
	for pos := 0; pos < len(b); {
		bt := batch.Batch(b[pos : pos+batchSize(b[pos:])])
		pos += len(bt)
		t.observe(bt)
		if bt.IsControl() {
			t.trimBelow(logStart)
		}
	}
}

// trimBelow drops the aborted transactions whose marker is below start.
func (t *txnState) trimBelow(start int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := 0
	for i < len(t.aborted) && t.aborted[i].LastOffset < start {
		i++
	}
	if i > 0 {
		t.aborted = slices.Delete(t.aborted, 0, i)
	}
}
