package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newAdmin(t *testing.T, s *Server) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAdminCreateTopics(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "orders"); err != nil {
		t.Fatalf("create orders: %v", err)
	}
	tests := []struct {
		name       string
		topic      string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       *kerr.Error
	}{
		{"exists", "orders", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad char", "a b", 1, 1, nil, kerr.InvalidTopicException},
		{"dot", ".", 1, 1, nil, kerr.InvalidTopicException},
		{"dotdot", "..", 1, 1, nil, kerr.InvalidTopicException},
		{"too long", strings.Repeat("x", 250), 1, 1, nil, kerr.InvalidTopicException},
		{"collides", "ord_ers", 1, 1, nil, nil},
		{"collision", "ord.ers", 1, 1, nil, kerr.InvalidTopicException},
		{"zero partitions", "p0", 0, 1, nil, kerr.InvalidPartitions},
		{"rf above brokers", "rf2", 1, 2, nil, kerr.InvalidReplicationFactor},
		{"rf zero", "rf0", 1, 0, nil, kerr.InvalidReplicationFactor},
		{"unknown config", "cfg1", 1, 1, map[string]*string{"no.such.config": kmsg.StringPtr("1")}, kerr.InvalidConfig},
		{"bad config value", "cfg2", 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("soon")}, kerr.InvalidConfig},
		{"null config value", "cfg3", 1, 1, map[string]*string{"retention.ms": nil}, kerr.InvalidConfig},
		{"defaults", "defaults", -1, -1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := adm.CreateTopic(ctx, tt.partitions, tt.rf, tt.configs, tt.topic)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("create %s: %v", tt.topic, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("create %s: err %v, want %v (%v)", tt.topic, err, tt.want, resp.ErrMessage)
			}
		})
	}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := details.Sorted(); len(got) != 3 || got[0].Topic != "defaults" || got[1].Topic != "ord_ers" || len(got[2].Partitions) != 3 {
		t.Fatalf("topics %+v", details.Names())
	}
	if details["orders"].ID.String() == "" || details["orders"].ID == [16]byte{} {
		t.Fatal("topic id missing from Metadata v10+")
	}
}

func TestAdminValidateOnlyChangesNothing(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "ghost"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.meta.Image().Topic("ghost"); ok {
		t.Fatal("validate_only created the topic")
	}
}

func TestAdminDeleteTopics(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "a", "b"); err != nil {
		t.Fatal(err)
	}
	resps, err := adm.DeleteTopics(ctx, "a", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if resps["a"].Err != nil {
		t.Fatalf("delete a: %v", resps["a"].Err)
	}
	if !errors.Is(resps["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete missing: %v", resps["missing"].Err)
	}
	names, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := names.Names(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("topics after delete: %v", got)
	}
	internal, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := internal["__consumer_offsets"]; !ok || !d.IsInternal {
		t.Fatalf("__consumer_offsets not listed as internal: %+v", internal)
	}
	resps, err = adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(resps["__consumer_offsets"].Err, kerr.InvalidTopicException) {
		t.Fatalf("delete __consumer_offsets: %v", resps["__consumer_offsets"].Err)
	}
}

func TestAdminCreatePartitions(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "grow"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		total int
		topic string
		want  *kerr.Error
	}{
		{"grow to 5", 5, "grow", nil},
		{"same count", 5, "grow", kerr.InvalidPartitions},
		{"shrink", 3, "grow", kerr.InvalidPartitions},
		{"unknown topic", 3, "nope", kerr.UnknownTopicOrPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, err := adm.UpdatePartitions(ctx, tt.total, tt.topic)
			if err != nil {
				t.Fatal(err)
			}
			if got := resps[tt.topic].Err; !errors.Is(got, tt.want) && !(tt.want == nil && got == nil) {
				t.Fatalf("err %v, want %v", got, tt.want)
			}
		})
	}
	tp, _ := s.meta.Image().Topic("grow")
	if len(tp.Partitions) != 5 {
		t.Fatalf("%d partitions, want 5", len(tp.Partitions))
	}
}

