package broker

// Version notes (EndTxn, key 26):
//   - Served 0-3: v1 throttles on quota violation, v2 is identical, v3 is
//     flexible. v4+ (KIP-890) is not served.
//   - The answer comes once the decision is durable in
//     __transaction_state, every marker is written and the transaction is
//     complete; a retry of a completed commit (or abort) succeeds again.
//   - An unknown transactional id is INVALID_PRODUCER_ID_MAPPING; a stale
//     epoch PRODUCER_FENCED; ending a transaction the other way than it
//     ended, or committing with none open, INVALID_TXN_STATE.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleEndTxn(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	c, err := s.txnCoordinator()
	if err == nil {
		err = c.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	}
	resp.ErrorCode = errorCode(err)
	return wire.Response{Msg: resp}, nil
}
