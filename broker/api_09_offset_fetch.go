package broker

// Version notes (OffsetFetch, key 9):
//   - Advertised 1-8 (librdkafka 2.0.2, kafka-go and kafka-python use v1;
//     Kafka 4 dropped v0). v2 adds a top-level error code and a null topic
//     list meaning every committed partition, v5 the leader epoch, v6 is
//     flexible, v7 RequireStable (KIP-447: a partition whose offset an open
//     transaction holds answers UNSTABLE_OFFSET_COMMIT, so the member
//     retries once the transaction ends), v8 batches groups. v9+ (KIP-848 member epochs) not served.
//   - A partition without a committed offset, or an unknown group, answers
//     offset -1 with no error, as Kafka does.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/wire"
)

func handleOffsetFetch(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			var topics []fetchTopic
			if rg.Topics != nil {
				topics = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, fetchTopic{t.Topic, t.Partitions})
				}
			}
			res, err := s.fetchOffsets(rg.Group, topics)
			g.ErrorCode = errorCode(err)
			for _, t := range res {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.Topic
				for _, p := range t.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					if req.RequireStable && gp.ErrorCode == 0 && s.txnOffsetPending(rg.Group, t.Topic, p.Partition) {
						gp.ErrorCode = kerr.UnstableOffsetCommit.Code
					}
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return wire.Response{Msg: resp}, nil
	}
	var topics []fetchTopic
	if req.Topics != nil || req.Version < 2 {
		topics = make([]fetchTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			topics = append(topics, fetchTopic{t.Topic, t.Partitions})
		}
	}
	res, err := s.fetchOffsets(req.Group, topics)
	if err != nil && req.Version < 2 {
		// No top-level code before v2: every partition carries it.
		for i := range res {
			for j := range res[i].Partitions {
				res[i].Partitions[j].ErrorCode = errorCode(err)
			}
		}
	}
	if req.Version >= 7 && req.RequireStable {
		for i := range res {
			for j := range res[i].Partitions {
				if p := &res[i].Partitions[j]; p.ErrorCode == 0 && s.txnOffsetPending(req.Group, res[i].Topic, p.Partition) {
					p.ErrorCode = kerr.UnstableOffsetCommit.Code
				}
			}
		}
	}
	resp.ErrorCode = errorCode(err)
	resp.Topics = res
	return wire.Response{Msg: resp}, nil
}

type fetchTopic struct {
	topic      string
	partitions []int32
}

// fetchOffsets answers one group: the asked partitions (offset -1 when
// none is committed) or, with topics nil, every committed one.
func (s *Server) fetchOffsets(groupID string, topics []fetchTopic) ([]kmsg.OffsetFetchResponseTopic, error) {
	var out []kmsg.OffsetFetchResponseTopic
	var tps []group.TopicPartition
	for _, t := range topics {
		for _, p := range t.partitions {
			tps = append(tps, group.TopicPartition{Topic: t.topic, Partition: p})
		}
	}
	if topics != nil && tps == nil {
		tps = []group.TopicPartition{}
	}
	c, err := s.coordinator()
	var offs []group.TopicOffset
	if err == nil {
		offs, err = c.FetchOffsets(groupID, tps)
	}
	found := make(map[group.TopicPartition]group.Offset, len(offs))
	for _, o := range offs {
		found[o.TopicPartition] = o.Offset
	}
	if topics == nil {
		// Every committed partition, grouped by topic (offs is sorted).
		for _, o := range offs {
			if len(out) == 0 || out[len(out)-1].Topic != o.Topic {
				t := kmsg.NewOffsetFetchResponseTopic()
				t.Topic = o.Topic
				out = append(out, t)
			}
			t := &out[len(out)-1]
			t.Partitions = append(t.Partitions, fetchPartition(o.Partition, o.Offset, true))
		}
		return out, err
	}
	for _, ft := range topics {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = ft.topic
		for _, p := range ft.partitions {
			o, ok := found[group.TopicPartition{Topic: ft.topic, Partition: p}]
			t.Partitions = append(t.Partitions, fetchPartition(p, o, ok))
		}
		out = append(out, t)
	}
	return out, err
}

func fetchPartition(p int32, o group.Offset, ok bool) kmsg.OffsetFetchResponseTopicPartition {
	rp := kmsg.NewOffsetFetchResponseTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, -1, -1, kmsg.StringPtr("")
	if ok {
		rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Offset, o.LeaderEpoch, kmsg.StringPtr(o.Metadata)
	}
	return rp
}
