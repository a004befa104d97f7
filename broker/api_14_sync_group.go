package broker

// Version notes (SyncGroup, key 14):
//   - Advertised 0-5 (kafka-go pins v0). v3 adds group.instance.id, v4 is
//     flexible, v5 echoes the protocol type and name (checked: a mismatch
//     is INCONSISTENT_GROUP_PROTOCOL).
//   - Followers wait in the purgatory for the leader's assignment; the
//     answers go out after the group metadata (with the assignment) is
//     written to __consumer_offsets.

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleSyncGroup(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.SyncGroupRequest)
	c, err := s.coordinator()
	if err != nil {
		return wire.Response{Msg: syncResponse(req.Version, group.SyncResult{Err: err})}, nil
	}
	sr := group.SyncRequest{MemberID: req.MemberID, Generation: req.Generation,
		ProtocolType: req.ProtocolType, Protocol: req.Protocol}
	if req.InstanceID != nil {
		sr.InstanceID = *req.InstanceID
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = bytes.Clone(a.MemberAssignment) // kept past the request
		}
	}
	c.Sync(req.Group, sr, func(res group.SyncResult) {
		r.Respond(wire.Response{Msg: syncResponse(req.Version, res)})
	})
	return wire.Response{Deferred: true}, nil
}

func syncResponse(version int16, res group.SyncResult) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ErrorCode = errorCode(res.Err)
	resp.MemberAssignment = res.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	if res.Err == nil {
		resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
		resp.Protocol = kmsg.StringPtr(res.Protocol)
	}
	return resp
}
