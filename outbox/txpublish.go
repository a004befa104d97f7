package outbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrBadPosition reports a position record the relay cannot decode.
var ErrBadPosition = errors.New("outbox: malformed position record")

// errNoProducer: Published was not called, or a failure dropped the
// producer; the relay calls Published again.
var errNoProducer = errors.New("outbox: no transactional producer (call Published)")

// FranzTxPublisher is the exactly-once TxPublisher. It uses franz-go's kgo
// with a TransactionalID because segmentio/kafka-go has no transactional
// producer (it cannot stamp batches with a producer id, epoch and sequence).
// Each PublishTx is one Kafka transaction holding the round's records and a
// position record (key: the table, value: the round's seqs) in a compacted
// topic of its own. Published (re)initializes the producer, which bumps
// its epoch, so a deposed relay's sends and commit fail with
// PRODUCER_FENCED, then reads the last committed position back
// (read_committed). Call Published before the first PublishTx and after
// any PublishTx error. Calls must not overlap.
type FranzTxPublisher struct {
	brokers  []string
	txnID    string
	posTopic string
	table    string
	timeout  time.Duration

	mu      sync.Mutex // guards cl and created
	cl      *kgo.Client
	created map[string]bool
}

// NewFranzTxPublisher returns a publisher producing under transactionalID to
// brokers; the position of table is kept in positionTopic (created
// compacted when missing). timeout bounds each request.
func NewFranzTxPublisher(brokers []string, transactionalID, positionTopic, table string, timeout time.Duration) *FranzTxPublisher {
	return &FranzTxPublisher{
		brokers: brokers, txnID: transactionalID, posTopic: positionTopic, table: table,
		timeout: timeout, created: map[string]bool{},
	}
}

// SupportsTransactions reports whether the broker at brokers lists EndTxn in
// its ApiVersions response.
func SupportsTransactions(ctx context.Context, brokers []string, timeout time.Duration) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(timeout))
	if err != nil {
		return false, fmt.Errorf("outbox: client: %w", err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(rctx, cl)
	if err != nil {
		return false, fmt.Errorf("outbox: api versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, fmt.Errorf("outbox: api versions: %w", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.EndTxn.Int16() {
			return true, nil
		}
	}
	return false, nil
}

// Publish implements Publisher: one transaction without a position record.
// The relay uses PublishTx.
func (p *FranzTxPublisher) Publish(ctx context.Context, recs []Record) error {
	return p.PublishTx(ctx, recs, nil)
}

// Published implements TxPublisher: it starts a fresh transactional
// producer (fencing any other holder of the transactional id and settling
// its open transaction) and returns the seqs of the last committed round.
func (p *FranzTxPublisher) Published(ctx context.Context) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl != nil {
		p.cl.Close()
		p.cl = nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.brokers...), kgo.TransactionalID(p.txnID),
		kgo.DialTimeout(p.timeout), kgo.ProduceRequestTimeout(p.timeout),
		kgo.TransactionTimeout(max(p.timeout*2, 10*time.Second)),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.RecordRetries(3),
		kgo.WithLogger(nil))
	if err != nil {
		return nil, fmt.Errorf("outbox: transactional client: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, 2*p.timeout)
	defer cancel()
	if _, _, err := cl.ProducerID(ictx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("outbox: init producer id %s: %w", p.txnID, err)
	}
	p.cl = cl
	if err := p.createTopic(ictx, p.posTopic, true); err != nil {
		return nil, err
	}
	return p.readPosition(ictx)
}

// readPosition reads the position topic to its end, read_committed, and
// returns the last value under the table's key.
func (p *FranzTxPublisher) readPosition(ctx context.Context) ([]int64, error) {
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.IsolationLevel = 1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = p.posTopic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	resp, err := lo.RequestWith(ctx, p.cl)
	if err != nil {
		return nil, fmt.Errorf("outbox: position end offset: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("outbox: position end offset: %w", ErrBadPosition)
	}
	part := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return nil, fmt.Errorf("outbox: position end offset: %w", err)
	}
	end := part.Offset
	if end <= 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.brokers...), kgo.DialTimeout(p.timeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.posTopic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return nil, fmt.Errorf("outbox: position reader: %w", err)
	}
	defer cl.Close()
	var last []byte
	found := false
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("outbox: read position to offset %d: %w", end, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("outbox: read position: %w", ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() && string(r.Key) == p.table {
				last, found = r.Value, true
			}
			if r.Offset >= end-1 {
				done = true
			}
		})
		if done {
			break
		}
	}
	if !found {
		return nil, nil
	}
	return decodeSeqs(last)
}

