package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
	"github.com/weir-broker/weir/outbox"
)

// consumeCommitted reads topic read_committed from the start to every
// partition's current end (call it once the relay drained and no
// transaction is open) and returns the records in partition-offset order.
// Nothing is deduplicated.
func consumeCommitted(t *testing.T, addr, topic string) []msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{} // partition -> end offset not yet reached
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []msg
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed %s: partitions %v not read to their end", topic, left)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset >= end-1 {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			m := msg{topic: r.Topic, key: string(r.Key), value: string(r.Value), partition: int(r.Partition), offset: r.Offset}
			for _, h := range r.Headers {
				if h.Key == "id" {
					m.id = string(h.Value)
				}
			}
			out = append(out, m)
		})
	}
	slices.SortFunc(out, func(a, b msg) int {
		if a.partition != b.partition {
			return a.partition - b.partition
		}
		return int(a.offset - b.offset)
	})
	return out
}

// exactlyOnce fails unless got holds each of want's ids once, in want's
// order per key (want: key -> ids).
func exactlyOnce(t *testing.T, got []msg, want map[string][]string, rolledBack map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	order := map[string][]string{}
	for _, m := range got {
		if rolledBack[m.id] {
			t.Fatalf("rolled-back row %s visible", m.id)
		}
		seen[m.id]++
		if seen[m.id] > 1 {
			t.Fatalf("row %s visible %d times to a read_committed consumer", m.id, seen[m.id])
		}
		order[m.key] = append(order[m.key], m.id)
	}
	n := 0
	for key, ids := range want {
		n += len(ids)
		if got := order[key]; !slices.Equal(got, ids) {
			i := 0
			for i < min(len(got), len(ids)) && got[i] == ids[i] {
				i++
			}
			t.Fatalf("key %s: %d ids visible, want %d in commit order; first difference at %d: visible %v, committed %v",
				key, len(got), len(ids), i, got[i:min(i+4, len(got))], ids[i:min(i+4, len(ids))])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct rows visible, want %d", len(seen), n)
	}
}

// crashSource fails the first Delete after a commit and cancels the relay,
// as a crash between the broker's commit and the database delete would.
type crashSource struct {
	outbox.Source
	crash func()
}

func (s crashSource) Delete(context.Context, []int64) error {
	s.crash()
	return errors.New("crash before delete")
}

// TestExactlyOnceCrashBetweenCommitAndDelete commits a round, "crashes"
// before deleting its rows, and starts a new relay: it reads the committed
// position, deletes those rows instead of publishing them again, and a
// read_committed consumer sees every row once.
func TestExactlyOnceCrashBetweenCommitAndDelete(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t, weirtest.WithArgs("--default-partitions", "2"))
	want := map[string][]string{}
	for i := range 40 {
		m := outbox.Message{ID: outbox.NewID(), AggregateType: "eo", AggregateID: fmt.Sprint(i % 4), Payload: []byte(fmt.Sprint(i))}
		e.write(t, m)
		want[m.AggregateID] = append(want[m.AggregateID], m.ID)
	}
	newPub := func() *outbox.FranzTxPublisher {
		return outbox.NewFranzTxPublisher([]string{b.Addr()}, "weir-outbox/test", "weir-outbox-position.test", "outbox", 5*time.Second)
	}

	ctx, cancel := context.WithCancel(context.Background())
	p1 := newPub()
	cfg := relayConfig(t, e, b)
	cfg.Publisher, cfg.Source, cfg.BatchSize = p1, crashSource{Source: e.src, crash: cancel}, 25
	r1, err := outbox.NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Run(ctx); err != nil {
		t.Fatal(err)
	}
	_ = p1.Close()
	n, _, _, err := e.src.Stats(context.Background())
	if err != nil || n != 40 {
		t.Fatalf("after the crash: %d rows pending (%v), want all 40 (one round committed, none deleted)", n, err)
	}

	p2 := newPub()
	defer p2.Close()
	cfg = relayConfig(t, e, b)
	cfg.Publisher = p2
	stop := startRelay(t, cfg)
	waitFor(t, 30*time.Second, "outbox drained", pending(e))
	stop()
	exactlyOnce(t, consumeCommitted(t, b.Addr(), "outbox.event.eo"), want, nil)
}

