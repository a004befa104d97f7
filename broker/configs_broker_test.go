package broker

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/replica"
)

func TestResolveTopicConfigs(t *testing.T) {
	tests := []struct {
		name                          string
		perBroker, cluster, overrides map[string]string
		want                          map[string]string
	}{
		{"nothing set", nil, nil, nil, map[string]string{}},
		{"cluster default", nil, map[string]string{"log.retention.ms": "1"}, nil, map[string]string{"retention.ms": "1"}},
		{"broker over cluster", map[string]string{"log.retention.ms": "2"}, map[string]string{"log.retention.ms": "1"}, nil, map[string]string{"retention.ms": "2"}},
		{"topic over broker", map[string]string{"log.retention.ms": "2"}, map[string]string{"log.retention.ms": "1"}, map[string]string{"retention.ms": "3"}, map[string]string{"retention.ms": "3"}},
		{"different configs merge", map[string]string{"log.roll.ms": "5"}, map[string]string{"message.max.bytes": "100"}, map[string]string{"cleanup.policy": "compact"},
			map[string]string{"segment.ms": "5", "max.message.bytes": "100", "cleanup.policy": "compact"}},
		{"same name synonym", map[string]string{"min.insync.replicas": "2"}, nil, nil, map[string]string{"min.insync.replicas": "2"}},
		{"broker names only", map[string]string{"retention.ms": "9"}, nil, nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolveTopicConfigs(tt.perBroker, tt.cluster, tt.overrides); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBrokerSynonymsCoverTopicConfigs: every topic config has a broker
// synonym, each synonym is unique and none is a static setting.
func TestBrokerSynonymsCoverTopicConfigs(t *testing.T) {
	s := &Server{cfg: DefaultConfig()}
	seen := map[string]bool{}
	for _, d := range topicConfigDefs {
		b, ok := brokerSynonyms[d.name]
		if !ok || seen[b] {
			t.Fatalf("topic config %s: broker synonym %q (listed before: %v)", d.name, b, seen[b])
		}
		seen[b] = true
		if got, ok := dynamicBrokerConfigDef(b); !ok || got.name != d.name {
			t.Fatalf("dynamicBrokerConfigDef(%s) = %s, %v", b, got.name, ok)
		}
		for _, e := range s.staticBrokerConfigs() {
			if e.Name == b {
				t.Fatalf("%s is both static and dynamic", b)
			}
		}
	}
	if len(brokerSynonyms) != len(topicConfigDefs) {
		t.Fatalf("%d synonyms for %d topic configs", len(brokerSynonyms), len(topicConfigDefs))
	}
}

func TestCheckBrokerConfigs(t *testing.T) {
	static := []string{"log.dirs", "node.id"}
	all := func(string) bool { return true }
	noCompact := func(n string) bool { return n != "cleanup.policy" }
	tests := []struct {
		name    string
		values  map[string]string
		names   []string
		accepts func(string) bool
		want    *kerr.Error
	}{
		{"dynamic ok", map[string]string{"log.retention.ms": "1000", "log.cleanup.policy": "compact"}, nil, all, nil},
		{"delete of a dynamic one", nil, []string{"log.retention.bytes"}, all, nil},
		{"read-only", map[string]string{"log.dirs": "/x"}, nil, all, kerr.InvalidRequest},
		{"read-only delete", nil, []string{"node.id"}, all, kerr.InvalidRequest},
		{"unknown", map[string]string{"no.such.config": "1"}, nil, all, kerr.InvalidConfig},
		{"unknown delete", nil, []string{"no.such.config"}, all, kerr.InvalidConfig},
		{"topic name on a broker", map[string]string{"retention.ms": "1"}, nil, all, kerr.InvalidConfig},
		{"not honoured by the partitions", map[string]string{"log.cleanup.policy": "compact"}, nil, noCompact, kerr.InvalidConfig},
		{"bad long", map[string]string{"log.retention.ms": "soon"}, nil, all, kerr.InvalidRequest},
		{"int overflow", map[string]string{"log.segment.bytes": "4294967296"}, nil, all, kerr.InvalidRequest},
		{"bad double", map[string]string{"log.cleaner.min.cleanable.ratio": "half"}, nil, all, kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := slices.Concat(tt.names, slices.Collect(maps.Keys(tt.values)))
			err := checkBrokerConfigs(names, tt.values, static, tt.accepts)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBrokerResource(t *testing.T) {
	tests := []struct {
		name string
		want *kerr.Error
	}{
		{"", nil},
		{"1", nil},
		{"2", kerr.InvalidRequest},
		{"01", kerr.InvalidRequest},
		{"one", kerr.InvalidRequest},
		{"-1", kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := brokerResource(tt.name, 1)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEditBrokerConfigs(t *testing.T) {
	op := func(o kmsg.IncrementalAlterConfigOp, name string, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name, c.Value = o, name, value
		return c
	}
	v := kmsg.StringPtr
	cur := map[string]string{"log.retention.ms": "1000", "log.cleanup.policy": "delete,compact"}
	tests := []struct {
		name string
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want map[string]string
		err  *kerr.Error
	}{
		{"set", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "log.retention.bytes", v("10"))},
			map[string]string{"log.retention.ms": "1000", "log.cleanup.policy": "delete,compact", "log.retention.bytes": "10"}, nil},
		{"delete", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpDelete, "log.retention.ms", nil)},
			map[string]string{"log.cleanup.policy": "delete,compact"}, nil},
		{"subtract", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSubtract, "log.cleanup.policy", v("delete"))},
			map[string]string{"log.retention.ms": "1000", "log.cleanup.policy": "compact"}, nil},
		{"append present", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpAppend, "log.cleanup.policy", v("compact"))},
			cur, nil},
		{"duplicate", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "log.roll.ms", v("1")), op(kmsg.IncrementalAlterConfigOpDelete, "log.roll.ms", nil)},
			nil, kerr.InvalidRequest},
		{"null set", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpSet, "log.roll.ms", nil)}, nil, kerr.InvalidRequest},
		{"append to non-list", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpAppend, "log.retention.ms", v("1"))}, nil, kerr.InvalidRequest},
		{"append to unknown", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpAppend, "no.such", v("1"))}, nil, kerr.InvalidConfig},
		{"unknown op", []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(7, "log.roll.ms", v("1"))}, nil, kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(cur)
			got, _, err := editBrokerConfigs(cur, tt.ops)
			if !maps.Equal(cur, before) {
				t.Fatal("the edit changed its input")
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v (err %v), want %v", got, err, tt.want)
			}
		})
	}
	// APPEND to a config the resource does not set starts from Kafka's default.
	got, _, err := editBrokerConfigs(nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{op(kmsg.IncrementalAlterConfigOpAppend, "log.cleanup.policy", v("compact"))})
	if err != nil || got["log.cleanup.policy"] != "delete,compact" {
		t.Fatalf("append from default: %v (err %v)", got, err)
	}
}