// createTopic creates topic with the broker's defaults (compacted, one
// partition, for the position topic) unless this publisher already did.
func (p *FranzTxPublisher) createTopic(ctx context.Context, topic string, compact bool) error {
	if p.created[topic] {
		return nil
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, -1, -1
	if compact {
		t.NumPartitions = 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = "cleanup.policy", kmsg.StringPtr("compact")
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = int32(p.timeout.Milliseconds())
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return fmt.Errorf("outbox: create topic %s: %w", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("outbox: create topic %s: %w", topic, err)
		}
	}
	p.created[topic] = true
	return nil
}

// PublishTx implements TxPublisher: recs and, when seqs is not nil, the
// position record are committed in one transaction, or nothing is. A
// record the broker refuses comes back as a *RejectedError; a fenced
// producer as ErrFenced (wrapped).
func (p *FranzTxPublisher) PublishTx(ctx context.Context, recs []Record, seqs []int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil {
		return errNoProducer
	}
	for _, r := range recs {
		if err := p.createTopic(ctx, r.Topic, false); err != nil {
			if errors.Is(err, kerr.InvalidTopicException) || errors.Is(err, kerr.PolicyViolation) {
				return &RejectedError{ID: r.ID, Err: err}
			}
			return err
		}
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return p.fail(fmt.Errorf("outbox: begin transaction: %w", err))
	}
	var (
		errMu    sync.Mutex
		firstErr error
		badID    string
	)
	for _, r := range recs {
		kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Time)}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		id := r.ID
		p.cl.Produce(ctx, kr, func(_ *kgo.Record, err error) {
			if err == nil {
				return
			}
			errMu.Lock()
			if firstErr == nil || (badID == "" && rejected(err)) {
				firstErr = err
				if rejected(err) {
					badID = id
				}
			}
			errMu.Unlock()
		})
	}
	if seqs != nil {
		p.cl.Produce(ctx, &kgo.Record{Topic: p.posTopic, Partition: 0, Key: []byte(p.table), Value: encodeSeqs(seqs)},
			func(_ *kgo.Record, err error) {
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				}
			})
	}
	if err := p.cl.Flush(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		_ = p.cl.AbortBufferedRecords(ctx)
		if aerr := p.cl.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			p.dropClient()
		}
		if badID != "" {
			return &RejectedError{ID: badID, Err: firstErr}
		}
		return p.fail(fmt.Errorf("outbox: transactional produce: %w", firstErr))
	}
	if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return p.fail(fmt.Errorf("outbox: commit transaction: %w", err))
	}
	return nil
}

// fail drops the client (a new one is made by Published) and marks
// producer fencing as ErrFenced.
func (p *FranzTxPublisher) fail(err error) error {
	p.dropClient()
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

func (p *FranzTxPublisher) dropClient() {
	if p.cl != nil {
		p.cl.Close()
		p.cl = nil
	}
}

// rejected reports whether err is the broker refusing the record itself.
func rejected(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.InvalidTopicException, kerr.CorruptMessage,
		kerr.RecordListTooLarge, kerr.TopicAuthorizationFailed, kerr.InvalidRecord, kerr.PolicyViolation} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Close releases the transactional client (an open transaction is left to
// the broker's transaction timeout or the next producer's fencing).
func (p *FranzTxPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropClient()
	return nil
}

// encodeSeqs encodes seqs sorted: a count, the first seq as a zig-zag
// varint, then each difference to the previous one as a uvarint.
func encodeSeqs(seqs []int64) []byte {
	s := slices.Clone(seqs)
	slices.Sort(s)
	b := binary.AppendUvarint(nil, uint64(len(s)))
	for i, v := range s {
		if i == 0 {
			b = binary.AppendVarint(b, v)
			continue
		}
		b = binary.AppendUvarint(b, uint64(v)-uint64(s[i-1]))
	}
	return b
}

// decodeSeqs decodes encodeSeqs's output (sorted seqs; anything else is
// ErrBadPosition).
func decodeSeqs(b []byte) ([]int64, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, ErrBadPosition
	}
	b = b[k:]
	out := make([]int64, 0, n)
	for range n {
		if len(out) == 0 {
			v, k := binary.Varint(b)
			if k <= 0 {
				return nil, ErrBadPosition
			}
			b = b[k:]
			out = append(out, v)
			continue
		}
		d, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, ErrBadPosition
		}
		b = b[k:]
		prev := out[len(out)-1]
		v := int64(uint64(prev) + d)
		if v < prev {
			return nil, ErrBadPosition
		}
		out = append(out, v)
	}
	if len(b) != 0 {
		return nil, ErrBadPosition
	}
	return out, nil
}
