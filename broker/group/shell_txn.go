package group

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/log/batch"
)

// Transactional offset commits (KIP-98, TxnOffsetCommit), as Kafka keeps
// them: the offsets are written at once to the group's partition of the
// offsets topic in a transactional batch (the producer's id and epoch, no
// sequence) and held aside; the transaction's marker on that partition
// makes them the group's offsets (commit) or drops them (abort). Load
// replays the same rule, so offsets of a transaction that committed
// before a crash are not lost, and those of an open one wait for the
// transaction coordinator's decision.

// txnOffset is one offset of an open transaction.
type txnOffset struct {
	group  string
	tp     TopicPartition
	offset Offset
}

// txnOffsets holds the offsets of open transactions by producer id.
type txnOffsets struct {
	mu sync.Mutex
	m  map[int64][]txnOffset
}

// stage holds an offset for producer pid's transaction; a later one for
// the same group and partition replaces it.
func (t *txnOffsets) stage(pid int64, group string, tp TopicPartition, o Offset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[int64][]txnOffset)
	}
	cur := t.m[pid]
	for i := range cur {
		if cur[i].group == group && cur[i].tp == tp {
			cur[i].offset = o
			return
		}
	}
	t.m[pid] = append(cur, txnOffset{group: group, tp: tp, offset: o})
}

// take removes and returns pid's offsets whose group lives in partition
// (all of them when partition is negative).
func (t *txnOffsets) take(pid int64, partition, partitions int32) []txnOffset {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out, keep []txnOffset
	for _, o := range t.m[pid] {
		if partition < 0 || PartitionFor(o.group, partitions) == partition {
			out = append(out, o)
		} else {
			keep = append(keep, o)
		}
	}
	if len(keep) == 0 {
		delete(t.m, pid)
	} else {
		t.m[pid] = keep
	}
	return out
}

// CheckTxnCommit validates a TxnOffsetCommit's member fields as
// OffsetCommit would (a generation of -1 skips the member check, as Kafka
// does for producers that send none).
func (c *Coordinator) CheckTxnCommit(group string, generation int32, memberID, instanceID string) error {
	if group == "" {
		return kerr.InvalidGroupID
	}
	e, err := c.lookup(group, true)
	if err != nil {
		return err
	}
	if generation < 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.g.CheckCommit(generation, memberID, instanceID)
}

// StageTxnOffsets writes a transaction's offsets to the group's partition
// (a transactional batch of producer pid at epoch) and holds them until
// CompleteTxnOffsets.
func (c *Coordinator) StageTxnOffsets(group string, pid int64, epoch int16, commits []Commit) error {
	if len(commits) == 0 {
		return nil
	}
	e, err := c.lookup(group, true)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.cfg.Now()
	recs := make([]batch.Record, 0, len(commits))
	for i := range commits {
		commits[i].CommitTime = now
		recs = append(recs, offsetRecord(group, commits[i].TopicPartition, commits[i].Offset))
	}
	b, err := batch.AppendBuild(nil, batch.Options{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch,
		BaseSequence: -1, Transactional: true}, recs...)
	if err != nil {
		return err
	}
	if err := c.append(group, b); err != nil {
		return err
	}
	for _, cm := range commits {
		c.txn.stage(pid, group, cm.TopicPartition, cm.Offset)
	}
	return nil
}

// CompleteTxnOffsets ends producer pid's transaction on one partition of
// the offsets topic, after its marker was written there: on commit the
// held offsets become the groups' committed offsets, on abort they are
// dropped.
func (c *Coordinator) CompleteTxnOffsets(partition int32, pid int64, commit bool) {
	c.completeTxn(partition, pid, commit, c.cfg.Now())
}

func (c *Coordinator) completeTxn(partition int32, pid int64, commit bool, now time.Time) {
	offs := c.txn.take(pid, partition, c.cfg.Partitions)
	if !commit {
		return
	}
	for _, o := range offs {
		e, err := c.lookup(o.group, true)
		if err != nil || e == nil {
			continue
		}
		e.mu.Lock()
		e.g.Commit(now, "", o.tp, o.offset)
		e.mu.Unlock()
	}
}

// loadMarker applies a transaction marker met while loading partition p.
// A marker that does not decode is skipped.
func (c *Coordinator) loadMarker(p int32, b batch.Batch, now time.Time) {
	it, err := b.Records(1 << 16)
	if err != nil || !it.Next() {
		return
	}
	key := it.Record().Key
	if len(key) < 4 {
		return
	}
	const commitMarker = 1
	c.completeTxn(p, b.ProducerID(), int16(binary.BigEndian.Uint16(key[2:])) == commitMarker, now)
}

// TxnOffsetPending reports whether an open transaction holds an offset of
// group for tp: OffsetFetch with RequireStable (KIP-447) then answers
// UNSTABLE_OFFSET_COMMIT so the member waits for the transaction to end.
func (c *Coordinator) TxnOffsetPending(group string, tp TopicPartition) bool {
	c.txn.mu.Lock()
	defer c.txn.mu.Unlock()
	for _, offs := range c.txn.m {
		for _, o := range offs {
			if o.group == group && o.tp == tp {
				return true
			}
		}
	}
	return false
}
