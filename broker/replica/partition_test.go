package replica

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testNow = time.UnixMilli(1_800_000_000_000)

// fataler is what the helpers need of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// newTestManager opens a manager over dir with a fixed clock.
func newTestManager(t fataler, dir string, fs vfs.FS) *Manager {
	t.Helper()
	m, err := NewManager(ManagerConfig{
		DataDir:    dir,
		BrokerID:   1,
		LogOptions: log.Options{FS: fs},
		Now:        func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func mustCreate(t fataler, m *Manager, topic string, partition int32, edit func(*Config)) *Partition {
	t.Helper()
	c := DefaultConfig()
	if edit != nil {
		edit(&c)
	}
	p, err := m.CreatePartitionConfig(topic, partition, c)
	if err != nil {
		t.Fatalf("CreatePartitionConfig: %v", err)
	}
	return p
}

// records builds one batch of n records with values "<tag>-<i>".
func records(tag string, n int, o batch.Options) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	return batch.MustBuild(o, recs...)
}

// readAll reads the committed batches from offset and returns them as bytes.
func readAll(t fataler, p *Partition, offset int64, maxBytes int) []byte {
	t.Helper()
	r, err := p.Read(offset, maxBytes)
	if err != nil {
		t.Fatalf("Read(%d): %v", offset, err)
	}
	defer r.Release()
	if r.Log == nil {
		return nil
	}
	var buf bytes.Buffer
	if _, err := r.Log.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

func TestAppendAdvancesHighWatermark(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, nil)
	for i, n := range []int{3, 1, 5} {
		res, err := p.Append(records("a", n, batch.Options{}), 1)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if p.HighWatermark() != res.LastOffset+1 || p.LastStableOffset() != p.HighWatermark() {
			t.Fatalf("HW %d LSO %d after last offset %d", p.HighWatermark(), p.LastStableOffset(), res.LastOffset)
		}
	}
	if p.HighWatermark() != 9 || p.LogEndOffset() != 9 {
		t.Fatalf("HW %d LEO %d, want 9 9", p.HighWatermark(), p.LogEndOffset())
	}
}

func TestAppendRejects(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		records []byte
		acks    int16
		want    error
	}{
		{"too large", func(c *Config) { c.MaxMessageBytes = 100 }, records("x", 10, batch.Options{}), 1, ErrMessageTooLarge},
		{"control batch", nil, records("x", 1, batch.Options{Control: true}), 1, batch.ErrInvalidRecord},
		{"ISR below min.insync.replicas", func(c *Config) { c.MinInsyncReplicas = 2 }, records("x", 1, batch.Options{}), -1, ErrNotEnoughReplicas},
		{"corrupt", nil, corrupt(records("x", 2, batch.Options{})), 1, batch.ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManager(t, t.TempDir(), nil)
			defer m.Close()
			p := mustCreate(t, m, "t", 0, tc.edit)
			if _, err := p.Append(tc.records, tc.acks); !errors.Is(err, tc.want) {
				t.Fatalf("Append error = %v, want %v", err, tc.want)
			}
			if p.LogEndOffset() != 0 || p.HighWatermark() != 0 {
				t.Fatalf("log changed: LEO %d HW %d", p.LogEndOffset(), p.HighWatermark())
			}
		})
	}
}

// corrupt flips a byte of the records section, so the CRC fails.
func corrupt(b []byte) []byte {
	b[len(b)-2] ^= 0xff
	return b
}

func TestAcksOneWithSmallISRIsAccepted(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, func(c *Config) { c.MinInsyncReplicas = 2 })
	if _, err := p.Append(records("x", 1, batch.Options{}), 1); err != nil {
		t.Fatalf("acks=1 must not check min.insync.replicas: %v", err)
	}
}

