package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Rebalance selects how the group moves partitions between members.
type Rebalance int

const (
	// Eager is the classic protocol's eager rebalancing (the default): at
	// every rebalance each member gives up all its partitions.
	Eager Rebalance = iota
	// CooperativeSticky moves only the partitions that change owner; the
	// others keep flowing through the rebalance. Backed by franz-go.
	CooperativeSticky
)

// String names r.
func (r Rebalance) String() string {
	switch r {
	case Eager:
		return "eager"
	case CooperativeSticky:
		return "cooperative-sticky"
	}
	return fmt.Sprintf("Rebalance(%d)", int(r))
}

// usesFranz reports whether the franz-go backend runs this config: for
// cooperative-sticky rebalancing and for read_committed, which kafka-go
// cannot do (it neither drops aborted records nor control records).
func (c Config) usesFranz() bool {
	return c.Rebalance == CooperativeSticky || c.IsolationLevel == kafka.ReadCommitted
}

// franzPart is one partition owned by this member under the franz-go
// backend: the channels its workers read and the contexts that bound them.
type franzPart struct {
	in         []chan kafka.Message // one per key worker (one for BatchHandler)
	wg         sync.WaitGroup
	cancelWork context.CancelFunc
	stopTimer  func() bool // unhooks the run-failure watch
	timer      *time.Timer // set when the partition starts draining
}

// franzRun is the state of one Run under the franz-go backend.
type franzRun struct {
	c        *Consumer
	runCtx   context.Context
	fail     context.CancelCauseFunc
	commitMu sync.Mutex // serialises commits, so a revoke commit comes last
	owned    map[TopicPartition]*franzPart
}

// runFranz is Run with franz-go's group client: poll, hand records to the
// partition workers, allow the rebalance; the rebalance callbacks drain and
// commit the partitions that leave this member before the revoke completes.
func (c *Consumer) runFranz(ctx context.Context) error {
	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	fr := &franzRun{c: c, runCtx: runCtx, fail: fail, owned: map[TopicPartition]*franzPart{}}
	balancer := kgo.RangeBalancer()
	if c.cfg.Rebalance == CooperativeSticky {
		balancer = kgo.CooperativeStickyBalancer()
	}
	reset := kgo.NewOffset().AtStart()
	if c.cfg.StartOffset == kafka.LastOffset {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID(c.cfg.Dialer.ClientID),
		kgo.DialTimeout(c.cfg.Dialer.Timeout),
		kgo.ConsumerGroup(c.cfg.GroupID),
		kgo.ConsumeTopics(c.cfg.Topics...),
		kgo.Balancers(balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.RebalanceTimeout(c.cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(c.cfg.HeartbeatInterval),
		kgo.FetchMaxWait(c.cfg.MaxWait),
		kgo.ConsumeResetOffset(reset),
		kgo.OnPartitionsAssigned(fr.assigned),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { fr.revoked(ctx, cl, m, true) }),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { fr.revoked(ctx, cl, m, false) }),
	}
	if c.cfg.IsolationLevel == kafka.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if c.cfg.Seek != nil {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(fr.seek))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("consumer: group %s: %w", c.cfg.GroupID, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { fr.commitLoop(cl) })
	for runCtx.Err() == nil {
		fs := cl.PollRecords(runCtx, 1000)
		fs.EachError(func(topic string, p int32, err error) {
			if runCtx.Err() == nil {
				c.cfg.Logger.Debug("consumer: fetch", "partition", TopicPartition{topic, int(p)}, "err", err)
			}
		})
		fs.EachPartition(fr.dispatch)
		cl.AllowRebalance()
	}
	wg.Wait()
	cl.Close() // leaves the group: the revoke callback drains and commits
	c.mu.Lock()
	left := map[string][]int32{}
	for tp := range fr.owned {
		left[tp.Topic] = append(left[tp.Topic], int32(tp.Partition))
	}
	c.mu.Unlock()
	fr.revoked(context.Background(), nil, left, false) // no revoke came: stop the workers
	if cause := context.Cause(runCtx); cause != nil && !isCancel(cause) {
		return cause
	}
	return nil
}

