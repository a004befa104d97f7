package broker

// Version notes (JoinGroup, key 11):
//   - Advertised 0-9: librdkafka 2.0.2 needs v0 listed, kafka-go negotiates
//     1-2, kgo goes to the top. v1 adds the rebalance timeout (v0 uses the
//     session timeout), v4 the member-id-required rejoin (a new dynamic
//     member gets MEMBER_ID_REQUIRED with its id and joins again), v5
//     group.instance.id (static membership, KIP-345), v6 is flexible, v7
//     returns the protocol type, v8 carries a reason (logged nowhere), v9
//     SkipAssignment (set when a static leader rejoins a Stable group: its
//     current assignment stands, KIP-814).
//   - The request waits in the coordinator's purgatory until the join phase
//     completes (all members joined, or the rebalance timeout).

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleJoinGroup(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	c, err := s.coordinator()
	if err != nil {
		resp.ErrorCode, resp.Generation, resp.MemberID = errorCode(err), -1, req.MemberID
		return wire.Response{Msg: resp}, nil
	}
	jr := group.JoinRequest{
		MemberID:             req.MemberID,
		ClientID:             r.ClientID,
		ProtocolType:         req.ProtocolType,
		SessionTimeout:       time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:     time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID: req.Version >= 4,
	}
	if req.Version < 1 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	if req.InstanceID != nil {
		jr.InstanceID = *req.InstanceID
	}
	if r.Remote != nil {
		jr.ClientHost = "/" + hostOf(r.Remote.String())
	}
	// The group keeps the metadata past this request: copy it out of the
	// request frame.
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	c.Join(req.Group, jr, func(res group.JoinResult) {
		r.Respond(wire.Response{Msg: joinResponse(req.Version, res)})
	})
	return wire.Response{Deferred: true}, nil
}

func joinResponse(version int16, res group.JoinResult) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.ErrorCode = errorCode(res.Err)
	resp.Generation, resp.LeaderID, resp.MemberID = res.Generation, res.Leader, res.MemberID
	resp.SkipAssignment = res.SkipAssignment
	if res.Err == nil {
		resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
		resp.Protocol = kmsg.StringPtr(res.Protocol)
	}
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.ProtocolMetadata = m.MemberID, m.Metadata
		if m.InstanceID != "" {
			rm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// hostOf strips the port of a host:port.
func hostOf(hp string) string {
	if h, _, err := splitHostPort(hp); err == nil {
		return h
	}
	return hp
}