func TestLogAppendTime(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, func(c *Config) { c.TimestampType = LogAppendTime })
	res, err := p.Append(records("x", 2, batch.Options{}), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime != testNow.UnixMilli() {
		t.Fatalf("LogAppendTime = %d, want %d", res.LogAppendTime, testNow.UnixMilli())
	}
	b, err := batch.Parse(readAll(t, p, 0, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if !b.IsLogAppendTime() || b.MaxTimestamp() != testNow.UnixMilli() {
		t.Fatalf("stored batch: LogAppendTime %v max timestamp %d", b.IsLogAppendTime(), b.MaxTimestamp())
	}
}

func TestLeaderEpochStamped(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, nil)
	p.BecomeLeader(7, []int32{1})
	if _, err := p.Append(records("x", 1, batch.Options{PartitionLeaderEpoch: -1}), 1); err != nil {
		t.Fatal(err)
	}
	b, err := batch.Parse(readAll(t, p, 0, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if b.PartitionLeaderEpoch() != 7 {
		t.Fatalf("leader epoch %d, want 7", b.PartitionLeaderEpoch())
	}
}

// TestHighWatermarkWaitsForISR adds a follower to the ISR: the HW stops at
// what the follower has fetched, and acks=all waits for it (KIP-101's model
// of commitment).
func TestHighWatermarkWaitsForISR(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, func(c *Config) { c.MinInsyncReplicas = 2 })
	p.BecomeLeader(1, []int32{1, 2})
	res, err := p.Append(records("x", 4, batch.Options{}), -1)
	if err != nil {
		t.Fatal(err)
	}
	if p.HighWatermark() != 0 {
		t.Fatalf("HW %d before the follower fetched", p.HighWatermark())
	}
	if done, _ := p.AckState(res.LastOffset); done {
		t.Fatal("acks=all done before the follower has the batch")
	}
	if n := len(readAll(t, p, 0, 1<<20)); n != 0 {
		t.Fatalf("a consumer read %d uncommitted bytes", n)
	}
	if got, _ := p.AvailableBytes(0, 1, false); got != 0 {
		t.Fatalf("consumer AvailableBytes = %d before the follower fetched", got)
	}
	if got, _ := p.AvailableBytes(0, 1, true); got != 1 {
		t.Fatalf("follower AvailableBytes = %d, want 1", got)
	}
	r, err := p.ReadReplica(2, 0, 1<<20)
	if err != nil || r.Bytes() == 0 || r.HighWatermark != 0 {
		t.Fatalf("follower read: %d bytes, HW %d, %v", r.Bytes(), r.HighWatermark, err)
	}
	r.Release()
	p.UpdateFollower(2, 2)
	if p.HighWatermark() != 2 {
		t.Fatalf("HW %d, want 2", p.HighWatermark())
	}
	p.UpdateFollower(2, 4)
	if done, err := p.AckState(res.LastOffset); !done || err != nil {
		t.Fatalf("AckState = %v %v after the follower caught up", done, err)
	}
	p.BecomeLeader(2, []int32{1})
	if done, err := p.AckState(res.LastOffset); !done || !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("AckState with a shrunk ISR = %v %v", done, err)
	}
}

func TestReadInsideBatchAndLimits(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, nil)
	var batches [][]byte
	for i := range 3 {
		b := records(fmt.Sprint(i), 4, batch.Options{})
		if _, err := p.Append(b, 1); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b) // offsets assigned in place
	}
	tests := []struct {
		name     string
		offset   int64
		maxBytes int
		want     []byte
	}{
		{"from start", 0, 1 << 20, bytes.Join(batches, nil)},
		{"inside second batch", 6, 1 << 20, bytes.Join(batches[1:], nil)},
		{"first batch whole over the limit (KIP-74)", 5, 1, batches[1]},
		{"at high watermark", 12, 1 << 20, nil},
		{"no budget", 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readAll(t, p, tc.offset, tc.maxBytes); !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
	for _, off := range []int64{-1, 13} {
		if _, err := p.Read(off, 100); !errors.Is(err, log.ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) error = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if got, _ := p.AvailableBytes(12, 100, false); got != 0 {
		t.Fatalf("AvailableBytes at HW = %d", got)
	}
	if got, _ := p.AvailableBytes(4, 1<<20, false); got != int64(len(batches[1])+len(batches[2])) {
		t.Fatalf("AvailableBytes(4) = %d", got)
	}
}

// TestAvailableBytesAcrossSegments: with segment.bytes so small that every
// batch rolls, a long-poll fetch whose data runs past the segment of its
// fetch offset completes at once, since a read returns one segment only
// (Kafka's DelayedFetch, fetch offset on an older segment); inside one
// segment the bytes are counted. The bound is the high watermark for a
// consumer, the log end offset for a follower and the last stable offset
// for read_committed (KIP-98).
func TestAvailableBytesAcrossSegments(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	tiny := func(c *Config) { c.Log.SegmentBytes = 61 } // smaller than any batch
	txn := batch.Options{Idempotent: true, Transactional: true, ProducerID: 9}
	opts := []batch.Options{{}, {}, txn} // offsets 0-3, 4-7, 8-11
	var sizes []int64
	lagging := mustCreate(t, m, "lagging", 0, tiny) // HW held at 4 by a follower
	lagging.BecomeLeader(1, []int32{1, 2})
	open := mustCreate(t, m, "open", 0, tiny) // HW 12, an open transaction at 8
	for i, o := range opts {
		b := records(fmt.Sprint(i), 4, o)
		sizes = append(sizes, int64(len(b)))
		for _, p := range []*Partition{lagging, open} {
			if _, err := p.Append(bytes.Clone(b), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	lagging.UpdateFollower(2, 4)
	if segs, _ := filepath.Glob(filepath.Join(open.Log().Dir(), "*.log")); len(segs) != 3 {
		t.Fatalf("%d segments, want one per batch", len(segs))
	}
	if hw, lso := open.HighWatermark(), open.LastStableOffset(); hw != 12 || lso != 8 || lagging.HighWatermark() != 4 {
		t.Fatalf("open: HW %d LSO %d; lagging: HW %d", hw, lso, lagging.HighWatermark())
	}
	const consumer, follower, committed = 0, 1, 2
	big := 1 << 20
	tests := []struct {
		name         string
		p            *Partition
		mode         int
		offset       int64
		limit        int
		wantN        int64
		wantComplete bool
	}{
		{"data in later segments", open, consumer, 0, big, 1, true},
		{"from the middle of a segment", open, consumer, 5, big, 1, true},
		{"last segment counted", open, consumer, 8, big, sizes[2], false},
		{"at the high watermark", open, consumer, 12, big, 0, false},
		{"limit 1 reads nothing", open, consumer, 0, 1, 1, false},
		{"out of range", open, consumer, 13, big, 0, true},
		{"high watermark in the same segment", lagging, consumer, 0, big, sizes[0], false},
		{"follower reads to the log end", lagging, follower, 0, big, 1, true},
		{"stable data in a later segment", open, committed, 0, big, 1, true},
		{"stable data in the same segment", open, committed, 4, big, sizes[1], false},
		{"at the last stable offset", open, committed, 8, big, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n int64
			var complete bool
			switch tc.mode {
			case committed:
				n, complete = tc.p.AvailableStableBytes(tc.offset, tc.limit)
			default:
				n, complete = tc.p.AvailableBytes(tc.offset, tc.limit, tc.mode == follower)
			}
			if n != tc.wantN || complete != tc.wantComplete {
				t.Fatalf("available(%d, %d) = %d, complete %v; want %d, %v",
					tc.offset, tc.limit, n, complete, tc.wantN, tc.wantComplete)
			}
		})
	}
}

func TestDeleteRecordsAndTimestamps(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil)
	defer m.Close()
	p := mustCreate(t, m, "t", 0, nil)
	for i := range 3 {
		recs := []batch.Record{{Timestamp: int64(100 * (i + 1)), Value: []byte("v")}}
		if _, err := p.Append(batch.MustBuild(batch.Options{}, recs...), 1); err != nil {
			t.Fatal(err)
		}
	}
	off, ts, err := p.OffsetForTimestamp(150)
	if err != nil || off != 1 || ts != 200 {
		t.Fatalf("OffsetForTimestamp(150) = %d %d %v, want 1 200", off, ts, err)
	}
	if _, _, err := p.OffsetForTimestamp(301); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("OffsetForTimestamp past the end: %v", err)
	}
	if _, err := p.DeleteRecordsBefore(4); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatalf("delete past HW: %v", err)
	}
	low, err := p.DeleteRecordsBefore(2)
	if err != nil || low != 2 || p.LogStartOffset() != 2 {
		t.Fatalf("DeleteRecordsBefore(2) = %d %v, start %d", low, err, p.LogStartOffset())
	}
	if _, err := p.Read(1, 100); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	if low, err := p.DeleteRecordsBefore(-1); err != nil || low != 3 {
		t.Fatalf("DeleteRecordsBefore(-1) = %d %v, want 3", low, err)
	}
}

func TestManagerReopenAndDelete(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, dir, nil)
	mustCreate(t, m, "a-b", 0, nil)
	mustCreate(t, m, "a-b", 1, nil)
	p := mustCreate(t, m, "c", 0, nil)
	if _, err := p.Append(records("x", 3, batch.Options{}), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreatePartition("c", 0, log.DefaultConfig()); !errors.Is(err, ErrPartitionExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b", "a b"} {
		if _, err := m.CreatePartition(bad, 0, log.DefaultConfig()); !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Append(records("x", 1, batch.Options{}), 1); !errors.Is(err, ErrPartitionClosed) {
		t.Fatalf("append after close: %v", err)
	}

	m = newTestManager(t, dir, nil)
	defer m.Close()
	var names []string
	for _, p := range m.Partitions() {
		names = append(names, p.TopicPartition().String())
	}
	if fmt.Sprint(names) != "[a-b-0 a-b-1 c-0]" {
		t.Fatalf("reopened partitions %v", names)
	}
	c, _ := m.Partition("c", 0)
	if c.HighWatermark() != 3 || c.LogEndOffset() != 3 {
		t.Fatalf("reopened HW %d LEO %d, want 3 3", c.HighWatermark(), c.LogEndOffset())
	}
	if err := m.DeleteTopic("a-b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Partition("a-b", 0); ok {
		t.Fatal("partition still hosted after DeleteTopic")
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "a-b-*")); len(got) != 0 {
		t.Fatalf("directories left after DeleteTopic: %v", got)
	}
}

// TestFsyncAlwaysSurvivesCrash appends with fsync=always and crashes the
// in-memory file system without closing anything: only synced data
// survives, and every acknowledged batch must be there after recovery.
func TestFsyncAlwaysSurvivesCrash(t *testing.T) {
	fs := vfs.NewMem()
	open := func() *Manager {
		m, err := NewManager(ManagerConfig{DataDir: "/data", BrokerID: 1, LogOptions: log.Options{FS: fs, Fsync: log.FsyncAlways}})
		if err != nil {
			t.Fatalf("NewManager: %v", err)
		}
		return m
	}
	m := open()
	p := mustCreate(t, m, "t", 0, nil)
	var acked [][]byte
	for i := range 20 {
		b := records(fmt.Sprint(i), 3, batch.Options{})
		if _, err := p.Append(b, -1); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, b)
	}
	fs.Crash()
	m.Close() // closes nothing durable: the crashed FS refuses writes
	m = open()
	defer m.Close()
	p, ok := m.Partition("t", 0)
	if !ok {
		t.Fatal("partition lost in the crash")
	}
	if p.LogEndOffset() != 60 || p.HighWatermark() != 60 {
		t.Fatalf("after crash LEO %d HW %d, want 60 60", p.LogEndOffset(), p.HighWatermark())
	}
	var got []byte
	for at := int64(0); at < 60; {
		chunk := readAll(t, p, at, 1<<20)
		last, err := lastBatch(chunk)
		if err != nil || len(chunk) == 0 {
			t.Fatalf("read at %d: %d bytes, %v", at, len(chunk), err)
		}
		got = append(got, chunk...)
		at = last.NextOffset()
	}
	if !bytes.Equal(got, bytes.Join(acked, nil)) {
		t.Fatal("recovered log differs from the acknowledged batches")
	}
}

