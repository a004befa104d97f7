package broker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
)

func metadataReq(version int16, allowAuto bool, topics ...*string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	req.AllowAutoTopicCreation = allowAuto
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = t
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func mustCreate(t *testing.T, s *Server, name string, partitions int32) *metadata.Topic {
	t.Helper()
	tp, err := s.createTopic(topicSpec{name: name, partitions: partitions, replicationFactor: 1}, false)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return tp
}

func TestMetadataAllTopicsSemantics(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
	mustCreate(t, s, "a", 2)
	mustCreate(t, s, "b", 1)
	c := dialRaw(t, s)
	// "All topics" includes the internal __consumer_offsets (IsInternal).
	tests := []struct {
		name   string
		req    *kmsg.MetadataRequest
		topics int
	}{
		{"v0 empty list means all", metadataReq(0, false, []*string{}...), 3},
		{"v1 null means all", metadataReq(1, false), 3},
		{"v1 empty means none", metadataReq(1, false, []*string{}...), 0},
		{"v9 null means all", metadataReq(9, false), 3},
		{"v11 empty means none", metadataReq(11, false, []*string{}...), 0},
		{"v4 one topic", metadataReq(4, false, kmsg.StringPtr("a")), 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.roundTrip(tt.req, int32(i)).(*kmsg.MetadataResponse)
			if len(resp.Topics) != tt.topics {
				t.Fatalf("%d topics, want %d", len(resp.Topics), tt.topics)
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Port == 0 {
				t.Fatalf("brokers %+v", resp.Brokers)
			}
			for _, rt := range resp.Topics {
				if rt.ErrorCode != 0 {
					t.Fatalf("topic %v error %d", rt.Topic, rt.ErrorCode)
				}
				if tt.req.Version >= 10 && rt.TopicID == [16]byte{} {
					t.Fatalf("topic %s without id at v%d", *rt.Topic, tt.req.Version)
				}
			}
			if tt.req.Version >= 2 && (resp.ClusterID == nil || *resp.ClusterID != s.meta.Image().ClusterID) {
				t.Fatalf("cluster id %v", resp.ClusterID)
			}
		})
	}
}

// TestMetadataAutoCreate checks Kafka's behaviour: the request that creates
// a topic gets LEADER_NOT_AVAILABLE, the next one sees it.
func TestMetadataAutoCreate(t *testing.T) {
	tests := []struct {
		name       string
		autoCreate bool
		version    int16
		allow      bool
		topic      string
		first      *kerr.Error
		second     *kerr.Error
	}{
		{"v4 allowed", true, 4, true, "auto1", kerr.LeaderNotAvailable, nil},
		{"v4 not allowed by client", true, 4, false, "auto2", kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{"v0 follows broker setting", true, 0, false, "auto3", kerr.LeaderNotAvailable, nil},
		{"broker setting off", false, 9, true, "auto4", kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{"invalid name", true, 9, true, "bad/name", kerr.InvalidTopicException, kerr.InvalidTopicException},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.AutoCreateTopics = tt.autoCreate; c.DefaultPartitions = 3 })
			c := dialRaw(t, s)
			for i, want := range []*kerr.Error{tt.first, tt.second} {
				req := metadataReq(tt.version, tt.allow, kmsg.StringPtr(tt.topic))
				resp := c.roundTrip(req, int32(i)).(*kmsg.MetadataResponse)
				got := resp.Topics[0]
				if code := got.ErrorCode; (want == nil && code != 0) || (want != nil && code != want.Code) {
					t.Fatalf("request %d: error %d, want %v", i+1, code, want)
				}
				if want == nil && len(got.Partitions) != 3 {
					t.Fatalf("request %d: %d partitions, want 3", i+1, len(got.Partitions))
				}
			}
		})
	}
}

func TestMetadataByTopicID(t *testing.T) {
	s := startServer(t)
	tp := mustCreate(t, s, "byid", 1)
	c := dialRaw(t, s)
	req := metadataReq(10, false)
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: tp.ID}, {TopicID: [16]byte{1}}}
	resp := c.roundTrip(req, 1).(*kmsg.MetadataResponse)
	if got := resp.Topics[0]; got.ErrorCode != 0 || got.Topic == nil || *got.Topic != "byid" {
		t.Fatalf("by id: %+v", got)
	}
	if got := resp.Topics[1]; got.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown id: error %d", got.ErrorCode)
	}
}

func TestMetadataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	s1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tp, err := s1.createTopic(topicSpec{name: "kept", partitions: 2, replicationFactor: 1, configs: map[string]string{"retention.ms": "5000"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := New(cfg)
	if err := second.Start(context.Background()); err == nil {
		second.Close()
		t.Fatal("a second server started on a locked data directory")
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t, func(c *Config) { c.DataDir = dir })
	got, ok := s2.meta.Image().Topic("kept")
	if !ok || got.ID != tp.ID || len(got.Partitions) != 2 || got.Configs["retention.ms"] != "5000" {
		t.Fatalf("after restart: %+v", got)
	}
	if _, ok := s2.replicas().Partition("kept", 1); !ok {
		t.Fatal("partition kept-1 not reopened")
	}
}
