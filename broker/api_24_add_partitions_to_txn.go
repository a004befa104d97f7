package broker

// Version notes (AddPartitionsToTxn, key 24):
//   - Served 0-3: v1 is v0 with throttling on quota violation, v2 is
//     identical, v3 is flexible. v4+ batches transactions for brokers
//     (KIP-890) and is not served.
//   - Every partition must exist: unknown ones answer
//     UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED,
//     and nothing is added, as Kafka does. Internal topics are
//     INVALID_TOPIC_EXCEPTION.
//   - Coordinator errors (fencing, state) are the same for every partition.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/broker/wire"
)

func handleAddPartitionsToTxn(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	img := s.meta.Image()
	codes := make([][]int16, len(req.Topics))
	var tps []txn.TopicPartition
	bad := false
	for i, rt := range req.Topics {
		codes[i] = make([]int16, len(rt.Partitions))
		t, ok := img.Topic(rt.Topic)
		for j, p := range rt.Partitions {
			switch {
			case isInternalTopic(rt.Topic):
				codes[i][j], bad = kerr.InvalidTopicException.Code, true
			case !ok || p < 0 || int(p) >= len(t.Partitions):
				codes[i][j], bad = kerr.UnknownTopicOrPartition.Code, true
			default:
				tps = append(tps, txn.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	var code int16
	if bad {
		code = kerr.OperationNotAttempted.Code
	} else {
		c, err := s.txnCoordinator()
		if err == nil {
			err = c.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, tps)
		}
		code = errorCode(err)
	}
	for i, rt := range req.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for j, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, codes[i][j]
			if sp.ErrorCode == 0 {
				sp.ErrorCode = code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return wire.Response{Msg: resp}, nil
}
