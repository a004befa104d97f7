package broker

// Version notes (Fetch, key 1):
//   - Served 4-12: v4 adds IsolationLevel, LastStableOffset and
//     AbortedTransactions, v5 LogStartOffset, v7 fetch sessions (KIP-227),
//     v9 CurrentLeaderEpoch, v11 Rack/PreferredReadReplica, v12 is flexible.
//     13+ names topics by id (KIP-516) and is not served.
//   - Fetch sessions (v7+, KIP-227; fetchsession.go and
//     broker/internal/fetchsession): SessionEpoch 0 opens one with a full
//     fetch (SessionID 0 in the answer when Config.FetchSessionSlots has no
//     room), a later epoch sends only changed partitions and is answered
//     only with partitions that have news, -1 is a fetch without one. A
//     long poll waits on every partition of the session.
//   - Consumers read committed data only: up to the high watermark
//     (read_uncommitted) or up to the last stable offset, the first offset
//     of the oldest open transaction (read_committed, IsolationLevel 1),
//     which then also gets the aborted transactions overlapping the data
//     returned (txn.go). With no open transaction both read the same.
//   - A fetch starts at the batch that contains FetchOffset and returns
//     whole batches within PartitionMaxBytes and MaxBytes, except that the
//     first batch of the response is whole even when larger (KIP-74).
//   - Long polling: with fewer than MinBytes (> 0) available and MaxWaitMillis >
//     0, the request waits in the fetch purgatory until appends make
//     MinBytes available or the wait passes; no goroutine waits with it.
//     As in Kafka, it also completes as soon as a partition's data runs
//     past the segment holding its fetch offset: a partition's answer
//     comes from one segment, so more data there would not enlarge it.
//   - Record batches are written from the segment files with sendfile.
//   - CurrentLeaderEpoch (v9+, KIP-320): older than the partition's epoch
//     is FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH, -1 skips the
//     check.
//   - ReplicaID >= 0 is a follower's fetch (versions below 15): its
//     FetchOffset is its log end offset, which may advance the high
//     watermark, and it reads up to the leader's log end offset, committed
//     or not; appends wake its long poll. The ISR is not grown from these
//     fetches yet: that is the controller's (AlterPartition).

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/internal/fetchsession"
	"github.com/weir-broker/weir/broker/replica"
	"github.com/weir-broker/weir/broker/wire"
	"github.com/weir-broker/weir/log"
)

func handleFetch(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.FetchRequest)
	op := &fetchOp{s: s, r: r, req: req}
	if req.Version >= 7 {
		if err := op.beginSession(); err != nil {
			return wire.Response{Body: sessionErrorBody(req, err)}, nil
		}
	}
	// A consumer that has caught up parks without building an answer that
	// would be thrown away.
	if !op.mustWait() {
		found := op.read()
		// MinBytes <= 0 asks for an immediate answer, as in Kafka.
		if op.req.MaxWaitMillis <= 0 || found.bytes >= int64(op.req.MinBytes) || found.failed {
			return wire.Response{Body: op.answer(found)}, nil
		}
		found.release()
	}
	deadline := s.replicas().Now().Add(time.Duration(op.req.MaxWaitMillis) * time.Millisecond)
	// If data arrived meanwhile, OnComplete responds before this returns.
	s.replicas().DelayFetch(op, deadline, op.partitions())
	return wire.Response{Deferred: true}, nil
}