func TestProducerIDsUniqueAcrossRestarts(t *testing.T) {
	fs := vfs.NewMem()
	seen := map[int64]bool{}
	for round := range 3 {
		m := newTestManager(t, "/data", fs)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 300 {
					id, err := m.NextProducerID()
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[id] {
						t.Errorf("round %d: producer id %d handed out twice", round, id)
					}
					seen[id] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if round == 1 {
			fs.Crash() // only what was synced survives
		}
		m.Close()
	}
	if len(seen) != 3*4*300 {
		t.Fatalf("%d ids", len(seen))
	}
}

func TestCorruptProducerIDBlock(t *testing.T) {
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create("/data/" + producerIDFile)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("12x\n"), 0)
	f.Close()
	_, err = NewManager(ManagerConfig{DataDir: "/data", LogOptions: log.Options{FS: fs}})
	if !errors.Is(err, ErrCorruptProducerIDBlock) {
		t.Fatalf("NewManager error = %v, want ErrCorruptProducerIDBlock", err)
	}
}

// TestPartitionModel appends random batches and reads at random offsets,
// comparing with a slice of the batches appended: a read returns whole
// batches from the one containing the offset, never past the HW.
func TestPartitionModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newTestManager(t, "/data", vfs.NewMem())
		defer m.Close()
		p := mustCreate(t, m, "t", 0, func(c *Config) { c.Log.SegmentBytes = 512 })

		var model [][]byte // stored batches in order
		var next int64
		t.Repeat(map[string]func(*rapid.T){
			"append": func(t *rapid.T) {
				n := rapid.IntRange(1, 5).Draw(t, "records")
				b := records("v", n, batch.Options{})
				res, err := p.Append(b, 1)
				if err != nil {
					t.Fatal(err)
				}
				if res.FirstOffset != next {
					t.Fatalf("first offset %d, want %d", res.FirstOffset, next)
				}
				next += int64(n)
				model = append(model, b)
			},
			"read": func(t *rapid.T) {
				off := rapid.Int64Range(0, next).Draw(t, "offset")
				maxBytes := rapid.IntRange(1, 600).Draw(t, "maxBytes")
				var got []byte
				// A read may stop at a segment end or the byte budget: read
				// on from the next offset, as a consumer does, to the HW.
				for at := off; at < p.HighWatermark(); {
					chunk := readAll(t, p, at, maxBytes)
					if len(chunk) == 0 {
						t.Fatalf("empty read at %d below HW %d", at, p.HighWatermark())
					}
					got = append(got, chunk...)
					last, err := lastBatch(chunk)
					if err != nil {
						t.Fatalf("read at %d: %v", at, err)
					}
					at = last.NextOffset()
				}
				var want []byte
				for _, b := range model {
					if batch.Batch(b).LastOffset() >= off {
						want = append(want, b...)
					}
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read at %d: %d bytes, want %d", off, len(got), len(want))
				}
			},
			"": func(t *rapid.T) {
				if p.HighWatermark() != next {
					t.Fatalf("HW %d, want %d", p.HighWatermark(), next)
				}
			},
		})
	})
}

