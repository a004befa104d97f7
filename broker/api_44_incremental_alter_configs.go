package broker

// Version notes
//
// IncrementalAlterConfigs v0-v1 (advertised 0-1; v1 is flexible). Each
// config carries an operation: SET, DELETE (back to the default), APPEND
// and SUBTRACT (list configs only: cleanup.policy). Other configs of the
// topic keep their values. A name given twice in one resource is
// INVALID_REQUEST; unknown names, bad values and list operations on
// non-list configs are INVALID_CONFIG.
//
// BROKER resources ("" for the cluster-wide default, our node id for this
// broker) take the same operations on the dynamic broker configs
// (log.retention.ms, ...); DELETE falls back to the next synonym. As in
// Kafka's broker-side validation, duplicate names, null values, read-only
// (static) configs, bad values, list operations on non-list configs and
// another node id are INVALID_REQUEST; an unknown or unsupported name is
// INVALID_CONFIG (Kafka would store it; we refuse it). A failed or
// validate_only resource changes nothing.

import (
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleIncrementalAlterConfigs(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		err := configResourceError(rr.ResourceType, rr.ResourceName, s.cfg.NodeID)
		switch {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			err = s.alterBrokerConfigs(rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, []string, error) {
				return editBrokerConfigs(cur, rr.Configs)
			})
		default:
			err = s.alterTopicConfigs(rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
				return incrementalEdit(cur, rr.Configs)
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

// incrementalEdit applies the operations to a copy of the overrides.
func incrementalEdit(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]string{}
	}
	seen := map[string]bool{}
	for _, c := range ops {
		if seen[c.Name] {
			return nil, kafkaError(kerr.InvalidRequest, "config %s given twice", c.Name)
		}
		seen[c.Name] = true
		d, known := topicConfigDefFor(c.Name)
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return nil, kafkaError(kerr.InvalidConfig, "null value for config %s", c.Name)
			}
			next[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			if !known {
				return nil, kafkaError(kerr.InvalidConfig, "unknown or unsupported topic config %s", c.Name)
			}
			delete(next, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !known || d.typ != kmsg.ConfigTypeList {
				return nil, kafkaError(kerr.InvalidConfig, "%s is only valid for list configs, not %s", c.Op, c.Name)
			}
			if c.Value == nil {
				return nil, kafkaError(kerr.InvalidConfig, "null value for config %s", c.Name)
			}
			v, ok := next[c.Name]
			if !ok {
				v = d.def
			}
			next[c.Name] = applyListOp(c.Op, v, *c.Value)
		default:
			return nil, kafkaError(kerr.InvalidRequest, "unknown operation %d on config %s", c.Op, c.Name)
		}
	}
	return next, nil
}

// applyListOp appends the items of value missing from the list cur, or
// subtracts those present, as Kafka's APPEND and SUBTRACT do.
func applyListOp(op kmsg.IncrementalAlterConfigOp, cur, value string) string {
	list := splitList(cur)
	for _, item := range splitList(value) {
		has := slices.Contains(list, item)
		switch {
		case op == kmsg.IncrementalAlterConfigOpAppend && !has:
			list = append(list, item)
		case op == kmsg.IncrementalAlterConfigOpSubtract && has:
			list = slices.DeleteFunc(list, func(x string) bool { return x == item })
		}
	}
	return strings.Join(list, ",")
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
