package txn

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func meta(state State) Metadata {
	return Metadata{ID: "x", ProducerID: 7, Epoch: 3, Timeout: time.Minute, State: state,
		Partitions: []TopicPartition{{"a", 0}}, Start: t0}
}

// TestKIP98EndTxnRules: what EndTxn does in each state, with Kafka's
// errors.
func TestKIP98EndTxnRules(t *testing.T) {
	tests := []struct {
		name   string
		state  State
		pid    int64
		epoch  int16
		commit bool
		want   endAction
		err    error
	}{
		{"commit ongoing", Ongoing, 7, 3, true, endWrite, nil},
		{"abort ongoing", Ongoing, 7, 3, false, endWrite, nil},
		{"retried commit", CompleteCommit, 7, 3, true, endDone, nil},
		{"retried abort", CompleteAbort, 7, 3, false, endDone, nil},
		{"abort after commit", CompleteCommit, 7, 3, false, 0, kerr.InvalidTxnState},
		{"commit after abort", CompleteAbort, 7, 3, true, 0, kerr.InvalidTxnState},
		{"commit with nothing open", Empty, 7, 3, true, 0, kerr.InvalidTxnState},
		{"abort with nothing open", Empty, 7, 3, false, endDone, nil},
		{"while preparing", PrepareCommit, 7, 3, true, 0, kerr.ConcurrentTransactions},
		{"zombie epoch", Ongoing, 7, 2, true, 0, kerr.ProducerFenced},
		{"future epoch", Ongoing, 7, 4, true, 0, kerr.InvalidProducerEpoch},
		{"other producer id", Ongoing, 8, 3, true, 0, kerr.InvalidProducerIDMapping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := meta(tc.state)
			got, err := endTxn(&m, tc.pid, tc.epoch, tc.commit)
			if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
				t.Fatalf("endTxn = %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestKIP98AddPartitions: a transaction starts on the first partition and
// keeps the set sorted and unique; prepare and complete move it on.
func TestKIP98AddPartitions(t *testing.T) {
	m := meta(CompleteCommit)
	m.Partitions = nil
	m, err := addPartitions(m, 7, 3, []TopicPartition{{"b", 1}, {"a", 2}, {"b", 1}}, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m.State != Ongoing || !m.Start.Equal(t0.Add(time.Second)) || len(m.Partitions) != 2 || m.Partitions[0] != (TopicPartition{"a", 2}) {
		t.Fatalf("after add: %+v", m)
	}
	m2, err := addPartitions(m, 7, 3, []TopicPartition{{"a", 0}}, t0.Add(2*time.Second))
	if err != nil || len(m2.Partitions) != 3 || len(m.Partitions) != 2 || !m2.Start.Equal(m.Start) {
		t.Fatalf("second add: %+v (first %+v), %v", m2, m, err)
	}
	if _, err := addPartitions(prepare(m2, true, t0), 7, 3, nil, t0); !errors.Is(err, kerr.ConcurrentTransactions) {
		t.Fatalf("add while preparing: %v", err)
	}
	done := complete(prepare(m2, true, t0), t0)
	if done.State != CompleteCommit || len(done.Partitions) != 0 {
		t.Fatalf("complete: %+v", done)
	}
	f := fence(m2, t0)
	if f.State != PrepareAbort || f.Epoch != 4 || len(f.Partitions) != 3 {
		t.Fatalf("fence: %+v", f)
	}
}

// TestTransactionTimeout: expired only when Ongoing past its timeout.
func TestTransactionTimeout(t *testing.T) {
	m := meta(Ongoing)
	if expired(&m, t0.Add(time.Minute)) || !expired(&m, t0.Add(time.Minute+time.Millisecond)) {
		t.Fatal("expiry boundary")
	}
	m.State = CompleteCommit
	if expired(&m, t0.Add(time.Hour)) {
		t.Fatal("a complete transaction expired")
	}
}
