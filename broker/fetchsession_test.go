package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// sessionFetch sends an incremental (or, at epoch 0, full) fetch of
// session id with parts and forgotten partitions of topic, and returns the
// answer.
func sessionFetch(t *testing.T, c *rawConn, id, epoch, maxWait int32, forgotten []int32, topic string, parts ...fetchPart) *kmsg.FetchResponse {
	t.Helper()
	req := fetchRequest(12, maxWait, 1, 1<<20, parts...)
	req.SessionID, req.SessionEpoch = id, epoch
	if len(forgotten) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = topic, forgotten
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return c.roundTrip(req, epoch).(*kmsg.FetchResponse)
}

// answered lists an answer's partitions as topic/partition:records.
func answered(t *testing.T, resp *kmsg.FetchResponse) []string {
	t.Helper()
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	var out []string
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			n := 0
			for _, b := range batchesOf(t, p.RecordBatches) {
				n += int(b.RecordCount())
			}
			out = append(out, fmt.Sprintf("%s/%d:%d", rt.Topic, p.Partition, n))
		}
	}
	return out
}

// TestFetchSessionIncremental follows a session through the epochs: the
// full fetch answers every partition, later ones only partitions with
// news, from the offsets the session remembers; a forgotten partition is
// no longer fetched.
func TestFetchSessionIncremental(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	p := dialRaw(t, s)
	createTopicRaw(t, c, "fs", 3, nil)
	produceRaw(t, p, 9, 1, "fs", 0, nowBatch("a", 2, batch.Options{}))

	all := []fetchPart{{"fs", 0, 0, 1 << 20}, {"fs", 1, 0, 1 << 20}, {"fs", 2, 0, 1 << 20}}
	resp := sessionFetch(t, c, 0, 0, 0, nil, "", all...)
	if got := answered(t, resp); !slices.Equal(got, []string{"fs/0:2", "fs/1:0", "fs/2:0"}) || resp.SessionID == 0 {
		t.Fatalf("full fetch: %v, session %d", got, resp.SessionID)
	}
	id := resp.SessionID
	if got := gaugeValue(t, s, "weir_fetch_sessions", ""); got != 1 {
		t.Fatalf("weir_fetch_sessions = %v, want 1", got)
	}
	steps := []struct {
		name      string
		produceTo int32 // -1: none
		parts     []fetchPart
		forgotten []int32
		want      []string
	}{
		// p0 is still fetched from 0: its records again.
		{"nothing new", -1, nil, nil, []string{"fs/0:2"}},
		{"p0 moved on", -1, []fetchPart{{"fs", 0, 2, 1 << 20}}, nil, nil},
		{"records on p1", 1, nil, nil, []string{"fs/1:3"}},
		// The high watermark was sent with the records: nothing new.
		{"p1 moved on", -1, []fetchPart{{"fs", 1, 3, 1 << 20}}, nil, nil},
		{"p2 forgotten", 2, nil, []int32{2}, nil},
		{"p2 again", -1, []fetchPart{{"fs", 2, 0, 1 << 20}}, nil, []string{"fs/2:3"}},
	}
	for i, st := range steps {
		if st.produceTo >= 0 {
			produceRaw(t, p, 9, 1, "fs", st.produceTo, nowBatch("b", 3, batch.Options{}))
		}
		resp := sessionFetch(t, c, id, int32(i+1), 0, st.forgotten, "fs", st.parts...)
		if got := answered(t, resp); !slices.Equal(got, st.want) || resp.SessionID != id {
			t.Fatalf("%s: answered %v, want %v (session %d, want %d)", st.name, got, st.want, resp.SessionID, id)
		}
	}
}

// TestFetchSessionLongPoll: an incremental fetch that names no partition
// waits on every partition of its session and is woken by an append to
// one of them.
func TestFetchSessionLongPoll(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "lps", 2, nil)
	resp := sessionFetch(t, c, 0, 0, 0, nil, "", fetchPart{"lps", 0, 0, 1 << 20}, fetchPart{"lps", 1, 0, 1 << 20})
	id := resp.SessionID
	req := fetchRequest(12, 60_000, 1, 1<<20)
	req.SessionID, req.SessionEpoch = id, 1
	c.send(req, 7)
	pollFor(t, "the fetch to park", func() bool { _, f := s.replicas().Waiting(); return f == 1 })
	produceRaw(t, dialRaw(t, s), 9, 1, "lps", 1, nowBatch("wake", 4, batch.Options{}))
	if got := answered(t, recvFetch(t, c, req, 7)); !slices.Equal(got, []string{"lps/1:4"}) {
		t.Fatalf("woken incremental fetch answered %v", got)
	}
}