// brokerConfig finds one config of a DescribeBrokerConfigs answer.
func brokerConfig(t *testing.T, adm *kadm.Client, name string, broker ...int32) (kadm.Config, bool) {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t), broker...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker configs: %+v", rcs)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == name {
			return c, true
		}
	}
	return kadm.Config{}, false
}

func topicConfig(t *testing.T, adm *kadm.Client, topic, name string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("topic %s has no config %s", topic, name)
	return kadm.Config{}
}

func alterOK(t *testing.T, resps kadm.AlterConfigsResponses, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resps {
		if r.Err != nil {
			t.Fatalf("alter %q: %v (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
}

func synonymSources(c kadm.Config) []kmsg.ConfigSource {
	var out []kmsg.ConfigSource
	for _, s := range c.Synonyms {
		out = append(out, s.Source)
	}
	return out
}

// TestDynamicBrokerConfigs: through kadm, the cluster default and this
// broker's own value of log.retention.ms are set, described with their
// sources and synonyms on the broker and on a topic without an override,
// reach the live partitions, and fall back one level at a time on DELETE.
func TestDynamicBrokerConfigs(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	id := s.cfg.NodeID
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("777")}, "own"); err != nil {
		t.Fatal(err)
	}
	retention := func(topic string) int64 {
		p, ok := s.replicas().Partition(topic, 0)
		if !ok {
			t.Fatalf("no partition %s-0", topic)
		}
		return p.Config().Log.RetentionMs
	}

	c, ok := brokerConfig(t, adm, "log.retention.ms", id)
	if !ok || c.MaybeValue() != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("before: %+v", c)
	}

	// Cluster-wide default, incrementally.
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kmsg.StringPtr("5000")}})
	alterOK(t, resps, err)
	if got := retention("plain"); got != 5000 {
		t.Fatalf("plain retention.ms %d after the cluster default, want 5000", got)
	}
	if got := retention("own"); got != 777 {
		t.Fatalf("own retention.ms %d, its override is 777", got)
	}
	c, _ = brokerConfig(t, adm, "log.retention.ms", id)
	if c.MaybeValue() != "5000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("broker after cluster default: %+v", c)
	}
	if c, ok := brokerConfig(t, adm, "log.retention.ms"); !ok || c.MaybeValue() != "5000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("cluster default resource: %+v (found %v)", c, ok)
	}
	if _, ok := brokerConfig(t, adm, "log.dirs"); ok {
		t.Fatal("the cluster default resource lists a static config")
	}

	// This broker's own value, with the legacy (replace-all) API.
	resps, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kmsg.StringPtr("6000")}}, id)
	alterOK(t, resps, err)
	if got := retention("plain"); got != 6000 {
		t.Fatalf("plain retention.ms %d after the broker value, want 6000", got)
	}
	c, _ = brokerConfig(t, adm, "log.retention.ms", id)
	want := []kmsg.ConfigSource{kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig, kmsg.ConfigSourceDefaultConfig}
	if c.MaybeValue() != "6000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig || !slices.Equal(synonymSources(c), want) {
		t.Fatalf("broker value: %+v, synonym sources %v, want %v", c, synonymSources(c), want)
	}
	tc := topicConfig(t, adm, "plain", "retention.ms")
	if tc.MaybeValue() != "6000" || tc.Source != kmsg.ConfigSourceDynamicBrokerConfig || !slices.Equal(synonymSources(tc), want) || tc.Synonyms[0].Key != "log.retention.ms" {
		t.Fatalf("topic without override: %+v", tc)
	}
	tc = topicConfig(t, adm, "own", "retention.ms")
	if tc.MaybeValue() != "777" || tc.Source != kmsg.ConfigSourceDynamicTopicConfig || len(tc.Synonyms) != 4 {
		t.Fatalf("topic with override: %+v", tc)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rcs[0].Configs {
		_, dynamic := dynamicBrokerConfigDef(c.Key)
		if dynamic == (c.Source == kmsg.ConfigSourceStaticBrokerConfig && c.Key != "log.flush.interval.ms") {
			t.Fatalf("%s: source %v, dynamic %v", c.Key, c.Source, dynamic)
		}
	}

	// DELETE falls back to the next synonym: the cluster default, then Kafka's.
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.retention.ms"}}, id)
	alterOK(t, resps, err)
	if got := retention("plain"); got != 5000 {
		t.Fatalf("after deleting the broker value: %d, want the cluster default 5000", got)
	}
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.retention.ms"}})
	alterOK(t, resps, err)
	if got := retention("plain"); got != replica.DefaultConfig().Log.RetentionMs {
		t.Fatalf("after deleting both: %d, want Kafka's default", got)
	}
	if tc := topicConfig(t, adm, "plain", "retention.ms"); tc.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("topic after deletes: %+v", tc)
	}

	// APPEND on the list config, from Kafka's default.
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "log.cleanup.policy", Value: kmsg.StringPtr("compact")}}, id)
	alterOK(t, resps, err)
	if p, _ := s.replicas().Partition("plain", 0); p.Config().Log.CleanupPolicy != "delete,compact" {
		t.Fatalf("cleanup.policy %q", p.Config().Log.CleanupPolicy)
	}
}

