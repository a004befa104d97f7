package broker

// Version notes (Heartbeat, key 12):
//   - Advertised 0-4 (kafka-go and kafka-python pin v0). v3 adds
//     group.instance.id (a fenced static member gets FENCED_INSTANCE_ID),
//     v4 is flexible.
//   - REBALANCE_IN_PROGRESS tells the member to join again; a heartbeat
//     during CompletingRebalance is answered with no error, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleHeartbeat(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	c, err := s.coordinator()
	if err == nil {
		instance := ""
		if req.InstanceID != nil {
			instance = *req.InstanceID
		}
		err = c.Heartbeat(req.Group, req.MemberID, instance, req.Generation)
	}
	resp.ErrorCode = errorCode(err)
	return wire.Response{Msg: resp}, nil
}
