package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/log/batch"
)

// TestTxnOffsetCommitSurvivesCompactionAndReload (KIP-98, KIP-447): group
// g commits offset 5 of in-0, then a transaction commits offset 9 for the
// same group and partition with TxnOffsetCommit and aborts or commits. The
// offsets topic is compacted (small segments, so every record involved is
// in a cleaned segment) and the server restarts on the same data
// directory, which reloads the group coordinator from the log. Compaction
// also runs after a restart, when the cleaner knows the aborted
// transactions only from what the log recovered, and while the
// transaction is open, when it must stop before the transaction's first
// offset. OffsetFetch, with and without RequireStable, must answer 5
// after an abort and 9 after a commit.
func TestTxnOffsetCommitSurvivesCompactionAndReload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		commit bool
		steps  string // e: end the transaction, c: compaction round, r: restart
		want   int64
	}{
		{"abort/compact-restart", false, "ecr", 5},
		{"abort/restart-compact-restart", false, "ercr", 5},
		{"abort/compact-while-open", false, "cecr", 5},
		{"commit/compact-restart", true, "ecr", 9},
		{"commit/restart-compact-restart", true, "ercr", 9},
		{"commit/compact-while-open", true, "cecr", 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			edit := func(c *Config) {
				c.DataDir = dir
				c.Groups.OffsetsTopicPartitions = 1 // every group in partition 0
				c.Maintenance.CleanerInterval, c.Maintenance.RetentionCheckInterval = -1, -1
			}
			s := txnServer(t, edit)
			createTopicRaw(t, dialRaw(t, s), "in", 1, nil)
			alterOffsetsSegmentBytes(t, s, 1024)

			// Another group's commits fill sealed segments before and
			// after g's records and the transaction's marker; their key
			// repeats, so compaction has work there.
			filler := func(n int) {
				for i := range n {
					plainCommit(t, s, "filler", int64(i))
				}
			}
			filler(15)
			plainCommit(t, s, "g", 5)
			tx := newTxnClient(t, s, "tx", 60000)
			tx.commitOffset("g", 9)
			filler(30)
			if n := offsetValues(t, s, "g"); fmt.Sprint(n) != "[5 9]" {
				t.Fatalf("before compaction: offsets of g in the log %v, want [5 9]", n)
			}

			ended := false
			for _, step := range tc.steps {
				switch step {
				case 'e':
					tx.must("end transaction", tx.end(tc.commit))
					ended = true
					filler(30) // the marker into a sealed segment too
				case 'c':
					if n := s.ext.maint.compactRound(); n == 0 {
						t.Fatal("compaction round cleaned nothing")
					}
					want := fmt.Sprint([]int64{tc.want})
					if !ended {
						want = "[5 9]" // nothing at or past the open transaction is cleaned
					}
					// Otherwise one record of g's key is left: the
					// committed one. The aborted batch stays, emptied,
					// for its producer.
					if got := offsetValues(t, s, "g"); fmt.Sprint(got) != want {
						t.Fatalf("after compaction: offsets of g in the log %v, want %s", got, want)
					}
				case 'r':
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = txnServer(t, edit)
				}
				if ended {
					checkFetched(t, s, "g", tc.want, fmt.Sprintf("after step %c", step))
				}
			}
		})
	}
}

// alterOffsetsSegmentBytes sets segment.bytes of the offsets topic through
// IncrementalAlterConfigs, as an operator would.
func alterOffsetsSegmentBytes(t *testing.T, s *Server, n int) {
	t.Helper()
	resps, err := newAdmin(t, s).AlterTopicConfigs(ctxT(t),
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: kadm.StringPtr(fmt.Sprint(n))}}, group.Topic)
	if err == nil {
		err = resps[0].Err
	}
	if err != nil {
		t.Fatalf("alter segment.bytes of %s: %v", group.Topic, err)
	}
}

// plainCommit commits offset of in-0 for group g with OffsetCommit v8
// (generation -1: a simple consumer's commit to an Empty group).
func plainCommit(t *testing.T, s *Server, g string, offset int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, g, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "in"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.LeaderEpoch = offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, s).roundTrip(req, 1).(*kmsg.OffsetCommitResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit %s in-0 %d: %v", g, offset, kerr.ErrorForCode(code))
	}
}

// checkFetched asserts that OffsetFetch v7 of group g's in-0 answers want
// with no error, with and without RequireStable.
func checkFetched(t *testing.T, s *Server, g string, want int64, when string) {
	t.Helper()
	c := dialRaw(t, s)
	for i, stable := range []bool{false, true} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = 7, g, stable
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "in", []int32{0}
		req.Topics = append(req.Topics, rt)
		resp := c.roundTrip(req, int32(i+1)).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("%s: OffsetFetch (RequireStable %v): %v", when, stable, kerr.ErrorForCode(resp.ErrorCode))
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Offset != want {
			t.Fatalf("%s: OffsetFetch (RequireStable %v) of %s in-0: offset %d, %v; want %d",
				when, stable, g, p.Offset, kerr.ErrorForCode(p.ErrorCode), want)
		}
	}
}

// offsetValues returns, in log order, the offsets held by the records of
// group g's in-0 key in partition 0 of the offsets topic, whatever their
// batch (committed, transactional, aborted).
func offsetValues(t *testing.T, s *Server, g string) []int64 {
	t.Helper()
	var out []int64
	var it batch.Iter
	err := offsetsStore{s: s}.Scan(0, func(b batch.Batch) error {
		if b.IsControl() {
			return nil
		}
		if err := it.Reset(b, 1<<20); err != nil {
			return err
		}
		for it.Next() {
			r := it.Record()
			k := kmsg.NewOffsetCommitKey()
			if k.ReadFrom(r.Key) != nil || k.Version > 1 || k.Group != g || k.Topic != "in" || k.Partition != 0 {
				continue
			}
			v := kmsg.NewOffsetCommitValue()
			if err := v.ReadFrom(r.Value); err != nil {
				return fmt.Errorf("offset value at %d: %w", r.Offset, err)
			}
			out = append(out, v.Offset)
		}
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
