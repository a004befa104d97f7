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
//   - With a transactional id: transactions do not exist yet, so the answer
//     is TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a non-retriable error that
//     stops a transactional producer at once instead of letting it retry
//     against a coordinator that will never come.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleInitProducerID(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
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