// dispatch registers a fetched partition's records with its tracker and
// hands them to its workers. Sends block while a worker is busy: the
// rebalance waits (BlockRebalanceOnPoll) but the workers drain meanwhile.
func (fr *franzRun) dispatch(p kgo.FetchTopicPartition) {
	tp := TopicPartition{p.Topic, int(p.Partition)}
	fr.c.mu.Lock()
	part, tr := fr.owned[tp], fr.c.parts[tp]
	fr.c.mu.Unlock()
	if part == nil || tr == nil || len(p.Records) == 0 {
		return
	}
	for _, r := range p.Records {
		m := toMessage(r, p.HighWatermark)
		fr.c.mu.Lock()
		tr.fetched(m.Offset, m.Time, m.HighWaterMark)
		fr.c.mu.Unlock()
		part.in[keyWorker(m.Key, len(part.in))] <- m
	}
}

// toMessage converts a franz-go record to the kafka-go message the
// handlers take.
func toMessage(r *kgo.Record, hwm int64) kafka.Message {
	var h []kafka.Header
	if len(r.Headers) > 0 {
		h = make([]kafka.Header, len(r.Headers))
		for i, x := range r.Headers {
			h[i] = kafka.Header{Key: x.Key, Value: x.Value}
		}
	}
	return kafka.Message{Topic: r.Topic, Partition: int(r.Partition), Offset: r.Offset, HighWaterMark: hwm,
		Key: r.Key, Value: r.Value, Headers: h, Time: r.Timestamp}
}

// assigned starts the workers of newly assigned partitions, then calls
// OnAssigned.
func (fr *franzRun) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := flatten(m)
	if len(tps) == 0 {
		return
	}
	c := fr.c
	for _, tp := range tps {
		workCtx, cancelWork := context.WithCancel(context.WithoutCancel(fr.runCtx))
		part := &franzPart{cancelWork: cancelWork}
		n := c.cfg.Concurrency
		if c.cfg.BatchHandler != nil {
			n = 1
		}
		for range n {
			ch := make(chan kafka.Message, 64)
			part.in = append(part.in, ch)
			if c.cfg.BatchHandler != nil {
				part.wg.Go(func() { fr.batchWorker(workCtx, tp, ch) })
			} else {
				part.wg.Go(func() { fr.keyWorker(workCtx, tp, ch) })
			}
		}
		// A failed Run stops in-flight work after ShutdownTimeout.
		part.stopTimer = context.AfterFunc(fr.runCtx, func() { fr.drainTimer(part) })
		c.mu.Lock()
		fr.owned[tp] = part
		c.parts[tp] = newTracker(-1)
		c.mu.Unlock()
	}
	if c.cfg.OnAssigned != nil {
		c.cfg.OnAssigned(fr.runCtx, slices.Clone(tps))
	}
}

// drainTimer arms, once, the timer that cancels part's handlers after
// ShutdownTimeout.
func (fr *franzRun) drainTimer(part *franzPart) {
	fr.c.mu.Lock()
	defer fr.c.mu.Unlock()
	if part.timer == nil {
		part.timer = time.AfterFunc(fr.c.cfg.ShutdownTimeout, part.cancelWork)
	}
}

// revoked stops the partitions leaving this member: every record already
// handed to their workers is handled (bounded by ShutdownTimeout), the
// offsets are committed when commit is set (a revoke, not a loss), then
// OnRevoked is called. Only then does franz-go let the rebalance go on,
// so the next owner starts after the last record handled here.
func (fr *franzRun) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32, commit bool) {
	tps := flatten(m)
	c := fr.c
	var parts []*franzPart
	c.mu.Lock()
	for _, tp := range tps {
		if p := fr.owned[tp]; p != nil {
			parts = append(parts, p)
		}
	}
	c.mu.Unlock()
	for _, p := range parts {
		if !commit {
			p.cancelWork() // lost: another member may own it already
		}
		fr.drainTimer(p)
		for _, ch := range p.in {
			close(ch)
		}
	}
	for _, p := range parts {
		p.wg.Wait()
		p.stopTimer()
		fr.c.mu.Lock()
		p.timer.Stop()
		fr.c.mu.Unlock()
		p.cancelWork()
	}
	fr.commitMu.Lock()
	if commit {
		// The client's context ends when it closes, and the last revoke
		// happens while it closes: commit with a context of our own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fr.c.cfg.Dialer.Timeout)
		fr.commit(cctx, cl, tps)
		cancel()
	}
	c.mu.Lock()
	for _, tp := range tps {
		delete(fr.owned, tp)
		delete(c.parts, tp)
	}
	c.mu.Unlock()
	fr.commitMu.Unlock()
	if len(tps) > 0 && c.cfg.OnRevoked != nil {
		c.cfg.OnRevoked(context.WithoutCancel(fr.runCtx), slices.Clone(tps))
	}
}

