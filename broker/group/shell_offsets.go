package group

// The offset and group-deletion requests of the shell: records are appended
// to the offsets topic under the group's lock, then applied in memory.

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/log/batch"
)

// Commit is one partition's offset commit.
type Commit struct {
	TopicPartition
	Offset
}

// CommitOffsets handles an OffsetCommit: it validates the member, appends
// the offsets to the offsets topic and, once they are committed, makes them
// visible. It returns one error per commit (nil for the stored ones), or a
// group-level error.
func (c *Coordinator) CommitOffsets(group string, generation int32, memberID, instanceID string, commits []Commit) ([]error, error) {
	if group == "" {
		return nil, kerr.InvalidGroupID
	}
	e, err := c.lookup(group, generation < 0)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, kerr.IllegalGeneration
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.cfg.Now()
	if err := e.g.CheckCommit(generation, memberID, instanceID); err != nil {
		return nil, err
	}
	errs := make([]error, len(commits))
	recs := make([]batch.Record, 0, len(commits))
	for i := range commits {
		if err := e.g.CheckOffsetMetadata(commits[i].Metadata); err != nil {
			errs[i] = err
			continue
		}
		commits[i].CommitTime = now
		recs = append(recs, offsetRecord(group, commits[i].TopicPartition, commits[i].Offset))
	}
	if len(recs) == 0 {
		return errs, nil
	}
	b, err := buildBatch(recs)
	if err == nil {
		err = c.append(group, b)
	}
	for i := range commits {
		switch {
		case errs[i] != nil:
		case err != nil:
			errs[i] = err
		default:
			e.g.Commit(now, memberID, commits[i].TopicPartition, commits[i].Offset)
		}
	}
	return errs, nil
}

// FetchOffsets returns a group's committed offsets for tps, or all of them
// when tps is nil. Partitions without a commit are absent.
func (c *Coordinator) FetchOffsets(group string, tps []TopicPartition) ([]TopicOffset, error) {
	e, err := c.lookup(group, false)
	if err != nil || e == nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if tps == nil {
		return e.g.Offsets(), nil
	}
	out := make([]TopicOffset, 0, len(tps))
	for _, tp := range tps {
		if o, ok := e.g.Offset(tp); ok {
			out = append(out, TopicOffset{TopicPartition: tp, Offset: o})
		}
	}
	return out, nil
}

// DeleteGroup deletes an empty group and its offsets (tombstones).
func (c *Coordinator) DeleteGroup(group string) error {
	e, err := c.lookup(group, false)
	if err != nil {
		return err
	}
	if e == nil {
		return kerr.GroupIDNotFound
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.g.state == Dead:
		return kerr.GroupIDNotFound
	case e.g.state != Empty:
		return kerr.NonEmptyGroup
	}
	if err := c.removeGroupLocked(e, e.g.Offsets()); err != nil {
		return err
	}
	return nil
}

// removeGroupLocked writes tombstones for the offsets and the group, then
// marks it Dead and forgets it. e.mu is held.
func (c *Coordinator) removeGroupLocked(e *entry, offsets []TopicOffset) error {
	now := c.cfg.Now()
	recs := make([]batch.Record, 0, len(offsets)+1)
	for _, o := range offsets {
		recs = append(recs, offsetTombstone(e.g.ID, o.TopicPartition, now))
	}
	recs = append(recs, groupTombstone(e.g.ID, now))
	b, err := buildBatch(recs)
	if err == nil {
		err = c.append(e.g.ID, b)
	}
	if err != nil {
		return err
	}
	e.g.MarkDead(now)
	c.mu.Lock()
	if c.groups[e.g.ID] == e {
		delete(c.groups, e.g.ID)
	}
	c.mu.Unlock()
	return nil
}

// DeleteOffsets handles an OffsetDelete: one error per partition. Offsets
// of topics the group's members subscribe to cannot be deleted
// (GROUP_SUBSCRIBED_TO_TOPIC).
func (c *Coordinator) DeleteOffsets(group string, tps []TopicPartition) ([]error, error) {
	e, err := c.lookup(group, false)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, kerr.GroupIDNotFound
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.g.state == Dead {
		return nil, kerr.GroupIDNotFound
	}
	subscribed, ok := e.g.SubscribedTopics()
	if !ok {
		return nil, kerr.NonEmptyGroup
	}
	now := c.cfg.Now()
	errs := make([]error, len(tps))
	var recs []batch.Record
	var del []TopicPartition
	for i, tp := range tps {
		if subscribed[tp.Topic] {
			errs[i] = kerr.GroupSubscribedToTopic
			continue
		}
		if _, ok := e.g.Offset(tp); ok {
			recs = append(recs, offsetTombstone(group, tp, now))
			del = append(del, tp)
		}
	}
	if len(recs) > 0 {
		b, err := buildBatch(recs)
		if err == nil {
			err = c.append(group, b)
		}
		if err != nil {
			return nil, err
		}
		for _, tp := range del {
			e.g.DeleteOffset(tp)
		}
	}
	return errs, nil
}

// ExpireOffsets deletes (with tombstones) the offsets of empty groups older
// than the retention, and the metadata of empty groups left with nothing.
// It returns how many offsets expired.
func (c *Coordinator) ExpireOffsets() int {
	c.mu.Lock()
	es := make([]*entry, 0, len(c.groups))
	for _, e := range c.groups {
		es = append(es, e)
	}
	c.mu.Unlock()
	n := 0
	for _, e := range es {
		e.mu.Lock()
		now := c.cfg.Now()
		expired := e.g.Expired(now, c.cfg.OffsetsRetention)
		var err error
		if len(expired) > 0 && len(expired) == len(e.g.offsets) && len(e.g.pending) == 0 {
			// Everything goes: the group goes with its offsets.
			offs := make([]TopicOffset, len(expired))
			for i, tp := range expired {
				offs[i] = TopicOffset{TopicPartition: tp}
			}
			err = c.removeGroupLocked(e, offs)
		} else if len(expired) > 0 {
			recs := make([]batch.Record, len(expired))
			for i, tp := range expired {
				recs[i] = offsetTombstone(e.g.ID, tp, now)
			}
			var b []byte
			if b, err = buildBatch(recs); err == nil {
				err = c.append(e.g.ID, b)
			}
			if err == nil {
				for _, tp := range expired {
					e.g.DeleteOffset(tp)
				}
			}
		} else if e.g.Removable() && now.Sub(e.g.stateSince) >= c.cfg.OffsetsRetention {
			err = c.removeGroupLocked(e, nil)
		}
		if err != nil {
			c.cfg.Logger.Warn("expire offsets", "group", e.g.ID, "err", err)
		} else {
			n += len(expired)
		}
		e.mu.Unlock()
	}
	return n
}
