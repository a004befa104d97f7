package group

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/log/batch"
)

// Transactional offset commits (KIP-98, TxnOffsetCommit). The broker keeps
// a transaction's offsets aside until its coordinator ends it; these two
// calls are the group's side: the member check when the offsets arrive, and
// the write when the transaction commits.

// CheckTxnCommit validates a TxnOffsetCommit's member fields as
// OffsetCommit would (a generation of -1 skips the member check, as Kafka
// does for producers that send none). The group is created if it does not
// exist yet.
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

// CommitTxnOffsets writes the offsets of a committed transaction and makes
// them visible, whatever the group's generation is now: the transaction
// coordinator decided, and a marker cannot be refused.
func (c *Coordinator) CommitTxnOffsets(group string, commits []Commit) error {
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
	b, err := buildBatch(recs)
	if err == nil {
		err = c.append(group, b)
	}
	if err != nil {
		return err
	}
	for i := range commits {
		e.g.Commit(now, "", commits[i].TopicPartition, commits[i].Offset)
	}
	return nil
}