// TestBrokerConfigsBadInputChangesNothing: every rejected alteration and
// every validate_only one leaves the metadata and the live partitions as
// they were.
func TestBrokerConfigsBadInputChangesNothing(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "lagged"); err != nil {
		t.Fatal(err)
	}
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.bytes", Value: kmsg.StringPtr("4096")}}, s.cfg.NodeID)
	alterOK(t, resps, err)
	version := s.meta.Image().Version
	p, _ := s.replicas().Partition("lagged", 0)
	cfgBefore := p.Config()

	set := func(name, value string) []kadm.AlterConfig {
		return []kadm.AlterConfig{{Name: name, Value: kmsg.StringPtr(value)}}
	}
	node := []int32{s.cfg.NodeID}
	tests := []struct {
		name    string
		configs []kadm.AlterConfig
		brokers []int32
		state   bool // legacy AlterConfigs
		want    *kerr.Error
	}{
		{"unknown name", set("no.such.config", "1"), node, false, kerr.InvalidConfig},
		{"topic name", set("retention.ms", "1"), node, false, kerr.InvalidConfig},
		{"read-only", set("log.dirs", "/elsewhere"), node, false, kerr.InvalidRequest},
		{"read-only, legacy", set("num.partitions", "3"), node, true, kerr.InvalidRequest},
		{"bad value", set("log.retention.ms", "soon"), node, false, kerr.InvalidRequest},
		{"semantically bad", set("log.segment.bytes", "1"), node, false, kerr.InvalidRequest},
		{"bad timestamp type", set("log.message.timestamp.type", "Sometime"), nil, false, kerr.InvalidRequest},
		{"null value, legacy", []kadm.AlterConfig{{Name: "log.retention.ms"}}, node, true, kerr.InvalidRequest},
		{"delete unknown", []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "no.such.config"}}, node, false, kerr.InvalidConfig},
		{"append to non-list", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "log.retention.ms", Value: kmsg.StringPtr("1")}}, node, false, kerr.InvalidRequest},
		{"unknown broker", set("log.retention.ms", "1"), []int32{s.cfg.NodeID + 1}, false, kerr.InvalidRequest},
		{"good and bad together", append(set("log.retention.ms", "1"), kadm.AlterConfig{Name: "no.such", Value: kmsg.StringPtr("1")}), node, false, kerr.InvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resps kadm.AlterConfigsResponses
			var err error
			if tt.state {
				resps, err = adm.AlterBrokerConfigsState(ctx, tt.configs, tt.brokers...)
			} else {
				resps, err = adm.AlterBrokerConfigs(ctx, tt.configs, tt.brokers...)
			}
			if err == nil && (len(resps) != 1 || !errors.Is(resps[0].Err, tt.want)) {
				t.Fatalf("responses %+v, want %v", resps, tt.want)
			}
			if err != nil && !errors.Is(err, tt.want) {
				// kadm shards by broker; an unknown broker id never reaches us.
				if len(tt.brokers) == 0 || tt.brokers[0] == s.cfg.NodeID {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
			}
			checkUnchanged(t, s, version, "lagged", cfgBefore)
		})
	}

	// validate_only accepts a good change and changes nothing.
	resps, err = adm.ValidateAlterBrokerConfigs(ctx, set("log.retention.ms", "1000"), node...)
	alterOK(t, resps, err)
	resps, err = adm.ValidateAlterBrokerConfigsState(ctx, set("log.retention.ms", "1000"))
	alterOK(t, resps, err)
	checkUnchanged(t, s, version, "lagged", cfgBefore)
}