// TestZombieProducerFenced: once a second publisher initialised the same
// transactional id, the first one's transaction fails with ErrFenced and
// none of its records become visible.
func TestZombieProducerFenced(t *testing.T) {
	b := newBroker(t)
	newPub := func() *outbox.FranzTxPublisher {
		return outbox.NewFranzTxPublisher([]string{b.Addr()}, "weir-outbox/zombie", "weir-outbox-position.zombie", "outbox", 5*time.Second)
	}
	ctx := context.Background()
	if ok, err := outbox.SupportsTransactions(ctx, []string{b.Addr()}, 5*time.Second); err != nil || !ok {
		t.Fatalf("weir serve: SupportsTransactions = %v, %v; want true", ok, err)
	}
	zombie, leader := newPub(), newPub()
	defer zombie.Close()
	defer leader.Close()
	if _, err := zombie.Published(ctx); err != nil {
		t.Fatal(err)
	}
	rec := func(id string) []outbox.Record {
		return []outbox.Record{{ID: id, Topic: "outbox.event.zombie", Key: []byte("k"), Value: []byte(id),
			Headers: []outbox.Header{{Key: "id", Value: []byte(id)}}}}
	}
	if err := zombie.PublishTx(ctx, rec("before"), []int64{1}); err != nil {
		t.Fatal(err)
	}
	pos, err := leader.Published(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []int64{1}) {
		t.Fatalf("position read back %v, want [1]", pos)
	}
	if err := zombie.PublishTx(ctx, rec("zombie"), []int64{2}); !errors.Is(err, outbox.ErrFenced) {
		t.Fatalf("zombie PublishTx: %v, want ErrFenced", err)
	}
	if err := leader.PublishTx(ctx, rec("after"), []int64{3}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range consumeCommitted(t, b.Addr(), "outbox.event.zombie") {
		ids = append(ids, m.id)
	}
	if !slices.Equal(ids, []string{"before", "after"}) {
		t.Fatalf("visible %v, want [before after]", ids)
	}
	third := newPub()
	defer third.Close()
	if pos, err = third.Published(ctx); err != nil || !slices.Equal(pos, []int64{3}) {
		t.Fatalf("position %v (%v), want [3]", pos, err)
	}
}

// TestExactlyOnceKill9RelayDuringLoad kills the transactional relay
// process with SIGKILL at random points of the writers' load (5 times; 50
// with WEIR_OUTBOX_SOAK), so some kills fall between produce, commit and
// the delete: a read_committed consumer sees every committed row exactly
// once, without deduplication, in commit order per aggregate.
func TestExactlyOnceKill9RelayDuringLoad(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t, weirtest.WithArgs("--default-partitions", "4"))
	kills := 5
	if soak() {
		kills = 50
	}
	l := newLoad()
	p := startRelayProc(t, e.dsn, b, "--transactions", "on", "--batch", "200")
	loadDone := make(chan error, 1)
	go func() { loadDone <- l.run(e) }()
	rng := rand.New(rand.NewPCG(3, 4))
	for range kills {
		<-time.After(time.Duration(100+rng.IntN(500)) * time.Millisecond) // a random point of the load
		p.kill()
		p.start()
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "outbox drained", pending(e))
	exactlyOnce(t, consumeCommitted(t, b.Addr(), "outbox.event.load"), l.want, l.rolledBack)
	t.Logf("%d kills: %d rows committed, each visible once read_committed", kills, l.committed)
}

// TestExactlyOnceZombieRelay runs three transactional relays; the leader is
// stopped (SIGSTOP), another takes over, and the old one, continued,
// publishes nothing visible: each row is seen once read_committed.
func TestExactlyOnceZombieRelay(t *testing.T) {
	e := newEnv(t)
	b := newBroker(t)
	procs := make([]*relayProc, 3)
	for i := range procs {
		procs[i] = startRelayProc(t, e.dsn, b, "--transactions", "on")
	}
	leaders := func() []int {
		var ls []int
		for i, p := range procs {
			if strings.Count(p.log(), `msg="outbox relay: leader"`) > strings.Count(p.log(), "fenced") {
				ls = append(ls, i)
			}
		}
		return ls
	}
	waitFor(t, 20*time.Second, "one leader", func() (bool, error) { return len(leaders()) == 1, nil })
	old := leaders()[0]
	want := map[string][]string{}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			m := outbox.Message{ID: outbox.NewID(), AggregateType: "zha", AggregateID: fmt.Sprint(i % 5), Payload: []byte(fmt.Sprint(i))}
			e.write(t, m)
			want[m.AggregateID] = append(want[m.AggregateID], m.ID)
		}
	}
	write(0, 10)
	waitFor(t, 10*time.Second, "leader publishes", pending(e))
	procs[old].stop()
	stopped := time.Now()
	write(10, 20)
	waitFor(t, 15*time.Second, "another relay publishes", pending(e))
	if soak() {
		<-time.After(time.Until(stopped.Add(30 * time.Second))) // the scenario: stopped for 30 s
	}
	procs[old].signal(syscall.SIGCONT)
	waitFor(t, 10*time.Second, "old leader fenced", func() (bool, error) {
		return strings.Contains(procs[old].log(), "fenced"), nil
	})
	write(20, 30)
	waitFor(t, 10*time.Second, "rows published", pending(e))
	exactlyOnce(t, consumeCommitted(t, b.Addr(), "outbox.event.zha"), want, nil)
}
