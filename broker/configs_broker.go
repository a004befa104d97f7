package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
)

// Dynamic broker configs (KIP-226). The broker defaults of the topic configs
// can be changed at run time on two BROKER resources: "" is the cluster-wide
// default (DYNAMIC_DEFAULT_BROKER_CONFIG), our node id is this broker
// (DYNAMIC_BROKER_CONFIG). A topic config without a topic override takes
// the per-broker value, then the cluster default, then the static setting,
// then Kafka's default. The values live in the metadata image
// (metadata.SetBrokerConfigs), so they survive a restart and the raft
// controller will replicate them.

// brokerSynonyms maps each topic config to the broker config that sets its
// default, as Kafka's ServerTopicConfigSynonyms does.
var brokerSynonyms = map[string]string{
	"cleanup.policy":            "log.cleanup.policy",
	"delete.retention.ms":       "log.cleaner.delete.retention.ms",
	"file.delete.delay.ms":      "log.segment.delete.delay.ms",
	"flush.messages":            "log.flush.interval.messages",
	"flush.ms":                  "log.flush.interval.ms",
	"index.interval.bytes":      "log.index.interval.bytes",
	"max.compaction.lag.ms":     "log.cleaner.max.compaction.lag.ms",
	"max.message.bytes":         "message.max.bytes",
	"message.timestamp.type":    "log.message.timestamp.type",
	"min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
	"min.compaction.lag.ms":     "log.cleaner.min.compaction.lag.ms",
	"min.insync.replicas":       "min.insync.replicas",
	"retention.bytes":           "log.retention.bytes",
	"retention.ms":              "log.retention.ms",
	"segment.bytes":             "log.segment.bytes",
	"segment.index.bytes":       "log.index.size.max.bytes",
	"segment.jitter.ms":         "log.roll.jitter.ms",
	"segment.ms":                "log.roll.ms",
}

// dynamicBrokerConfigDef returns the topic config whose broker default the
// broker config name sets.
func dynamicBrokerConfigDef(name string) (topicConfigDef, bool) {
	for _, d := range topicConfigDefs {
		if brokerSynonyms[d.name] == name {
			return d, true
		}
	}
	return topicConfigDef{}, false
}

// resolveTopicConfigs returns the topic configs a topic runs with, by topic
// config name, before the static and Kafka defaults: each config's topic
// override, else its broker synonym's per-broker value, else its cluster
// default. The result is a new map.
func resolveTopicConfigs(perBroker, clusterDefault, overrides map[string]string) map[string]string {
	out := map[string]string{}
	for topic, broker := range brokerSynonyms {
		if v, ok := perBroker[broker]; ok {
			out[topic] = v
		} else if v, ok := clusterDefault[broker]; ok {
			out[topic] = v
		}
	}
	maps.Copy(out, overrides)
	return out
}

// brokerResource checks a BROKER resource name as Kafka does: "" (the
// cluster default) or this broker's node id.
func brokerResource(name string, nodeID int32) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return kafkaError(kerr.InvalidRequest, "Node id must be an integer, but it is: %s", name)
	}
	if int32(id) != nodeID || strconv.FormatInt(id, 10) != name {
		return kafkaError(kerr.InvalidRequest, "Unexpected broker id, expected %d, but received %s", nodeID, name)
	}
	return nil
}

// checkBrokerConfigs checks the names and value types of a BROKER resource's
// configs: static settings are read-only and bad values are INVALID_REQUEST
// (Kafka's KAFKA-13609 keeps that code for every failed broker validation);
// a name that is not a dynamic config here is INVALID_CONFIG, never stored
// and ignored. static lists the read-only names; accepts says whether the
// partitions honour a topic config.
func checkBrokerConfigs(names []string, values map[string]string, static []string, accepts func(string) bool) error {
	var readOnly []string
	for _, n := range names {
		if slices.Contains(static, n) {
			readOnly = append(readOnly, n)
		}
	}
	if len(readOnly) > 0 {
		slices.Sort(readOnly)
		return kafkaError(kerr.InvalidRequest, "Cannot update these configs dynamically: %v", slices.Compact(readOnly))
	}
	for _, n := range names {
		d, ok := dynamicBrokerConfigDef(n)
		if !ok || !accepts(d.name) {
			return kafkaError(kerr.InvalidConfig, "unknown or unsupported broker config %s", n)
		}
		v, set := values[n]
		if !set {
			continue
		}
		if err := checkConfigType(d, v); err != nil {
			return kafkaError(kerr.InvalidRequest, "Invalid value %s for configuration %s", v, n)
		}
	}
	return nil
}