func checkUnchanged(t *testing.T, s *Server, version int64, topic string, cfg replica.Config) {
	t.Helper()
	if v := s.meta.Image().Version; v != version {
		t.Fatalf("metadata version %d, was %d", v, version)
	}
	if p, _ := s.replicas().Partition(topic, 0); p.Config() != cfg {
		t.Fatalf("partition config changed: %+v, was %+v", p.Config(), cfg)
	}
}

// TestRawBrokerConfigsUnknownBroker: a request naming another broker (which
// kadm would route elsewhere) is INVALID_REQUEST with Kafka's message.
func TestRawBrokerConfigsUnknownBroker(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "7"
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "log.retention.ms", kmsg.StringPtr("1")
	rr.Configs = append(rr.Configs, cfg)
	req.Resources = append(req.Resources, rr)
	resp := c.roundTrip(req, 1).(*kmsg.IncrementalAlterConfigsResponse)
	got := resp.Resources[0]
	if got.ErrorCode != kerr.InvalidRequest.Code || got.ErrorMessage == nil || *got.ErrorMessage != "Unexpected broker id, expected 1, but received 7" {
		t.Fatalf("response %+v (%v)", got, got.ErrorMessage)
	}
	if s.meta.Image().BrokerConfigs("7") != nil {
		t.Fatal("configs stored for another broker")
	}
}

