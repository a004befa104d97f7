package broker

// Version notes (InitProducerId, key 22):
//   - Served 0-4: v2 is flexible, v3 adds ProducerID/ProducerEpoch (KIP-360
//     epoch bumps), v4 only changes retriable errors. v5 (KIP-890) is not
//     served.
//   - Without a transactional id every call gets a new producer id with
//     epoch 0, as Kafka does for idempotent producers (KIP-360 bumps are
//     therefore answered with a fresh id, which clients accept). Ids are
//     unique across restarts: the replica manager persists the block it
//     hands them from.
//   - With a transactional id the transaction coordinator answers
//     (txn.go): a new id gets a producer id at epoch 0; a known one has its
//     open transaction aborted and its epoch bumped, which fences the older
//     producer (PRODUCER_FENCED on its next request). An empty
//     transactional id is an idempotent producer, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleInitProducerID(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		c, err := s.txnCoordinator()
		if err == nil {
			resp.ProducerID, resp.ProducerEpoch, err = c.InitProducerID(*req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
		}
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	id, err := s.replicas().NextProducerID()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return wire.Response{Msg: resp}, nil
}
