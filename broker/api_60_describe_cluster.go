package broker

// Version notes
//
// DescribeCluster v0-v1 (advertised 0-1). v1 adds EndpointType: every
// listener serves brokers (1); a request for controllers (2) gets
// UNSUPPORTED_ENDPOINT_TYPE, as Kafka answers on a broker listener. v2
// (fenced brokers) is not advertised. Authorized operations are "not
// requested": no ACLs. Brokers are given with the advertised address of the
// listener the request arrived on (listeners.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleDescribeCluster(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("this listener serves brokers only")
		return wire.Response{Msg: resp}, nil
	}
	im := s.meta.Image()
	resp.ClusterID = im.ClusterID
	resp.ControllerID = im.ControllerID
	resp.ClusterAuthorizedOperations = authorizedOperationsNotRequested
	for _, b := range im.Brokers() {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID = b.NodeID
		rb.Host, rb.Port = s.endpoint(r, b)
		if b.Rack != "" {
			rb.Rack = kmsg.StringPtr(b.Rack)
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return wire.Response{Msg: resp}, nil
}
