package broker

// Version notes (TxnOffsetCommit, key 28):
//   - Served 0-3: v2 adds LeaderEpoch, v3 is flexible and adds the
//     member's Generation, MemberID and InstanceID (KIP-447), checked as
//     OffsetCommit checks them. v4+ (KIP-890) is not served.
//   - The group's offsets partition must be in the transaction
//     (AddOffsetsToTxn first), else INVALID_TXN_STATE. The offsets are
//     written at once in a transactional batch and become the group's
//     when the transaction's marker commits them; an abort drops them
//     (broker/group/shell_txn.go).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/broker/wire"
)

func handleTxnOffsetCommit(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	err := s.txnOffsetCommit(req)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Response{Msg: resp}, nil
}

// txnOffsetCommit checks a TxnOffsetCommit and keeps its offsets for the
// end of the transaction.
func (s *Server) txnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) error {
	gc, err := s.coordinator()
	if err != nil {
		return err
	}
	c, err := s.txnCoordinator()
	if err != nil {
		return err
	}
	gen, member, instance := int32(-1), "", ""
	if req.Version >= 3 {
		gen, member = req.Generation, req.MemberID
		if req.InstanceID != nil {
			instance = *req.InstanceID
		}
	}
	if err := gc.CheckTxnCommit(req.Group, gen, member, instance); err != nil {
		return err
	}
	var commits []group.Commit
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			o := group.Offset{Offset: rp.Offset, LeaderEpoch: -1}
			if req.Version >= 2 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			commits = append(commits, group.Commit{TopicPartition: group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, Offset: o})
		}
	}
	tp := txn.TopicPartition{Topic: group.Topic, Partition: group.PartitionFor(req.Group, gc.Partitions())}
	return c.Verify(req.TransactionalID, req.ProducerID, req.ProducerEpoch, tp, func() error {
		return gc.StageTxnOffsets(req.Group, req.ProducerID, req.ProducerEpoch, commits)
	})
}