// partitions lists the partitions of the request, the purgatory's keys.
func (o *fetchOp) partitions() []replica.TopicPartition {
	var tps []replica.TopicPartition
	for _, rt := range o.req.Topics {
		for _, rp := range rt.Partitions {
			tps = append(tps, replica.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
		}
	}
	return tps
}

// mustWait reports, without reading anything, that a consumer's long-poll
// fetch would find less than MinBytes and no error, so that it can wait in
// the purgatory at once. A follower's fetch is always read first: the read
// records the follower's offset, which may move the high watermark.
func (o *fetchOp) mustWait() bool {
	if o.req.ReplicaID >= 0 || o.req.MaxWaitMillis <= 0 || o.req.MinBytes <= 0 {
		return false
	}
	return !o.ready(true)
}

// fetchOp is a fetch request; parked in the purgatory while it waits for
// MinBytes.
type fetchOp struct {
	s *Server
	r *wire.Request
	// req is what is fetched: the request, or for an incremental fetch
	// the partitions of its session (fetchsession.go).
	req *kmsg.FetchRequest
	// session is the request's session context (v7+), and slot maps each
	// partition of req, topic by topic, to its index in session.Parts.
	session *fetchsession.Context
	slot    [][]int
}

// TryComplete implements purgatory.Operation: enough committed bytes past
// the fetch offsets, a partition that now answers with an error, or one
// whose data runs past the segment of its fetch offset (a read stops at a
// segment's end, so waiting would not fill the answer; as Kafka's
// DelayedFetch).
func (o *fetchOp) TryComplete() bool { return o.ready(false) }

// ready walks the request's partitions once and reports whether the fetch
// should be answered now: MinBytes are available, or a partition is gone
// (or, with checkEpoch, fails the leader epoch check), or its data runs
// past its segment.
func (o *fetchOp) ready(checkEpoch bool) bool {
	need := int64(max(o.req.MinBytes, 1))
	var have int64
	for _, rt := range o.req.Topics {
		for _, rp := range rt.Partitions {
			p, ok := o.s.replicas().Partition(rt.Topic, rp.Partition)
			if !ok || checkEpoch && o.req.Version >= 9 && checkLeaderEpoch(p, rp.CurrentLeaderEpoch) != nil {
				return true // read answers it with the error
			}
			limit := int(min(int64(rp.PartitionMaxBytes), need-have))
			var n int64
			var complete bool
			if o.req.ReplicaID < 0 && o.req.IsolationLevel == 1 {
				n, complete = p.AvailableStableBytes(rp.FetchOffset, limit)
			} else {
				n, complete = p.AvailableBytes(rp.FetchOffset, limit, o.req.ReplicaID >= 0)
			}
			have += n
			if complete || have >= need {
				return true
			}
		}
	}
	return false
}

// OnComplete implements purgatory.Operation: read again and respond.
func (o *fetchOp) OnComplete(bool) {
	o.r.Respond(wire.Response{Body: o.answer(o.read())})
}

// fetched is what read found: the answer before sessions leave partitions
// out, the file regions of each partition's records, and what releases
// them.
type fetched struct {
	resp     *kmsg.FetchResponse
	regions  [][][]fileRegion
	releases []func()
	bytes    int64 // record bytes
	failed   bool  // a partition is answered with an error
}

// release gives back the regions of an answer that is not sent.
func (f *fetched) release() {
	for _, r := range f.releases {
		r()
	}
}

// read serves the request as it stands now.
func (o *fetchOp) read() *fetched {
	req := o.req
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, len(req.Topics))
	budget := int64(req.MaxBytes)
	if req.MaxBytes <= 0 {
		budget = 1<<31 - 1
	}
	f := &fetched{resp: resp, regions: make([][][]fileRegion, len(req.Topics))}
	for ti, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, len(rt.Partitions))
		f.regions[ti] = make([][]fileRegion, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			rr, aborted, err := o.readPartition(rt.Topic, rp, budget-f.bytes, f.bytes == 0)
			if err == nil {
				sp.AbortedTransactions = appendAborted(sp.AbortedTransactions, aborted)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = rr.HighWatermark, rr.LastStableOffset, rr.LogStartOffset
				if rr.Log != nil {
					for _, g := range rr.Log.Regions {
						f.regions[ti][pi] = append(f.regions[ti][pi], fileRegion{file: g.File, pos: g.Pos, size: g.Size, data: g.Data})
					}
					f.bytes += rr.Bytes()
					f.releases = append(f.releases, rr.Release)
				}
			} else {
				sp.ErrorCode = errorCode(err)
				if errors.Is(err, log.ErrOffsetOutOfRange) {
					// The client resets from these.
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = rr.HighWatermark, rr.LastStableOffset, rr.LogStartOffset
				}
				f.failed = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return f
}

// answer encodes what read found as the response that is sent, after the
// session (if any) has left out the partitions without news.
func (o *fetchOp) answer(f *fetched) *fetchBody {
	if o.session != nil {
		o.finishSession(f)
	}
	body := encodeFetchBody(f.resp, o.req.Version, f.regions)
	body.releases = f.releases
	return body
}

// readPartition reads one partition within limit bytes (and its own
// PartitionMaxBytes). Only the first partition that returns data may exceed
// the limit with a single whole batch (KIP-74); a later one whose first batch
// does not fit returns none.
func (o *fetchOp) readPartition(topic string, rp kmsg.FetchRequestTopicPartition, limit int64, first bool) (replica.ReadResult, []log.AbortedTxn, error) {
	p, err := o.s.dataPartition(topic, rp.Partition, false)
	if err == nil && o.req.Version >= 9 {
		err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
	}
	if err != nil {
		return replica.ReadResult{}, nil, err
	}
	maxBytes := min(int64(rp.PartitionMaxBytes), limit)
	if first {
		maxBytes = max(maxBytes, 1)
	}
	var r replica.ReadResult
	var aborted []log.AbortedTxn
	switch {
	case o.req.ReplicaID >= 0:
		r, err = p.ReadReplica(o.req.ReplicaID, rp.FetchOffset, int(max(maxBytes, 0)))
	case o.req.IsolationLevel == 1:
		r, aborted, err = p.ReadCommitted(rp.FetchOffset, int(max(maxBytes, 0)))
	default:
		r, err = p.Read(rp.FetchOffset, int(max(maxBytes, 0)))
	}
	if err != nil {
		return r, nil, err
	}
	if !first && r.Bytes() > maxBytes {
		r.Release()
		aborted = nil
	}
	return r, aborted, nil
}

// checkLeaderEpoch compares a client's view of the leader epoch with the
// partition's (KIP-320); -1 means the client does not know it.
func checkLeaderEpoch(p *replica.Partition, current int32) error {
	if current < 0 {
		return nil
	}
	switch epoch := p.LeaderEpoch(); {
	case current < epoch:
		return kerr.FencedLeaderEpoch
	case current > epoch:
		return kerr.UnknownLeaderEpoch
	}
	return nil
}
