package broker

// Version notes (ListGroups, key 16):
//   - Advertised 0-4. v1 adds throttle time, v3 is flexible, v4 filters by
//     state (case-insensitive, as Kafka) and returns each group's state.
//     v5 (group types, KIP-848) not served.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleListGroups(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	c, err := s.coordinator()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	list, err := c.List()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return wire.Response{Msg: resp}, nil
	}
	for _, g := range list {
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, g.State.String()) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState = g.ID, g.ProtocolType, g.State.String()
		resp.Groups = append(resp.Groups, rg)
	}
	return wire.Response{Msg: resp}, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