// TestRawDescribeBrokerConfigsReadOnly: on our node id, static settings are
// read-only and dynamic configs are not; kadm does not expose ReadOnly.
func TestRawDescribeBrokerConfigsReadOnly(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	req.Resources = append(req.Resources, rr)
	resp := c.roundTrip(req, 1).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("response %+v", resp.Resources)
	}
	readOnly := map[string]bool{}
	for _, cfg := range resp.Resources[0].Configs {
		readOnly[cfg.Name] = cfg.ReadOnly
	}
	for name, want := range map[string]bool{"log.dirs": true, "node.id": true, "log.retention.ms": false, "log.cleanup.policy": false, "message.max.bytes": false} {
		if got, ok := readOnly[name]; !ok || got != want {
			t.Errorf("%s: read-only %v (listed %v), want %v", name, got, ok, want)
		}
	}
}

// TestBrokerConfigsSurviveRestart: dynamic broker configs are in the
// metadata store and apply to the partitions opened at the next start.
func TestBrokerConfigsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	cfg.Groups.OffsetsTopicPartitions = 4
	s1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, s1)
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	resps, err := adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Name: "log.retention.bytes", Value: kmsg.StringPtr("123456")}}, s1.cfg.NodeID)
	alterOK(t, resps, err)
	resps, err = adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Name: "log.roll.ms", Value: kmsg.StringPtr("3600000")}})
	alterOK(t, resps, err)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, func(c *Config) { c.DataDir = dir })
	p, ok := s2.replicas().Partition("kept", 0)
	if !ok {
		t.Fatal("partition kept-0 not reopened")
	}
	if got := p.Config().Log; got.RetentionBytes != 123456 || got.SegmentMs != 3600000 {
		t.Fatalf("after restart: retention.bytes %d, segment.ms %d", got.RetentionBytes, got.SegmentMs)
	}
	c, ok := brokerConfig(t, newAdmin(t, s2), "log.roll.ms", s2.cfg.NodeID)
	if !ok || c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("described after restart: %+v", c)
	}
}

// TestBrokerRetentionBytesApplied: log.retention.bytes set on the broker
// makes the next retention round delete the old segments of a topic without
// its own retention.bytes, and leaves a topic with one alone.
func TestBrokerRetentionBytesApplied(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.Maintenance.CleanerInterval, c.Maintenance.RetentionCheckInterval = -1, -1 // rounds run by hand
	})
	for _, spec := range []topicSpec{
		{name: "follows", partitions: 1, replicationFactor: 1, configs: map[string]string{"segment.bytes": "1024"}},
		{name: "unlimited", partitions: 1, replicationFactor: 1, configs: map[string]string{"segment.bytes": "1024", "retention.bytes": "-1"}},
	} {
		if _, err := s.createTopic(spec, false); err != nil {
			t.Fatal(err)
		}
	}
	produceKeyed(t, s, "follows", "k", 40, time.Time{})
	produceKeyed(t, s, "unlimited", "k", 40, time.Time{})
	if n := s.ext.maint.retentionRound(); n != 0 {
		t.Fatalf("retention round deleted %d segments before any limit", n)
	}
	adm := newAdmin(t, s)
	resps, err := adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Name: "log.retention.bytes", Value: kmsg.StringPtr("2048")}}, s.cfg.NodeID)
	alterOK(t, resps, err)
	if n := s.ext.maint.retentionRound(); n == 0 {
		t.Fatal("retention round deleted nothing after log.retention.bytes")
	}
	follows, _ := s.replicas().Partition("follows", 0)
	unlimited, _ := s.replicas().Partition("unlimited", 0)
	if follows.LogStartOffset() == 0 || follows.Log().Size() > 2048+1024 {
		t.Fatalf("follows: log start %d, size %d", follows.LogStartOffset(), follows.Log().Size())
	}
	if unlimited.LogStartOffset() != 0 {
		t.Fatal("a topic with its own retention.bytes=-1 lost segments")
	}
}
