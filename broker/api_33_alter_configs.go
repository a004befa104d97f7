package broker

// Version notes
//
// AlterConfigs v0-v2 (advertised 0-2). v1 is identical to v0, v2 is
// flexible. The legacy, non-incremental API: a TOPIC resource's overrides
// are replaced by exactly the configs given (names not listed return to
// their defaults). Unknown names, bad values and null values are
// INVALID_CONFIG, never ignored. A BROKER resource ("" for the cluster-wide
// default, our node id for this broker) has its dynamic broker configs
// replaced the same way, with the errors of IncrementalAlterConfigs.

import (
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleAlterConfigs(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		err := configResourceError(rr.ResourceType, rr.ResourceName, s.cfg.NodeID)
		switch {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			err = s.alterBrokerConfigs(rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, []string, error) {
				return replaceBrokerConfigs(rr.Configs)
			})
		default:
			err = s.alterTopicConfigs(rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
				next := map[string]string{}
				for _, c := range rr.Configs {
					if c.Value == nil {
						return nil, kafkaError(kerr.InvalidConfig, "null value not supported for topic config %s", c.Name)
					}
					if _, dup := next[c.Name]; dup {
						return nil, kafkaError(kerr.InvalidRequest, "config %s given twice", c.Name)
					}
					next[c.Name] = *c.Value
				}
				return maps.Clone(next), nil
			})
		}
		if err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = kmsg.StringPtr(errorMessage(err))
		}
		resp.Resources = append(resp.Resources, out)
	}
	return wire.Response{Msg: resp}, nil
}