// TestFetchSessionErrors: an unknown session, a wrong epoch, a closed
// session and a broker without session slots answer as Kafka does.
func TestFetchSessionErrors(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	createTopicRaw(t, c, "fse", 1, nil)
	part := fetchPart{"fse", 0, 0, 1 << 20}
	id := sessionFetch(t, c, 0, 0, 0, nil, "", part).SessionID
	code := func(resp *kmsg.FetchResponse) error {
		if len(resp.Topics) != 0 || resp.SessionID != 0 {
			t.Fatalf("error answer carries %d topics, session %d", len(resp.Topics), resp.SessionID)
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	if err := code(sessionFetch(t, c, id, 2, 0, nil, "")); err != kerr.InvalidFetchSessionEpoch {
		t.Fatalf("epoch 2 first: %v", err)
	}
	if err := code(sessionFetch(t, c, id+1, 1, 0, nil, "")); err != kerr.FetchSessionIDNotFound {
		t.Fatalf("unknown session: %v", err)
	}
	if got := answered(t, sessionFetch(t, c, id, 1, 0, nil, "")); len(got) != 0 {
		t.Fatalf("epoch 1: %v", got)
	}
	// Epoch -1 closes the session and is served without one.
	if resp := sessionFetch(t, c, id, -1, 0, nil, "", part); resp.SessionID != 0 || len(answered(t, resp)) != 1 {
		t.Fatalf("final epoch: session %d, %v", resp.SessionID, answered(t, resp))
	}
	if err := code(sessionFetch(t, c, id, 2, 0, nil, "")); err != kerr.FetchSessionIDNotFound {
		t.Fatalf("closed session: %v", err)
	}

	none := startServer(t, func(c *Config) { c.FetchSessionSlots = 0 })
	nc := dialRaw(t, none)
	createTopicRaw(t, nc, "fse", 1, nil)
	if resp := sessionFetch(t, nc, 0, 0, 0, nil, "", part); resp.ErrorCode != 0 || resp.SessionID != 0 || len(answered(t, resp)) != 1 {
		t.Fatalf("no slots: %v, session %d", kerr.ErrorForCode(resp.ErrorCode), resp.SessionID)
	}
}

// TestFetchSessionWithKgo consumes six partitions with kgo, which opens a
// session and fetches incrementally, while records keep arriving: every
// record arrives once, in order per partition.
func TestFetchSessionWithKgo(t *testing.T) {
	s := startServer(t)
	consumeWhileProducing(t, s, "kgs", nil)
	if got := gaugeValue(t, s, "weir_fetch_sessions", ""); got < 1 {
		t.Fatalf("weir_fetch_sessions = %v: kgo did not open a session", got)
	}
}

// TestFetchSessionEvictedUnderKgo evicts kgo's session again and again
// while its connection stays up (one slot; another connection's full
// fetches take it once kgo's session has been idle a millisecond). kgo is
// answered FETCH_SESSION_ID_NOT_FOUND, starts a new session from where it
// was, and still gets every record once, in order.
func TestFetchSessionEvictedUnderKgo(t *testing.T) {
	s := startServer(t, func(c *Config) { c.FetchSessionSlots, c.FetchSessionEvictAfter = 1, time.Millisecond })
	evictor := dialRaw(t, s)
	_ = evictor.nc.SetDeadline(time.Time{})
	createTopicRaw(t, evictor, "kge", 6, nil)
	stop := make(chan struct{})
	evicted := make(chan struct{})
	go func() {
		defer close(evicted)
		for corr := int32(0); ; corr++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond): // pacing, not a wait for an event
			}
			req := fetchRequest(12, 0, 1, 1<<20, fetchPart{"kge", 0, 0, 1})
			req.SessionEpoch = 0
			if _, err := evictor.nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, corr)); err != nil {
				return
			}
			if _, _, err := evictor.recv(); err != nil {
				return
			}
		}
	}()
	notFound := &sessionLog{}
	consumeWhileProducing(t, s, "kge", notFound)
	close(stop)
	<-evicted
	if notFound.count.Load() == 0 {
		t.Fatal("kgo never logged FETCH_SESSION_ID_NOT_FOUND: its session was not evicted")
	}
}

// sessionLog is a kgo logger that counts kgo's reports of a session the
// broker no longer knows.
type sessionLog struct{ count atomic.Int64 }

func (l *sessionLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }
func (l *sessionLog) Log(_ kgo.LogLevel, msg string, _ ...any) {
	if strings.Contains(msg, "SessionIDNotFound") {
		l.count.Add(1)
	}
}

// consumeWhileProducing creates topic with six partitions, produces 3,000
// records round-robin in bursts and consumes them with one kgo client
// (with logger, if not nil) as they arrive: each must arrive once, in
// order per partition.
func consumeWhileProducing(t *testing.T, s *Server, topic string, logger kgo.Logger) {
	t.Helper()
	if _, ok := s.replicas().Partition(topic, 0); !ok {
		createTopicRaw(t, dialRaw(t, s), topic, 6, nil)
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
	if logger != nil {
		opts = append(opts, kgo.WithLogger(logger))
	}
	cons := newClient(t, s, opts...)
	prod := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3000
	go func() {
		for i := range n {
			prod.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}, nil)
			if i%100 == 0 {
				time.Sleep(5 * time.Millisecond) // spread the records over many fetches
			}
		}
	}()
	next := make(map[int32]int64)
	seen := make(map[string]bool)
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", len(seen), n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] || seen[string(r.Value)] {
				t.Fatalf("partition %d: record %q at %d, want offset %d", r.Partition, r.Value, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			seen[string(r.Value)] = true
		})
	}
}
