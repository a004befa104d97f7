package broker

// Version notes (DescribeGroups, key 15):
//   - Advertised 0-5. v1 adds throttle time, v3 authorized operations (we
//     send "not requested": no ACLs), v4 group.instance.id per member, v5
//     is flexible. v6 (error messages, KIP-1043) not served.
//   - An unknown group is described as state "Dead" with no error, as in
//     Kafka. Member metadata and assignments are sent only for a group of
//     protocol type "consumer" or any other: Kafka sends them as stored.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleDescribeGroups(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	c, cerr := s.coordinator()
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.AuthorizedOperations = authorizedOperationsNotRequested
		if cerr != nil {
			rg.ErrorCode = errorCode(cerr)
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d, _, err := c.Describe(id)
		if err != nil {
			rg.ErrorCode = errorCode(err)
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.State, rg.ProtocolType = d.State.String(), d.ProtocolType
		if d.State == group.Stable || d.State == group.CompletingRebalance {
			rg.Protocol = d.Protocol
		}
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.ClientID, rm.ClientHost = m.ID, m.ClientID, m.ClientHost
			if m.InstanceID != "" {
				rm.InstanceID = kmsg.StringPtr(m.InstanceID)
			}
			rm.ProtocolMetadata, rm.MemberAssignment = []byte{}, []byte{}
			if d.State == group.Stable {
				for _, p := range m.Protocols {
					if p.Name == d.Protocol {
						rm.ProtocolMetadata = p.Metadata
					}
				}
				if m.Assignment != nil {
					rm.MemberAssignment = m.Assignment
				}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return wire.Response{Msg: resp}, nil
}
