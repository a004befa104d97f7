package broker

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
)

// topicConfigDef describes one topic config as Kafka names and documents it.
type topicConfigDef struct {
	name string
	def  string // Kafka's default, in Kafka's units
	typ  kmsg.ConfigType
	doc  string
}

// topicConfigDefs are the topic configs Weir honours, with Kafka's names,
// defaults and units. Which of them the partitions accept is the replica
// layer's business (validateConfigs); a name not listed here is
// INVALID_CONFIG.
var topicConfigDefs = []topicConfigDef{
	{"cleanup.policy", "delete", kmsg.ConfigTypeList, "Retention policy: delete, compact, or both (comma separated)."},
	{"delete.retention.ms", "86400000", kmsg.ConfigTypeLong, "How long tombstones are kept in a compacted topic, in milliseconds."},
	{"file.delete.delay.ms", "60000", kmsg.ConfigTypeLong, "Delay before a deleted segment's files are removed, in milliseconds."},
	{"flush.messages", "9223372036854775807", kmsg.ConfigTypeLong, "Force an fsync after this many messages."},
	{"flush.ms", "9223372036854775807", kmsg.ConfigTypeLong, "Force an fsync after this many milliseconds."},
	{"index.interval.bytes", "4096", kmsg.ConfigTypeInt, "Bytes of log between two offset index entries."},
	{"max.compaction.lag.ms", "9223372036854775807", kmsg.ConfigTypeLong, "Longest time a message stays uncompacted, in milliseconds."},
	{"max.message.bytes", "1048588", kmsg.ConfigTypeInt, "Largest record batch accepted, in bytes."},
	{"message.timestamp.type", "CreateTime", kmsg.ConfigTypeString, "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock."},
	{"min.cleanable.dirty.ratio", "0.5", kmsg.ConfigTypeDouble, "Dirty share of the log above which the cleaner compacts it."},
	{"min.compaction.lag.ms", "0", kmsg.ConfigTypeLong, "Shortest time a message stays uncompacted, in milliseconds."},
	{"min.insync.replicas", "1", kmsg.ConfigTypeInt, "Replicas that must be in sync for an acks=all produce to succeed."},
	{"retention.bytes", "-1", kmsg.ConfigTypeLong, "Largest partition size before old segments are deleted, in bytes; -1 is unlimited."},
	{"retention.ms", "604800000", kmsg.ConfigTypeLong, "How long a segment is kept, in milliseconds; -1 is forever."},
	{"segment.bytes", "1073741824", kmsg.ConfigTypeInt, "Segment file size, in bytes."},
	{"segment.index.bytes", "10485760", kmsg.ConfigTypeInt, "Offset index size per segment, in bytes."},
	{"segment.jitter.ms", "0", kmsg.ConfigTypeLong, "Random jitter subtracted from segment.ms, in milliseconds."},
	{"segment.ms", "604800000", kmsg.ConfigTypeLong, "Roll a new segment after this long, in milliseconds."},
}

func topicConfigDefFor(name string) (topicConfigDef, bool) {
	for _, d := range topicConfigDefs {
		if d.name == name {
			return d, true
		}
	}
	return topicConfigDef{}, false
}

