package broker

// Version notes (Produce, key 0):
//   - Advertised 0-9. Versions 0-2 carry message sets of magic 0/1, which
//     Weir does not store: every partition answers UNSUPPORTED_FOR_MESSAGE_FORMAT
//     (acks=0 closes the connection, having no response to carry it). They
//     are advertised only because librdkafka < 2.11 enables compression when
//     Produce v0 is listed (KAFKA-18659, as Kafka 4 does).
//   - v3+: magic 2 batches; v3 adds TransactionalID, v5 LogStartOffset, v8
//     ErrorRecords/ErrorMessage, v9 is flexible. 10+ (KIP-890/KIP-951) not
//     served.
//   - acks 0 sends nothing (a partition error closes the connection, as
//     Kafka does, so the client refreshes its metadata); 1 answers after
//     the local append; -1 (all) waits in the produce purgatory until the
//     high watermark passes every appended batch, at most TimeoutMillis.
//   - Internal topics (__consumer_offsets) refuse client produces
//     (INVALID_TOPIC_EXCEPTION).
//   - A transactional batch must carry the request's TransactionalID and
//     go to a partition added to that id's ongoing transaction, else
//     INVALID_TXN_STATE (txn.go); control batches from producers are
//     INVALID_RECORD.
//   - An idempotent retry of a batch still cached answers the original
//     base offset (log.AppendResult.Duplicate).

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/replica"
	"github.com/weir-broker/weir/broker/wire"
	"github.com/weir-broker/weir/log/batch"
)

func handleProduce(s *Server, r *wire.Request) (wire.Response, error) {
	req := r.Msg.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.Version < 3 && req.Acks == 0 {
		return wire.Response{}, fmt.Errorf("broker: produce v%d with acks=0: message format below v2 is not supported", req.Version)
	}
	var fail error
	switch {
	case req.Version < 3:
		fail = kerr.UnsupportedForMessageFormat
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		fail = kerr.InvalidRequiredAcks
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	var appends []produceAppend
	var appendBytes int
	for ti, rt := range req.Topics {
		st := &resp.Topics[ti]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			err := fail
			if err == nil && isInternalTopic(rt.Topic) {
				err = kafkaError(kerr.InvalidTopicException, "cannot append to internal topic %s", rt.Topic)
			}
			if err != nil {
				setProduceError(sp, req.Version, err)
				continue
			}
			appends = append(appends, produceAppend{topic: ti, part: pi, records: rp.Records})
			appendBytes += len(rp.Records)
		}
	}
	do := func(a *produceAppend) {
		rt := &req.Topics[a.topic]
		sp := &resp.Topics[a.topic].Partitions[a.part]
		p, err := s.dataPartition(rt.Topic, sp.Partition, true)
		if err == nil {
			res := appendOutcome{base: -1, last: -1, appendTime: -1, logStart: -1}
			err = s.checkTxnProduce(req.TransactionID, rt.Topic, sp.Partition, a.records, func() (err error) {
				res, err = appendRecords(p, a.records, req.Acks, r.BlockSums())
				return err
			})
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.base, res.appendTime, res.logStart
			a.p, a.last = p, res.last
		}
		a.err = err
		setProduceError(sp, req.Version, err)
		if rejectedInput(sp.ErrorCode) {
			s.logger.Warn("produce rejected", "remote", fmt.Sprint(r.Remote), "client_id", r.ClientID,
				"topic", rt.Topic, "partition", sp.Partition, "err", err)
		}
	}
	runAppends(appends, appendBytes, do)
	var waits []ackWait
	if req.Acks == -1 {
		for _, a := range appends {
			if a.err == nil {
				waits = append(waits, ackWait{topic: a.topic, part: a.part, p: a.p, last: a.last})
			}
		}
	}
	if req.Acks == 0 {
		// No response to carry an error: close the connection so the
		// client refreshes its metadata, as Kafka does.
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					return wire.Response{}, fmt.Errorf("broker: acks=0 produce to %s-%d failed: %w", st.Topic, sp.Partition, kerr.ErrorForCode(sp.ErrorCode))
				}
			}
		}
		return wire.Response{None: true}, nil
	}
	if len(waits) == 0 {
		return wire.Response{Msg: resp}, nil
	}
	if acksCommitted(waits) {
		// Committed already (one node: always): answer without parking.
		settleAcks(resp, req.Version, waits)
		return wire.Response{Msg: resp}, nil
	}
	op := &produceOp{r: r, resp: resp, version: req.Version, waits: waits}
	tps := make([]replica.TopicPartition, len(waits))
	for i, w := range waits {
		tps[i] = w.p.TopicPartition()
	}
	deadline := s.replicas().Now().Add(time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond)
	// If it can complete at once, OnComplete responds before this returns.
	s.replicas().DelayProduce(op, deadline, tps)
	return wire.Response{Deferred: true}, nil
}

// releaseProduceFrame is the connections' wire.ConnConfig.ReleaseFrame:
// only a Produce frame may be reused once its handler has returned. By then
// the records are in the segment files (a parked acks=all produce waits
// with offsets, not records) and kmsg has copied every string; it drops the
// request's slices of the frame so that nothing can read them later. Other
// handlers keep slices of their frames (the group coordinator keeps
// JoinGroup protocol metadata and SyncGroup assignments).
func releaseProduceFrame(r *wire.Request) bool {
	req, ok := r.Msg.(*kmsg.ProduceRequest)
	if !ok {
		return false
	}
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			req.Topics[i].Partitions[j].Records = nil
			req.Topics[i].Partitions[j].UnknownTags = kmsg.Tags{}
		}
		req.Topics[i].UnknownTags = kmsg.Tags{}
	}
	req.UnknownTags = kmsg.Tags{}
	return true
}