// replaceBrokerConfigs is the legacy AlterConfigs edit of a BROKER resource:
// the given configs replace the resource's whole set.
func replaceBrokerConfigs(cs []kmsg.AlterConfigsRequestResourceConfig) (map[string]string, []string, error) {
	next := map[string]string{}
	var names, nulls []string
	for _, c := range cs {
		if slices.Contains(names, c.Name) {
			return nil, nil, kafkaError(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		names = append(names, c.Name)
		if c.Value == nil {
			nulls = append(nulls, c.Name)
			continue
		}
		next[c.Name] = *c.Value
	}
	if len(nulls) > 0 {
		return nil, nil, kafkaError(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
	}
	return next, names, nil
}

// editBrokerConfigs is the IncrementalAlterConfigs edit of a BROKER
// resource, as Kafka's prepareIncrementalConfigs: SET, DELETE (back to the
// next synonym), and APPEND and SUBTRACT on list configs, starting from
// Kafka's default when the resource does not set the config. It returns the
// new set and the names the operations touch.
func editBrokerConfigs(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, []string, error) {
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]string{}
	}
	var names, nulls []string
	for _, c := range ops {
		if slices.Contains(names, c.Name) {
			return nil, nil, kafkaError(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		names = append(names, c.Name)
		if c.Op != kmsg.IncrementalAlterConfigOpDelete && c.Value == nil {
			nulls = append(nulls, c.Name)
		}
	}
	if len(nulls) > 0 {
		return nil, nil, kafkaError(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
	}
	for _, c := range ops {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			d, ok := dynamicBrokerConfigDef(c.Name)
			if !ok {
				return nil, nil, kafkaError(kerr.InvalidConfig, "Unknown config name: %s", c.Name)
			}
			if d.typ != kmsg.ConfigTypeList {
				return nil, nil, kafkaError(kerr.InvalidRequest, "Config value %s is not allowed for config key: %s", strings.ToLower(c.Op.String()), c.Name)
			}
			v, ok := next[c.Name]
			if !ok {
				v = d.def
			}
			next[c.Name] = applyListOp(c.Op, v, *c.Value)
		default:
			return nil, nil, kafkaError(kerr.InvalidRequest, "Unknown operations type %d", c.Op)
		}
	}
	return next, names, nil
}

// staticBrokerValue is a dynamic broker config's value from this broker's
// own settings, if they set it: --fsync interval is
// log.flush.interval.ms.
func (s *Server) staticBrokerValue(name string) (string, bool) {
	if name == "log.flush.interval.ms" && s.cfg.Fsync == "interval" {
		return strconv.FormatInt(s.cfg.FsyncInterval.Milliseconds(), 10), true
	}
	return "", false
}

// effectiveTopicConfigs is resolveTopicConfigs over the current image for
// this broker: the map the partitions' configuration is built from.
func (s *Server) effectiveTopicConfigs(overrides map[string]string) map[string]string {
	im := s.meta.Image()
	return resolveTopicConfigs(im.BrokerConfigs(strconv.Itoa(int(s.cfg.NodeID))), im.BrokerConfigs(""), overrides)
}

// alterBrokerConfigs computes a BROKER resource's new configs with edit,
// validates them (names, types, and the configuration every topic would run
// with) and, unless validateOnly, stores them in the metadata and applies
// them to every open partition. A failure changes nothing.
func (s *Server) alterBrokerConfigs(resource string, validateOnly bool, edit func(cur map[string]string) (map[string]string, []string, error)) error {
	if err := brokerResource(resource, s.cfg.NodeID); err != nil {
		return err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	im := s.meta.Image()
	next, touched, err := edit(im.BrokerConfigs(resource))
	if err != nil {
		return err
	}
	var static []string
	for _, e := range s.staticBrokerConfigs() {
		static = append(static, e.Name)
	}
	names := slices.Concat(touched, slices.Collect(maps.Keys(next)))
	if err := checkBrokerConfigs(names, next, static, s.store.acceptsConfig); err != nil {
		return err
	}
	perBroker, clusterDefault := im.BrokerConfigs(strconv.Itoa(int(s.cfg.NodeID))), im.BrokerConfigs("")
	if resource == "" {
		clusterDefault = next
	} else {
		perBroker = next
	}
	defaults := s.partitionDefaults()
	if _, err := defaults.With(resolveTopicConfigs(perBroker, clusterDefault, nil)); err != nil {
		return kafkaError(kerr.InvalidRequest, "%v", err)
	}
	for _, t := range im.Topics() {
		if _, err := defaults.With(resolveTopicConfigs(perBroker, clusterDefault, t.Configs)); err != nil {
			return kafkaError(kerr.InvalidRequest, "topic %s would be invalid: %v", t.Name, err)
		}
	}
	if validateOnly {
		return nil
	}
	im, err = s.meta.Apply(metadata.SetBrokerConfigs{Broker: resource, Configs: next})
	if err != nil {
		return err
	}
	for _, t := range im.Topics() {
		if err := s.store.setConfigs(t); err != nil {
			return fmt.Errorf("broker: apply broker configs to %s: %w", t.Name, err)
		}
	}
	s.logger.Info("broker configs altered", "resource", resource, "configs", next)
	return nil
}

// brokerSynonymChain lists where a dynamic broker config's value can come
// from, highest precedence first: this broker's dynamic value, the cluster
// default, the static setting, Kafka's default. perBroker is nil when the
// described resource is the cluster default.
func (s *Server) brokerSynonymChain(name, def string, perBroker, clusterDefault map[string]string) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(v string, src kmsg.ConfigSource) {
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = name, kmsg.StringPtr(v), src
		out = append(out, syn)
	}
	if v, ok := perBroker[name]; ok {
		add(v, kmsg.ConfigSourceDynamicBrokerConfig)
	}
	if v, ok := clusterDefault[name]; ok {
		add(v, kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	}
	if v, ok := s.staticBrokerValue(name); ok {
		add(v, kmsg.ConfigSourceStaticBrokerConfig)
	}
	add(def, kmsg.ConfigSourceDefaultConfig)
	return out
}

// describeDynamicBrokerConfigs lists the dynamic broker configs of a BROKER
// resource: for our node id every one of them with its effective value and
// source, for "" only those the cluster default sets (as Kafka does).
func (s *Server) describeDynamicBrokerConfigs(resource string, names []string, synonyms, docs bool) []configEntry {
	im := s.meta.Image()
	clusterDefault := im.BrokerConfigs("")
	var perBroker map[string]string
	if resource != "" {
		perBroker = im.BrokerConfigs(resource)
	}
	var out []configEntry
	for _, d := range topicConfigDefs {
		name := brokerSynonyms[d.name]
		if name == "" || !s.store.acceptsConfig(d.name) || names != nil && !slices.Contains(names, name) {
			continue
		}
		if _, set := clusterDefault[name]; resource == "" && !set {
			continue
		}
		chain := s.brokerSynonymChain(name, d.def, perBroker, clusterDefault)
		e := configEntry{Name: name, Value: chain[0].Value, Source: chain[0].Source, Type: d.typ}
		if synonyms {
			e.Synonyms = chain
		}
		if docs {
			e.Doc = "Broker default of the topic config " + d.name + ". " + d.doc
		}
		out = append(out, e)
	}
	return out
}