// lastBatch parses b as whole batches and returns the last one.
func lastBatch(b []byte) (batch.Batch, error) {
	var last batch.Batch
	for len(b) > 0 {
		bt, err := batch.Parse(b)
		if err != nil {
			return nil, err
		}
		last, b = bt, b[len(bt):]
	}
	return last, nil
}

// TestConcurrentAppendsAndReads appends from several goroutines while
// others read: offsets are unique and contiguous, the high watermark ends
// at the total, and no read ever sees past it.
func TestConcurrentAppendsAndReads(t *testing.T) {
	for _, fsync := range []log.FsyncPolicy{log.FsyncNever, log.FsyncAlways} {
		t.Run(fsync.String(), func(t *testing.T) {
			m, err := NewManager(ManagerConfig{DataDir: t.TempDir(), BrokerID: 1, LogOptions: log.Options{Fsync: fsync}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p := mustCreate(t, m, "c", 0, nil)
			const writers, perWriter, size = 4, 50, 3
			var wg sync.WaitGroup
			firsts := make(chan int64, writers*perWriter)
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perWriter {
						res, err := p.Append(records("c", size, batch.Options{}), -1)
						if err != nil {
							t.Error(err)
							return
						}
						if p.HighWatermark() <= res.LastOffset {
							t.Errorf("HW %d not past an acknowledged batch ending at %d", p.HighWatermark(), res.LastOffset)
						}
						firsts <- res.FirstOffset
					}
				}()
			}
			stop := make(chan struct{})
			var readers sync.WaitGroup
			for range 2 {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						hw := p.HighWatermark()
						r, err := p.Read(0, 1<<20)
						if err != nil {
							t.Error(err)
							return
						}
						var buf bytes.Buffer
						if r.Log != nil {
							r.Log.WriteTo(&buf)
						}
						r.Release()
						if last, err := lastBatch(buf.Bytes()); err != nil {
							t.Errorf("read: %v", err)
							return
						} else if last != nil && last.NextOffset() > max(hw, p.HighWatermark()) {
							t.Errorf("read past the high watermark: %d > %d", last.NextOffset(), p.HighWatermark())
							return
						}
					}
				}()
			}
			wg.Wait()
			close(stop)
			readers.Wait()
			close(firsts)
			seen := map[int64]bool{}
			for f := range firsts {
				if f%size != 0 || seen[f] {
					t.Fatalf("first offset %d reused or misaligned", f)
				}
				seen[f] = true
			}
			if want := int64(writers * perWriter * size); p.HighWatermark() != want || len(seen) != writers*perWriter {
				t.Fatalf("HW %d, %d batches; want %d, %d", p.HighWatermark(), len(seen), want, writers*perWriter)
			}
		})
	}
}
