package broker

// Version notes (DescribeTransactions, key 65):
//   - Served 0 (KIP-664), flexible. Each transactional id answers its state
//     (Kafka's names), timeout, start time (-1 when none is open), producer
//     id and epoch and partitions; an unknown one TRANSACTIONAL_ID_NOT_FOUND.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/broker/wire"
)

func handleDescribeTransactions(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	var c *txn.Coordinator
	cerr := error(kerr.TransactionalIDNotFound) // no transaction ever: do not create the topic
	if _, ok := s.meta.Image().Topic(txn.Topic); ok {
		c, cerr = s.txnCoordinator()
	}
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		if cerr != nil {
			st.ErrorCode = errorCode(cerr)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		m, ok := c.Describe(id)
		if !ok {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		describeTxn(&st, &m)
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return wire.Response{Msg: resp}, nil
}

// describeTxn fills a DescribeTransactions entry from m.
func describeTxn(st *kmsg.DescribeTransactionsResponseTransactionState, m *txn.Metadata) {
	st.State = m.State.String()
	st.TimeoutMillis = int32(m.Timeout.Milliseconds())
	st.ProducerID, st.ProducerEpoch = m.ProducerID, m.Epoch
	if m.State == txn.Ongoing || m.State == txn.PrepareCommit || m.State == txn.PrepareAbort {
		st.StartTimestamp = m.Start.UnixMilli()
	}
	for _, tp := range m.Partitions {
		if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == tp.Topic {
			st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		t.Topic, t.Partitions = tp.Topic, []int32{tp.Partition}
		st.Topics = append(st.Topics, t)
	}
}
