package broker

// Version notes (DeleteGroups, key 42):
//   - Advertised 0-2 (v2 is flexible). A group with members is
//     NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND. Deleting writes
//     tombstones for the group's offsets and metadata.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleDeleteGroups(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	c, cerr := s.coordinator()
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		err := cerr
		if err == nil {
			err = c.DeleteGroup(id)
		}
		rg.ErrorCode = errorCode(err)
		resp.Groups = append(resp.Groups, rg)
	}
	return wire.Response{Msg: resp}, nil
}
