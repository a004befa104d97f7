package broker

// Version notes (FindCoordinator, key 10):
//   - Advertised 0-4. v0 asks for a group's coordinator; v1 adds the key
//     type (0 group, 1 transaction) and an error message; v3 is flexible;
//     v4 batches keys (CoordinatorKeys in, Coordinators out).
//   - Every group's coordinator is the leader of its partition of
//     __consumer_offsets (abs(javaHashCode(group)) % partitions): on one
//     node, this node. An empty group id is valid, as in Kafka.
//   - A transactional id's coordinator (key type 1) is the leader of its
//     partition of __transaction_state, created on the first such request
//     (txn.go); other key types are INVALID_REQUEST.
//   - The coordinator's address is the advertised address of the listener
//     the request arrived on (listeners.go).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/broker/wire"
)

func handleFindCoordinator(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		c := s.findCoordinator(r, req.CoordinatorType, req.CoordinatorKey)
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		return wire.Response{Msg: resp}, nil
	}
	for _, k := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, s.findCoordinator(r, req.CoordinatorType, k))
	}
	return wire.Response{Msg: resp}, nil
}

// findCoordinator answers for one key, with the address of the listener r
// arrived on.
func (s *Server) findCoordinator(r *wire.Request, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	out := kmsg.NewFindCoordinatorResponseCoordinator()
	out.Key, out.NodeID, out.Port = key, -1, -1
	fail := func(err error) kmsg.FindCoordinatorResponseCoordinator {
		out.ErrorCode = errorCode(err)
		out.ErrorMessage = kmsg.StringPtr(errorMessage(err))
		return out
	}
	topic := group.Topic
	var p int32
	switch keyType {
	case 0:
		c, err := s.coordinator()
		if err != nil {
			return fail(err)
		}
		p = group.PartitionFor(key, c.Partitions())
	case 1:
		c, err := s.txnCoordinator()
		if err != nil {
			return fail(err)
		}
		topic, p = txn.Topic, txn.PartitionFor(key, c.Partitions())
	default:
		return fail(fmt.Errorf("%w: unknown coordinator key type %d", kerr.InvalidRequest, keyType))
	}
	t, ok := s.meta.Image().Topic(topic)
	if !ok || int(p) >= len(t.Partitions) {
		return fail(kerr.CoordinatorNotAvailable)
	}
	leader := t.Partitions[p].Leader
	b, ok := s.meta.Image().Broker(leader)
	if !ok || leader != s.cfg.NodeID {
		return fail(kerr.CoordinatorNotAvailable)
	}
	out.NodeID = b.NodeID
	out.Host, out.Port = s.endpoint(r, b)
	return out
}
