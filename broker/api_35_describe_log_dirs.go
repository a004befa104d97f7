package broker

// Version notes
//
// DescribeLogDirs v0-v4 (advertised 0-4). One log directory: the data
// directory. v1 is identical to v0, v2 is flexible, v3 adds a top-level
// ErrorCode, v4 the directory's total and usable bytes. A null topic list
// describes every partition; requested topics or partitions this broker
// does not host are left out, as Kafka does. OffsetLag is 0 (no future
// replicas) and IsFuture is false. v5 (cordoned dirs) is not advertised.

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleDescribeLogDirs(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = s.cfg.DataDir
	if abs, err := filepath.Abs(s.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = diskSpace(s.cfg.DataDir)

	want := func(topic string, partition int32) bool { return true }
	if req.Topics != nil {
		asked := map[string][]int32{}
		for _, t := range req.Topics {
			asked[t.Topic] = append(asked[t.Topic], t.Partitions...)
		}
		want = func(topic string, partition int32) bool {
			ps, ok := asked[topic]
			return ok && slices.Contains(ps, partition)
		}
	}
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	m := s.replicas()
	if m != nil {
		for _, p := range m.Partitions() {
			tp := p.TopicPartition()
			if !want(tp.Topic, tp.Partition) {
				continue
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = tp.Partition, p.Log().Size()
			byTopic[tp.Topic] = append(byTopic[tp.Topic], rp)
		}
	}
	for topic, ps := range byTopic {
		slices.SortFunc(ps, func(a, b kmsg.DescribeLogDirsResponseDirTopicPartition) int { return int(a.Partition - b.Partition) })
		t := kmsg.NewDescribeLogDirsResponseDirTopic()
		t.Topic, t.Partitions = topic, ps
		dir.Topics = append(dir.Topics, t)
	}
	slices.SortFunc(dir.Topics, func(a, b kmsg.DescribeLogDirsResponseDirTopic) int { return strings.Compare(a.Topic, b.Topic) })
	resp.Dirs = append(resp.Dirs, dir)
	return wire.Response{Msg: resp}, nil
}