// checkTopicConfigs rejects names we do not know and values of the wrong
// type, then asks the partitions' config layer to validate the whole set.
func (s *Server) checkTopicConfigs(m map[string]string) error {
	for k, v := range m {
		d, ok := topicConfigDefFor(k)
		if !ok || !s.store.acceptsConfig(k) {
			return fmt.Errorf("%w: unknown or unsupported topic config %s", ErrInvalidConfig, k)
		}
		if err := checkConfigType(d, v); err != nil {
			return err
		}
	}
	if err := s.store.validateConfigs(m); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func checkConfigType(d topicConfigDef, v string) error {
	var err error
	switch d.typ {
	case kmsg.ConfigTypeInt:
		_, err = strconv.ParseInt(v, 10, 32)
	case kmsg.ConfigTypeLong:
		_, err = strconv.ParseInt(v, 10, 64)
	case kmsg.ConfigTypeDouble:
		_, err = strconv.ParseFloat(v, 64)
	}
	if err != nil {
		return fmt.Errorf("%w: invalid value %s for configuration %s: %v", ErrInvalidConfig, v, d.name, err)
	}
	return nil
}

// configEntry is one described config.
type configEntry struct {
	Name        string
	Value       *string
	ReadOnly    bool
	Source      kmsg.ConfigSource
	IsSensitive bool
	Type        kmsg.ConfigType
	Doc         string
	Synonyms    []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
}

// describeTopicConfigs lists a topic's configs with the value it runs with
// and where that value comes from: its override (DYNAMIC_TOPIC_CONFIG), else
// the broker synonym's dynamic value (DYNAMIC_BROKER_CONFIG, then
// DYNAMIC_DEFAULT_BROKER_CONFIG), the static setting (STATIC_BROKER_CONFIG)
// or Kafka's default (DEFAULT_CONFIG). With synonyms, every level that sets
// the config is listed, highest precedence first. names, if not nil,
// restricts the list.
func (s *Server) describeTopicConfigs(overrides map[string]string, names []string, synonyms, docs bool) []configEntry {
	im := s.meta.Image()
	perBroker, clusterDefault := im.BrokerConfigs(strconv.Itoa(int(s.cfg.NodeID))), im.BrokerConfigs("")
	var out []configEntry
	for _, d := range topicConfigDefs {
		if !s.store.acceptsConfig(d.name) || names != nil && !slices.Contains(names, d.name) {
			continue
		}
		var chain []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
		if v, ok := overrides[d.name]; ok {
			o := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			o.Name, o.Value, o.Source = d.name, kmsg.StringPtr(v), kmsg.ConfigSourceDynamicTopicConfig
			chain = append(chain, o)
		}
		chain = append(chain, s.brokerSynonymChain(brokerSynonyms[d.name], d.def, perBroker, clusterDefault)...)
		e := configEntry{Name: d.name, Value: chain[0].Value, Source: chain[0].Source, Type: d.typ}
		if docs {
			e.Doc = d.doc
		}
		if synonyms {
			e.Synonyms = chain
		}
		out = append(out, e)
	}
	return out
}

// staticBrokerConfigs lists this broker's static settings, read-only: they
// change only with a restart.
func (s *Server) staticBrokerConfigs() []configEntry {
	all := []configEntry{
		{Name: "node.id", Value: kmsg.StringPtr(strconv.Itoa(int(s.cfg.NodeID))), Type: kmsg.ConfigTypeInt},
		{Name: "broker.id", Value: kmsg.StringPtr(strconv.Itoa(int(s.cfg.NodeID))), Type: kmsg.ConfigTypeInt},
		{Name: "log.dirs", Value: kmsg.StringPtr(s.cfg.DataDir), Type: kmsg.ConfigTypeString},
		{Name: "auto.create.topics.enable", Value: kmsg.StringPtr(strconv.FormatBool(s.cfg.AutoCreateTopics)), Type: kmsg.ConfigTypeBoolean},
		{Name: "num.partitions", Value: kmsg.StringPtr(strconv.Itoa(int(s.cfg.DefaultPartitions))), Type: kmsg.ConfigTypeInt},
		{Name: "default.replication.factor", Value: kmsg.StringPtr("1"), Type: kmsg.ConfigTypeInt},
		{Name: "socket.request.max.bytes", Value: kmsg.StringPtr(strconv.Itoa(int(s.cfg.MaxRequestBytes))), Type: kmsg.ConfigTypeInt},
		{Name: "queued.max.request.bytes", Value: kmsg.StringPtr(strconv.FormatInt(s.cfg.MaxInFlightBytes, 10)), Type: kmsg.ConfigTypeLong},
		{Name: "connections.max.idle.ms", Value: kmsg.StringPtr(strconv.FormatInt(s.cfg.IdleTimeout.Milliseconds(), 10)), Type: kmsg.ConfigTypeLong},
	}
	for i := range all {
		all[i].ReadOnly, all[i].Source = true, kmsg.ConfigSourceStaticBrokerConfig
	}
	return all
}

// describeBrokerConfigs lists a BROKER resource's configs: for our node id
// the static settings (read-only) and every dynamic config with its
// effective value; for "" (the cluster default) only the dynamic configs it
// sets, as Kafka does.
func (s *Server) describeBrokerConfigs(resource string, names []string, synonyms, docs bool) []configEntry {
	var out []configEntry
	if resource != "" {
		for _, e := range s.staticBrokerConfigs() {
			if names != nil && !slices.Contains(names, e.Name) {
				continue
			}
			if synonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = e.Name, e.Value, e.Source
				e.Synonyms = append(e.Synonyms, syn)
			}
			out = append(out, e)
		}
	}
	return append(out, s.describeDynamicBrokerConfigs(resource, names, synonyms, docs)...)
}

// alterTopicConfigs computes a topic's new overrides with edit, validates
// them and, unless validateOnly, applies them to the metadata and the live
// partitions.
func (s *Server) alterTopicConfigs(name string, validateOnly bool, edit func(cur map[string]string) (map[string]string, error)) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	t, ok := s.meta.Image().Topic(name)
	if !ok {
		return fmt.Errorf("%w: %s", metadata.ErrUnknownTopic, name)
	}
	next, err := edit(t.Configs)
	if err != nil {
		return err
	}
	if err := s.checkTopicConfigs(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	im, err := s.meta.Apply(metadata.SetTopicConfigs{Topic: name, Configs: next})
	if err != nil {
		return err
	}
	t, _ = im.Topic(name)
	if err := s.store.setConfigs(t); err != nil {
		return fmt.Errorf("broker: apply configs of %s: %w", name, err)
	}
	s.logger.Info("topic configs altered", "topic", name, "configs", next)
	return nil
}

// configResourceError answers a resource we cannot alter or describe:
// BROKER resources other than "" and our node id, and resource types other
// than TOPIC and BROKER.
func configResourceError(rt kmsg.ConfigResourceType, name string, nodeID int32) error {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		return nil
	case kmsg.ConfigResourceTypeBroker:
		return brokerResource(name, nodeID)
	}
	return kafkaError(kerr.InvalidRequest, "unsupported config resource type %s", rt)
}