// seek asks Config.Seek for the start offsets of newly assigned partitions.
func (fr *franzRun) seek(ctx context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var tps []TopicPartition
	for topic, ps := range offs {
		for p := range ps {
			tps = append(tps, TopicPartition{topic, int(p)})
		}
	}
	slices.SortFunc(tps, compareTP)
	seek, err := fr.c.cfg.Seek(ctx, tps)
	if err != nil {
		return nil, fmt.Errorf("consumer: seek: %w", err)
	}
	for tp, off := range seek {
		if ps := offs[tp.Topic]; ps != nil {
			if _, ok := ps[int32(tp.Partition)]; ok {
				ps[int32(tp.Partition)] = kgo.NewOffset().At(off).WithEpoch(-1)
			}
		}
	}
	return offs, nil
}

// commitLoop commits every CommitInterval until the run ends.
func (fr *franzRun) commitLoop(cl *kgo.Client) {
	tick := time.NewTicker(fr.c.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-fr.runCtx.Done():
			return
		case <-tick.C:
			fr.commitMu.Lock()
			fr.commit(fr.runCtx, cl, nil)
			fr.commitMu.Unlock()
		}
	}
}

// commit commits the committable offsets of tps (all owned partitions when
// tps is nil). The caller holds commitMu.
func (fr *franzRun) commit(ctx context.Context, cl *kgo.Client, tps []TopicPartition) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	fr.c.mu.Lock()
	for tp, tr := range fr.c.parts {
		if tps != nil && !slices.Contains(tps, tp) {
			continue
		}
		off := tr.committable()
		if off < 0 || off <= tr.committed {
			continue
		}
		if offsets[tp.Topic] == nil {
			offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.Topic][int32(tp.Partition)] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	fr.c.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = err
		if err == nil {
			cerr = commitErr(resp)
		}
	})
	if cerr != nil {
		fr.c.cfg.Logger.Warn("consumer: commit offsets", "group", fr.c.cfg.GroupID, "err", cerr)
		return
	}
	fr.c.mu.Lock()
	for topic, ps := range offsets {
		for p, eo := range ps {
			if tr := fr.c.parts[TopicPartition{topic, int(p)}]; tr != nil {
				tr.committed = eo.Offset
			}
		}
	}
	fr.c.mu.Unlock()
}

// keyWorker handles one key worker's records until its channel is closed;
// after workCtx ends the rest are left unhandled (and uncommitted).
func (fr *franzRun) keyWorker(workCtx context.Context, tp TopicPartition, ch <-chan kafka.Message) {
	one := make([]kafka.Message, 1)
	for m := range ch {
		if workCtx.Err() != nil {
			continue
		}
		one[0] = m
		if fr.c.handle(workCtx, workCtx, fr.fail, tp, one) {
			fr.c.markDone(tp, m.Offset)
		}
	}
}

// batchWorker hands the partition's records to BatchHandler in batches of
// what is queued, up to BatchSize, waiting up to BatchWait for more.
func (fr *franzRun) batchWorker(workCtx context.Context, tp TopicPartition, ch <-chan kafka.Message) {
	c := fr.c
	for m := range ch {
		batch := []kafka.Message{m}
		wait := time.NewTimer(c.cfg.BatchWait)
	more:
		for len(batch) < c.cfg.BatchSize {
			select {
			case m, ok := <-ch:
				if !ok {
					break more
				}
				batch = append(batch, m)
			case <-wait.C:
				break more
			}
		}
		wait.Stop()
		if workCtx.Err() != nil || !c.handle(workCtx, workCtx, fr.fail, tp, batch) {
			for range ch { // a failed batch: the rest of the partition waits
			}
			return
		}
		offsets := make([]int64, len(batch))
		for i, m := range batch {
			offsets[i] = m.Offset
		}
		c.markDone(tp, offsets...)
	}
}

// commitErr returns the first partition error of an offset commit.
func commitErr(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("consumer: commit %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// isCancel reports whether a run ended because its context did.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func flatten(m map[string][]int32) []TopicPartition {
	var out []TopicPartition
	for topic, ps := range m {
		for _, p := range ps {
			out = append(out, TopicPartition{topic, int(p)})
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}
