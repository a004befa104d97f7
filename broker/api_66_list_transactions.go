package broker

// Version notes (ListTransactions, key 66):
//   - Served 0 (KIP-664), flexible: filters by state name and producer id
//     (an empty filter matches all). Unknown state names come back in
//     UnknownStateFilters, as Kafka does. v1 (duration filter, KIP-994) and
//     v2 (id pattern) are not served.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/broker/wire"
)

func handleListTransactions(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	known := make(map[string]bool)
	for st := txn.Empty; st <= txn.PrepareEpochFence; st++ {
		known[st.String()] = true
	}
	for _, f := range req.StateFilters {
		if !known[f] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	if _, ok := s.meta.Image().Topic(txn.Topic); !ok {
		return wire.Response{Msg: resp}, nil // no transaction ever: nothing to list
	}
	c, err := s.txnCoordinator()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	for _, m := range c.List() {
		if len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, m.State.String()) {
			continue
		}
		if len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, m.ProducerID) {
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = m.ID, m.ProducerID, m.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return wire.Response{Msg: resp}, nil
}
