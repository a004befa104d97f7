package broker

// Version notes (AddOffsetsToTxn, key 25):
//   - Served 0-3: v1 throttles on quota violation, v2 is identical, v3 is
//     flexible. v4 (KIP-890, TRANSACTION_ABORTABLE) is not served.
//   - Adds the group's partition of __consumer_offsets to the transaction,
//     as Kafka does; TxnOffsetCommit then keeps the group's offsets until
//     the transaction ends.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/broker/wire"
)

func handleAddOffsetsToTxn(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return wire.Response{Msg: resp}, nil
	}
	gc, err := s.coordinator()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	c, err := s.txnCoordinator()
	if err == nil {
		tp := txn.TopicPartition{Topic: group.Topic, Partition: group.PartitionFor(req.Group, gc.Partitions())}
		err = c.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TopicPartition{tp})
	}
	resp.ErrorCode = errorCode(err)
	return wire.Response{Msg: resp}, nil
}
