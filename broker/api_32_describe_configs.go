package broker

// Version notes
//
// DescribeConfigs v1-v4 (advertised 1-4). v1 adds synonyms and the config
// source (replacing IsDefault), v3 adds the config type and documentation,
// v4 is flexible. TOPIC resources list every topic config with the value
// the topic runs with and its source: the override (DYNAMIC_TOPIC_CONFIG),
// the broker synonym's dynamic value (DYNAMIC_BROKER_CONFIG,
// DYNAMIC_DEFAULT_BROKER_CONFIG), a static setting (STATIC_BROKER_CONFIG) or
// Kafka's default (DEFAULT_CONFIG); synonyms list every level that is set.
// The BROKER resource of our node id lists the static settings (read-only)
// and every dynamic broker config (read-write) with its effective value;
// BROKER "" lists only the cluster-wide defaults that are set. Another node
// id, a non-numeric name and other resource types are INVALID_REQUEST.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/wire"
)

func handleDescribeConfigs(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	im := s.meta.Image()
	for _, rr := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		err := configResourceError(rr.ResourceType, rr.ResourceName, s.cfg.NodeID)
		if err == nil {
			switch rr.ResourceType {
			case kmsg.ConfigResourceTypeTopic:
				t, ok := im.Topic(rr.ResourceName)
				if !ok {
					err = fmt.Errorf("%w: %s", metadata.ErrUnknownTopic, rr.ResourceName)
					break
				}
				entries = s.describeTopicConfigs(t.Configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			case kmsg.ConfigResourceTypeBroker:
				entries = s.describeBrokerConfigs(rr.ResourceName, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		}
		if err != nil {
			out.ErrorCode = errorCode(err)
			out.ErrorMessage = kmsg.StringPtr(errorMessage(err))
		}
		for _, e := range entries {
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive, c.ConfigType = e.Name, e.Value, e.ReadOnly, e.Source, e.IsSensitive, e.Type
			c.IsDefault = e.Source == kmsg.ConfigSourceDefaultConfig
			c.ConfigSynonyms = e.Synonyms
			if req.IncludeDocumentation && e.Doc != "" {
				c.Documentation = kmsg.StringPtr(e.Doc)
			}
			out.Configs = append(out.Configs, c)
		}
		resp.Resources = append(resp.Resources, out)
	}
	return wire.Response{Msg: resp}, nil
}