func TestAdminConfigs(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "cfg"); err != nil {
		t.Fatal(err)
	}
	describe := func(name string) *kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		for i := range rc.Configs {
			if rc.Configs[i].Key == name {
				return &rc.Configs[i]
			}
		}
		t.Fatalf("config %s not described", name)
		return nil
	}
	if c := describe("retention.ms"); c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms %q from %v", c.MaybeValue(), c.Source)
	}
	if c := describe("segment.bytes"); c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes %q from %v", c.MaybeValue(), c.Source)
	}

	tests := []struct {
		name    string
		alter   []kadm.AlterConfig
		want    *kerr.Error
		key     string
		wantVal string
	}{
		{"set", []kadm.AlterConfig{{Name: "max.message.bytes", Value: kmsg.StringPtr("2000")}}, nil, "max.message.bytes", "2000"},
		{"delete returns to default", []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, nil, "retention.ms", "604800000"},
		{"append list", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}}, nil, "cleanup.policy", "delete,compact"},
		{"subtract list", []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}}, nil, "cleanup.policy", "compact"},
		{"unknown", []kadm.AlterConfig{{Name: "no.such", Value: kmsg.StringPtr("1")}}, kerr.InvalidConfig, "", ""},
		{"bad value", []kadm.AlterConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("big")}}, kerr.InvalidConfig, "", ""},
		{"append to non-list", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")}}, kerr.InvalidConfig, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, err := adm.AlterTopicConfigs(ctx, tt.alter, "cfg")
			if err != nil {
				t.Fatal(err)
			}
			r, err := resps.On("cfg", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil {
				if !errors.Is(r.Err, tt.want) {
					t.Fatalf("err %v, want %v", r.Err, tt.want)
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if got := describe(tt.key).MaybeValue(); got != tt.wantVal {
				t.Fatalf("%s = %q, want %q", tt.key, got, tt.wantVal)
			}
		})
	}

	// Changes reach the live partitions.
	resps0, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("12345")}}, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps0.On("cfg", nil); r.Err != nil {
		t.Fatal(r.Err)
	}
	if p, ok := s.replicas().Partition("cfg", 0); !ok || p.Config().Log.RetentionMs != 12345 {
		t.Fatalf("live partition config not updated (found %v)", ok)
	}

	// Legacy AlterConfigs replaces the whole set.
	resps, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: kmsg.StringPtr("5000")}}, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps.On("cfg", nil); r.Err != nil {
		t.Fatal(r.Err)
	}
	if c := describe("max.message.bytes"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("max.message.bytes kept its override after a full replace: %q", c.MaybeValue())
	}
	if c := describe("retention.bytes"); c.MaybeValue() != "5000" {
		t.Fatalf("retention.bytes %q", c.MaybeValue())
	}

	// Unknown topics and broker configs.
	rcs, err := adm.DescribeTopicConfigs(ctx, "nope")
	if err == nil {
		if rc, _ := rcs.On("nope", nil); !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("describe unknown topic: %v", rc.Err)
		}
	}
	bcs, err := adm.DescribeBrokerConfigs(ctx, s.cfg.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if len(bcs) != 1 || bcs[0].Err != nil || len(bcs[0].Configs) == 0 {
		t.Fatalf("broker configs %+v", bcs)
	}
}

func TestDescribeCluster(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 1
	resp := c.roundTrip(req, 1).(*kmsg.DescribeClusterResponse)
	im := s.meta.Image()
	if resp.ErrorCode != 0 || resp.ClusterID != im.ClusterID || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 {
		t.Fatalf("describe cluster %+v", resp)
	}
	if resp.Brokers[0].Port == 0 || resp.Brokers[0].Host != "127.0.0.1" {
		t.Fatalf("advertised %s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port)
	}
}

func TestDescribeLogDirs(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "sized"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.DefaultProduceTopic("sized"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 1000), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[s.cfg.NodeID]
	if len(dirs) != 1 {
		t.Fatalf("%d log dirs, want 1", len(dirs))
	}
	for _, d := range dirs {
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		p0, ok0 := d.Topics.Lookup("sized", 0)
		p1, ok1 := d.Topics.Lookup("sized", 1)
		if !ok0 || !ok1 || p0.Size != 0 || p1.Size < 1000 {
			t.Fatalf("sizes: p0 %+v (%v) p1 %+v (%v)", p0, ok0, p1, ok1)
		}
		if d.TotalBytes <= 0 || d.UsableBytes <= 0 {
			t.Fatalf("disk space %d/%d", d.UsableBytes, d.TotalBytes)
		}
	}
	one, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"sized": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range one[s.cfg.NodeID] {
		if _, ok := d.Topics.Lookup("sized", 0); ok {
			t.Fatal("partition 0 described, only 1 was asked for")
		}
	}
}

func TestCreateTopicsReplicaAssignment(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	assign := func(parts ...[]int32) []kmsg.CreateTopicsRequestTopicReplicaAssignment {
		var out []kmsg.CreateTopicsRequestTopicReplicaAssignment
		for i, rs := range parts {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), rs
			out = append(out, a)
		}
		return out
	}
	tests := []struct {
		name       string
		partitions int32
		rf         int16
		assignment []kmsg.CreateTopicsRequestTopicReplicaAssignment
		want       *kerr.Error
		wantParts  int32
	}{
		{"on this node", -1, -1, assign([]int32{1}, []int32{1}), nil, 2},
		{"unknown broker", -1, -1, assign([]int32{2}), kerr.InvalidReplicaAssignment, 0},
		{"broker twice", -1, -1, assign([]int32{1, 1}), kerr.InvalidReplicaAssignment, 0},
		{"uneven replication", -1, -1, assign([]int32{1}, []int32{}), kerr.InvalidReplicaAssignment, 0},
		{"with a partition count", 2, -1, assign([]int32{1}), kerr.InvalidRequest, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = 7
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = fmt.Sprintf("assigned-%d", i)
			rt.NumPartitions, rt.ReplicationFactor, rt.ReplicaAssignment = tt.partitions, tt.rf, tt.assignment
			req.Topics = append(req.Topics, rt)
			resp := c.roundTrip(req, int32(i)).(*kmsg.CreateTopicsResponse)
			got := resp.Topics[0]
			if tt.want == nil {
				if got.ErrorCode != 0 || got.NumPartitions != tt.wantParts || got.TopicID == [16]byte{} {
					t.Fatalf("created %+v", got)
				}
				return
			}
			if got.ErrorCode != tt.want.Code || got.ErrorMessage == nil {
				t.Fatalf("error %d (%v), want %s", got.ErrorCode, got.ErrorMessage, tt.want.Message)
			}
		})
	}
}