// dataPartition returns the partition a data-path request names. With
// create (Produce) and auto.create.topics.enable, an unknown topic is
// created first, as Kafka does.
func (s *Server) dataPartition(topic string, partition int32, create bool) (*replica.Partition, error) {
	if p, ok := s.replicas().Partition(topic, partition); ok {
		return p, nil
	}
	if create && s.cfg.AutoCreateTopics {
		if err := s.autoCreateTopic(topic); err != nil {
			return nil, err
		}
		if p, ok := s.replicas().Partition(topic, partition); ok {
			return p, nil
		}
	}
	return nil, kerr.UnknownTopicOrPartition
}

// autoCreateTopic creates topic with the broker defaults, as a Metadata
// request with auto-creation would; a concurrent creation is not an error.
func (s *Server) autoCreateTopic(topic string) error {
	_, err := s.createTopic(topicSpec{name: topic, partitions: -1, replicationFactor: -1}, false)
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return err
	}
	return nil
}

// appendOutcome is what a produce partition reports back.
type appendOutcome struct {
	base, last, appendTime, logStart int64
}

// produceAppend is one partition of a produce request to append: where its
// answer goes in the response, and what the append returned.
type produceAppend struct {
	topic, part int // position in the request and the response
	records     []byte
	p           *replica.Partition
	last        int64
	err         error
}

// parallelAppendMinBytes is the request size from which the partitions of
// one produce request are appended concurrently. Writing a batch into the
// page cache is a copy that costs CPU in proportion to its size (the
// segment pwrite was most of the produce path's CPU in docs/benchmarks.md);
// spreading the partitions of a large request over the cores lets those
// copies overlap, while small requests stay on the connection's goroutine
// where a fan-out would cost more than it saves.
const parallelAppendMinBytes = 128 << 10

// runAppends calls do for every append: inline when there is one or the
// request is small, otherwise with the appends shared among up to
// GOMAXPROCS goroutines (the connection's own goroutine among them). Each
// append writes only its own entry and its own partition of the response;
// a partition's log serialises its appends, as it does for appends from
// different connections, so a request naming one partition twice gets both
// appended in some order.
func runAppends(appends []produceAppend, bytes int, do func(*produceAppend)) {
	workers := min(len(appends), runtime.GOMAXPROCS(0))
	if workers < 2 || bytes < parallelAppendMinBytes {
		for i := range appends {
			do(&appends[i])
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(appends) {
				return
			}
			do(&appends[i])
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// appendRecords appends one partition's records and returns the offsets
// the response carries.
func appendRecords(p *replica.Partition, records []byte, acks int16, sums *batch.BlockSums) (appendOutcome, error) {
	out := appendOutcome{base: -1, last: -1, appendTime: -1, logStart: -1}
	if len(records) == 0 {
		return out, fmt.Errorf("broker: empty records: %w", kerr.CorruptMessage)
	}
	res, err := p.AppendSummed(records, acks, sums)
	if err != nil {
		return out, err
	}
	out.base, out.last, out.logStart = res.FirstOffset, res.LastOffset, p.LogStartOffset()
	if p.Config().TimestampType == replica.LogAppendTime {
		out.appendTime = res.LogAppendTime
	}
	return out, nil
}

// rejectedInput reports whether a produce partition's error code says it
// failed on bytes the client sent (a corrupt or invalid batch): the one log
// line bad input gets. Sequence, epoch and topic errors are part of a
// client's normal life and are not logged.
func rejectedInput(code int16) bool {
	return code == kerr.CorruptMessage.Code || code == kerr.InvalidRecord.Code
}

// setProduceError sets a partition's error code and, from v8, a message.
func setProduceError(sp *kmsg.ProduceResponseTopicPartition, version int16, err error) {
	if err == nil {
		return
	}
	sp.ErrorCode = errorCode(err)
	if version >= 8 {
		msg := errorMessage(err)
		if ke, ok := errors.AsType[*kerr.Error](err); ok && ke.Message == msg {
			return // the code says it all
		}
		sp.ErrorMessage = &msg
	}
}

// ackWait is one partition of an acks=all produce waiting for its high
// watermark.
type ackWait struct {
	topic, part int // position in the response
	p           *replica.Partition
	last        int64 // last offset appended
}

// produceOp is an acks=all produce in the purgatory. It completes when every
// partition has committed its batch or failed.
type produceOp struct {
	r       *wire.Request
	resp    *kmsg.ProduceResponse
	version int16
	waits   []ackWait
}

// TryComplete implements purgatory.Operation.
func (o *produceOp) TryComplete() bool { return acksCommitted(o.waits) }

// OnComplete implements purgatory.Operation: partitions not committed by the
// deadline answer REQUEST_TIMED_OUT.
func (o *produceOp) OnComplete(bool) {
	settleAcks(o.resp, o.version, o.waits)
	o.r.Respond(wire.Response{Msg: o.resp})
}

// acksCommitted reports whether every waiting partition has an answer:
// its batch committed, or an error.
func acksCommitted(waits []ackWait) bool {
	for _, w := range waits {
		if done, _ := w.p.AckState(w.last); !done {
			return false
		}
	}
	return true
}

// settleAcks sets each waiting partition's outcome in the response.
func settleAcks(resp *kmsg.ProduceResponse, version int16, waits []ackWait) {
	for _, w := range waits {
		sp := &resp.Topics[w.topic].Partitions[w.part]
		done, err := w.p.AckState(w.last)
		if !done {
			err = replica.ErrRequestTimedOut
		}
		if err != nil {
			sp.BaseOffset, sp.LogAppendTime = -1, -1
			setProduceError(sp, version, err)
		}
	}
}
