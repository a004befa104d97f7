package consumer

import "time"

// tracker follows the records of one partition from fetch to done and
// knows the offset that may be committed: the first record not yet done,
// or one past the last fetched record when all are done. It is a pure core
// (no clock, no locks); the caller serialises access.
type tracker struct {
	next  int64     // offset to commit when queue is empty
	queue []pending // fetched records, in offset order
	hwm   int64     // high watermark last seen, -1 unknown
	// committed is the last offset committed (franz-go backend; 0 none).
	committed int64
	started   bool
}

type pending struct {
	offset int64
	time   time.Time
	done   bool
}

func newTracker(start int64) *tracker { return &tracker{next: start, hwm: -1} }

// fetched records a fetched record; offsets must increase.
func (t *tracker) fetched(offset int64, ts time.Time, hwm int64) {
	t.queue = append(t.queue, pending{offset: offset, time: ts})
	if !t.started || offset >= t.next {
		t.next = offset + 1
		t.started = true
	}
	if hwm > t.hwm {
		t.hwm = hwm
	}
}

// done marks a fetched record done; an unknown offset is ignored.
func (t *tracker) done(offset int64) {
	for i := range t.queue {
		if t.queue[i].offset == offset {
			t.queue[i].done = true
			break
		}
	}
	n := 0
	for n < len(t.queue) && t.queue[n].done {
		n++
	}
	t.queue = t.queue[n:]
}

// committable is the offset to commit: every record below it is done.
func (t *tracker) committable() int64 {
	if len(t.queue) > 0 {
		return t.queue[0].offset
	}
	return t.next
}

// lag returns the records between the committable offset and the high
// watermark, and the age at now of the oldest fetched record not done.
func (t *tracker) lag(now time.Time) (int64, time.Duration) {
	var records int64
	if t.hwm >= 0 {
		records = max(t.hwm-t.committable(), 0)
	}
	var age time.Duration
	if len(t.queue) > 0 && !t.queue[0].time.IsZero() {
		age = max(now.Sub(t.queue[0].time), 0)
	}
	return records, age
}
