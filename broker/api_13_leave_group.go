package broker

// Version notes (LeaveGroup, key 13):
//   - Advertised 0-5. v0-v2 name one member; v3 batches members, each by
//     member id and/or group.instance.id (KIP-345: an operator may remove
//     a static member by instance id alone), with an error per member; v4
//     is flexible; v5 adds a reason per member.
//   - The group-level error is set only when the group is unknown or the
//     coordinator is unavailable; per-member errors go in Members (v3+),
//     and for v0-v2 the one member's error is the top-level code.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleLeaveGroup(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	var leaving []group.LeaveMember
	if req.Version < 3 {
		leaving = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			l := group.LeaveMember{MemberID: m.MemberID}
			if m.InstanceID != nil {
				l.InstanceID = *m.InstanceID
			}
			leaving = append(leaving, l)
		}
	}
	c, err := s.coordinator()
	var errs []error
	if err == nil {
		errs, err = c.Leave(req.Group, leaving)
	}
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = errorCode(errs[0])
		return wire.Response{Msg: resp}, nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = errorCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return wire.Response{Msg: resp}, nil
}
