package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/internal/fetchsession"
)

// beginSession applies a Fetch request's session fields (v7+, KIP-227),
// leaving o.session nil for a fetch that neither has nor wants a session
// (sarama, kafka-go, librdkafka). For an incremental fetch it replaces o.req with a request for every
// partition of the session, as the session now stands.
func (o *fetchOp) beginSession() error {
	req := o.req
	if req.SessionEpoch == fetchsession.FinalEpoch && req.SessionID == 0 {
		return nil // no session to close or open: served as before v7
	}
	var parts []fetchsession.Part
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			parts = append(parts, fetchsession.Part{
				Key: fetchsession.Key{Topic: rt.Topic, Partition: rp.Partition},
				Want: fetchsession.Want{
					FetchOffset:        rp.FetchOffset,
					LogStartOffset:     rp.LogStartOffset,
					MaxBytes:           rp.PartitionMaxBytes,
					CurrentLeaderEpoch: rp.CurrentLeaderEpoch,
				},
			})
		}
	}
	var forgotten []fetchsession.Key
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			forgotten = append(forgotten, fetchsession.Key{Topic: ft.Topic, Partition: p})
		}
	}
	ctx, err := o.s.fetchSessions.Begin(req.SessionID, req.SessionEpoch, parts, forgotten, o.s.replicas().Now())
	if err != nil {
		return err
	}
	o.session = ctx
	if req.SessionEpoch > 0 {
		o.req, o.slot = sessionRequest(req, ctx.Parts())
		return nil
	}
	// A full fetch: the session's partitions are the request's, in order.
	o.slot = make([][]int, len(req.Topics))
	i := 0
	for ti, rt := range req.Topics {
		o.slot[ti] = make([]int, len(rt.Partitions))
		for pi := range rt.Partitions {
			o.slot[ti][pi] = i
			i++
		}
	}
	return nil
}

// sessionRequest returns a copy of req that fetches parts, grouped by
// topic in the order topics first appear, and where each partition of it
// is in parts.
func sessionRequest(req *kmsg.FetchRequest, parts []fetchsession.Part) (*kmsg.FetchRequest, [][]int) {
	eff := *req
	eff.Topics, eff.ForgottenTopics = nil, nil
	var slot [][]int
	topicAt := make(map[string]int)
	for i, p := range parts {
		ti, ok := topicAt[p.Topic]
		if !ok {
			ti = len(eff.Topics)
			topicAt[p.Topic] = ti
			t := kmsg.NewFetchRequestTopic()
			t.Topic = p.Topic
			eff.Topics = append(eff.Topics, t)
			slot = append(slot, nil)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.Partition
		rp.FetchOffset = p.FetchOffset
		rp.LogStartOffset = p.LogStartOffset
		rp.PartitionMaxBytes = p.MaxBytes
		rp.CurrentLeaderEpoch = p.CurrentLeaderEpoch
		eff.Topics[ti].Partitions = append(eff.Topics[ti].Partitions, rp)
		slot[ti] = append(slot[ti], i)
	}
	return &eff, slot
}

// finishSession tells the session what f found, sets the answer's
// SessionID and leaves out the partitions (and topics) without news.
func (o *fetchOp) finishSession(f *fetched) {
	found := make([]fetchsession.Found, len(o.session.Parts()))
	for ti := range f.resp.Topics {
		for pi := range f.resp.Topics[ti].Partitions {
			sp := &f.resp.Topics[ti].Partitions[pi]
			found[o.slot[ti][pi]] = fetchsession.Found{
				HighWatermark:    sp.HighWatermark,
				LastStableOffset: sp.LastStableOffset,
				LogStartOffset:   sp.LogStartOffset,
				Records:          len(f.regions[ti][pi]) > 0 || len(sp.RecordBatches) > 0,
				Failed:           sp.ErrorCode != 0,
			}
		}
	}
	id, include := o.session.Finish(found, o.s.replicas().Now())
	f.resp.SessionID = id
	topics := f.resp.Topics[:0]
	regions := f.regions[:0]
	for ti, t := range f.resp.Topics {
		parts := t.Partitions[:0]
		rs := f.regions[ti][:0]
		for pi, sp := range t.Partitions {
			if include[o.slot[ti][pi]] {
				parts = append(parts, sp)
				rs = append(rs, f.regions[ti][pi])
			}
		}
		if len(parts) == 0 {
			continue
		}
		t.Partitions = parts
		topics = append(topics, t)
		regions = append(regions, rs)
	}
	f.resp.Topics, f.regions = topics, regions
}

// sessionErrorBody is the answer to a fetch whose session is unknown or
// out of step: the error, SessionID 0 and no partitions, as Kafka answers.
func sessionErrorBody(req *kmsg.FetchRequest, err error) *fetchBody {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
	if errors.Is(err, fetchsession.ErrSessionNotFound) {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
	}
	return encodeFetchBody(resp, req.Version, nil)
}
