package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInitProducerID: ids are distinct, also across a restart on the same
// data directory; a transactional id keeps its producer id and gets the
// next epoch after the restart (the coordinator's state is durable).
func TestInitProducerID(t *testing.T) {
	dir := t.TempDir()
	seen := map[int64]bool{}
	txnPID := int64(-1)
	for run := range 2 {
		s := startServer(t, func(c *Config) { c.DataDir = dir; c.Groups.Transactions.StateTopicPartitions = 2 })
		c := dialRaw(t, s)
		for v := int16(0); v <= 4; v++ {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.Version = v
			resp := c.roundTrip(req, int32(v)).(*kmsg.InitProducerIDResponse)
			if resp.ErrorCode != 0 || resp.ProducerEpoch != 0 || resp.ProducerID < 0 {
				t.Fatalf("v%d: id %d epoch %d error %v", v, resp.ProducerID, resp.ProducerEpoch, kerr.ErrorForCode(resp.ErrorCode))
			}
			if seen[resp.ProducerID] {
				t.Fatalf("producer id %d handed out twice", resp.ProducerID)
			}
			seen[resp.ProducerID] = true
		}
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 4, kmsg.StringPtr("txn"), 60000
		resp := c.roundTrip(req, 9).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerEpoch != int16(run) || (run > 0 && resp.ProducerID != txnPID) || seen[resp.ProducerID] && run == 0 {
			t.Fatalf("run %d: transactional id: %v, id %d epoch %d (first id %d)", run, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, txnPID)
		}
		txnPID = resp.ProducerID
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
