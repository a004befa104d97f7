package compat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// eosSize returns the message count and the number of kill -9 restarts of
// the exactly-once test: 20,000 and 5 by default, the 100,000 and
// 20 with WEIR_EOS_FULL=1.
func eosSize() (n, kills int) {
	if full, _ := strconv.ParseBool(os.Getenv("WEIR_EOS_FULL")); full {
		return 100_000, 20
	}
	return 20_000, 5
}

// TestExactlyOnceKill (KIP-98, KIP-447): a franz-go consume-transform-
// produce loop (GroupTransactSession, read_committed) copies an input topic
// to an output topic while the broker is killed with SIGKILL (--fsync
// always) and restarted several times. A read_committed consumer of the
// output then sees every input message exactly once.
func TestExactlyOnceKill(t *testing.T) {
	n, kills := eosSize()
	b := startBroker(t, weirtest.WithArgs("--fsync", "always"))
	requireProcess(t, b)
	in, out, group := topicName("eos-in"), topicName("eos-out"), topicName("eos-group")
	createTopic(t, b.Addr(), in, partitions)
	createTopic(t, b.Addr(), out, partitions)
	want := messagesFor("eos", n)
	produceKgo(t, b.Addr(), in, want)

	ctx, cancel := context.WithCancel(context.Background())
	var sessions, failedEnds atomic.Int64
	loopDone := make(chan error, 1)
	go func() { loopDone <- transformLoop(ctx, b.Addr(), in, out, group, &sessions, &failedEnds) }()
	stopLoop := sync.OnceValue(func() error {
		cancel()
		return <-loopDone
	})
	t.Cleanup(func() { _ = stopLoop() })

	adm := newAdmin(t, b.Addr())
	moved := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return -1
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == in && o.Err == nil {
				sum += o.At
			}
		})
		return sum
	}
	for k := 1; k <= kills; k++ {
		target := int64(k * n / (kills + 1))
		eosWait(t, fmt.Sprintf("%d committed input offsets before kill %d", target, k), func() bool { return moved() >= target })
		if err := b.Kill(); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		if err := b.Restart(); err != nil {
			t.Fatalf("restart %d: %v", k, err)
		}
	}
	eosWait(t, "every input offset committed", func() bool { return moved() == int64(n) })
	if err := stopLoop(); err != nil {
		t.Fatalf("transform loop: %v", err)
	}
	t.Logf("%d kills, %d sessions, %d failed transaction ends", kills, sessions.Load(), failedEnds.Load())

	got := consumeCommitted(t, b.Addr(), out, n)
	seen := make(map[string]int, n)
	for _, r := range got {
		seen[r.Value]++
	}
	var problems []string
	for _, w := range want {
		if c := seen[w.Value]; c != 1 {
			problems = append(problems, fmt.Sprintf("%s seen %d times", w.Key, c))
		}
	}
	if len(got) != n || len(problems) > 0 {
		t.Fatalf("read_committed output has %d records for %d inputs; %d problems, first: %v",
			len(got), n, len(problems), problems[:min(len(problems), 10)])
	}
}

// eosWait polls cond until it holds or two minutes pass.
func eosWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// transformLoop copies in to out, partition for partition, one transaction
// per poll, until ctx ends. A session whose transaction fails to end is
// closed and replaced, as an application would restart: the new session's
// InitProducerId fences the old one and aborts what it left open.
func transformLoop(ctx context.Context, addr, in, out, group string, sessions, failedEnds *atomic.Int64) error {
	newSession := func() (*kgo.GroupTransactSession, error) {
		sessions.Add(1)
		return kgo.NewGroupTransactSession(
			kgo.SeedBrokers(addr),
			kgo.TransactionalID(group+"-txn"),
			kgo.TransactionTimeout(20*time.Second),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(in),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.DefaultProduceTopic(out),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.FetchMaxWait(200*time.Millisecond),
			kgo.RetryTimeout(30*time.Second),
		)
	}
	sess, err := newSession()
	if err != nil {
		return err
	}
	defer func() { sess.Close() }()
	for ctx.Err() == nil {
		fs := sess.PollRecords(ctx, 2_000)
		if ctx.Err() != nil {
			break
		}
		if fs.IsClientClosed() {
			return errors.New("session closed")
		}
		if fs.Empty() {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers}, nil)
		})
		endCtx, endCancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := sess.End(endCtx, kgo.TryCommit)
		endCancel()
		if err != nil {
			failedEnds.Add(1)
			sess.Close()
			if sess, err = newSession(); err != nil {
				return err
			}
		}
	}
	return nil
}

// consumeCommitted reads topic from the start with read_committed until no
// record arrives for two seconds after at least n arrived (or the time
// bound passes), so duplicates past n are seen too.
func consumeCommitted(t *testing.T, addr, topic string, n int) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	var got []record
	deadline := time.Now().Add(opTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		before := len(got)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, fromKgo(r)) })
		if len(got) >= n && len(got) == before {
			break
		}
	}
	return got
}
