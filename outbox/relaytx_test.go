package outbox

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// memTxPublisher is an in-memory TxPublisher: what it commits, and the
// last committed position.
type memTxPublisher struct {
	mu        sync.Mutex
	committed []string // values in commit order
	position  []int64
	poison    map[string]bool
	inits     int
}

func (p *memTxPublisher) Publish(ctx context.Context, recs []Record) error {
	return p.PublishTx(ctx, recs, nil)
}

func (p *memTxPublisher) PublishTx(_ context.Context, recs []Record, seqs []int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		if p.poison[string(r.Value)] {
			return &RejectedError{ID: r.ID, Err: fmt.Errorf("poison %s", r.Value)}
		}
	}
	for _, r := range recs {
		p.committed = append(p.committed, string(r.Value))
	}
	p.position = slices.Clone(seqs)
	return nil
}

func (p *memTxPublisher) Published(context.Context) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inits++
	return slices.Clone(p.position), nil
}

func (p *memTxPublisher) Close() error { return nil }

func (p *memTxPublisher) values() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.committed)
}

// TestRelayTxResumesFromPosition: rows of the last committed round still
// in the table are deleted, not published again.
func TestRelayTxResumesFromPosition(t *testing.T) {
	src := &memSource{wake: make(chan struct{}, 1)}
	src.add("a", 5)
	first := []int64{src.rows[0].Seq, src.rows[1].Seq, src.rows[2].Seq}
	pub := &memTxPublisher{position: first}
	want := []string{string(src.rows[3].Payload), string(src.rows[4].Payload)}
	stop := runRelay(t, Config{Source: src, Publisher: pub, PollInterval: 10 * time.Millisecond})
	waitFor(t, "drained", func() bool { return src.pending() == 0 })
	stop()
	if got := pub.values(); !slices.Equal(got, want) {
		t.Fatalf("committed %v, want only the rows after the position %v", got, want)
	}
}

// TestRelayTxPoisonAbortsRoundThenFlows: a refused record aborts its round;
// once its row is parked, the other keys' rows are committed, each once.
func TestRelayTxPoisonAbortsRoundThenFlows(t *testing.T) {
	src := &memSource{wake: make(chan struct{}, 1)}
	src.add("a", 3)
	src.add("b", 3)
	bad := fmt.Sprint(src.rows[1].Seq)
	var want []string
	for _, r := range src.rows[3:] {
		want = append(want, string(r.Payload))
	}
	pub := &memTxPublisher{poison: map[string]bool{bad: true}}
	stop := runRelay(t, Config{Source: src, Publisher: pub, PollInterval: 10 * time.Millisecond, ParkAfter: 2})
	waitFor(t, "b published", func() bool { return len(pub.values()) == 3 })
	stop()
	if got := pub.values(); !slices.Equal(got, want) {
		t.Fatalf("committed %v, want b's rows %v once, nothing of the parked key a", got, want)
	}
	if src.pending() != 3 {
		t.Fatalf("%d rows left, want a's 3 (parked behind its poison row)", src.pending())
	}
}

// TestRelayTxAtLeastOnceOption: Config.AtLeastOnce uses Publish, per key,
// and never reads a position.
func TestRelayTxAtLeastOnceOption(t *testing.T) {
	src := &memSource{wake: make(chan struct{}, 1)}
	src.add("a", 2)
	pub := &memTxPublisher{position: []int64{src.rows[0].Seq}}
	stop := runRelay(t, Config{Source: src, Publisher: pub, PollInterval: 10 * time.Millisecond, AtLeastOnce: true})
	waitFor(t, "drained", func() bool { return src.pending() == 0 })
	stop()
	if got := pub.values(); len(got) != 2 || pub.inits != 0 {
		t.Fatalf("committed %v with %d position reads, want both rows and none", got, pub.inits)
	}
}
