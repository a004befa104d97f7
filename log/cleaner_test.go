package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
	"pgregory.net/rapid"
)

const clDir = "/data/compacted-0"

// clRec is what the model remembers of one appended record.
type clRec struct {
	key, value []byte
	ts         int64
}

// clModel is every record ever appended, by offset, and each key's newest.
type clModel struct {
	recs   map[int64]clRec
	newest map[string]int64
}

func newCLModel() *clModel { return &clModel{recs: map[int64]clRec{}, newest: map[string]int64{}} }

func clConfig() Config {
	c := DefaultConfig()
	c.CleanupPolicy = "compact"
	c.SegmentBytes = 1024
	c.IndexIntervalBytes = 128
	return c
}

func clOpen(t fataler, fs vfs.FS, cfg Config, nowMs int64) *Partition {
	t.Helper()
	p, err := Open(clDir, cfg, Options{FS: fs, Now: func() time.Time { return time.UnixMilli(nowMs) }})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

// fataler is what the helpers need of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// clAppend appends one batch of "k=v" records (see clRecs) and records it.
func clAppend(t fataler, p *Partition, m *clModel, o batch.Options, ts int64, kvs ...string) {
	t.Helper()
	recs := clRecs(ts, kvs...)
	b := batch.MustBuild(o, recs...)
	res, err := p.Append(b, AppendOptions{})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	for i, r := range recs {
		off := res.FirstOffset + int64(i)
		m.recs[off] = clRec{key: r.Key, value: r.Value, ts: r.Timestamp}
		if r.Key != nil {
			m.newest[string(r.Key)] = off
		}
	}
}

// clRead is one record as read back.
type clRead struct {
	offset     int64
	key, value []byte
}

// clReadAll reads the whole partition through Read and decodes every record.
func clReadAll(t fataler, p *Partition) []clRead {
	t.Helper()
	var out []clRead
	for off := p.LogStartOffset(); off < p.LogEndOffset(); {
		res, err := p.Read(off, ReadOptions{MaxBytes: 1 << 16})
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		var buf bytes.Buffer
		_, err = res.WriteTo(&buf)
		res.Release()
		if err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		if buf.Len() == 0 {
			t.Fatalf("Read(%d) below the log end offset %d returned nothing", off, p.LogEndOffset())
		}
		for data := buf.Bytes(); len(data) > 0; {
			b, err := batch.Parse(data)
			if err != nil {
				t.Fatalf("Read(%d): bad batch: %v", off, err)
			}
			if b.LastOffset() < off {
				t.Fatalf("Read(%d) returned batch %d..%d before the offset", off, b.BaseOffset(), b.LastOffset())
			}
			it, err := b.Records(1 << 20)
			if err != nil {
				t.Fatalf("records: %v", err)
			}
			for it.Next() {
				r := it.Record()
				out = append(out, clRead{r.Offset, bytes.Clone(r.Key), bytes.Clone(r.Value)})
			}
			if err := it.Err(); err != nil {
				t.Fatalf("records: %v", err)
			}
			data = data[len(b):]
			off = b.NextOffset()
		}
	}
	return out
}

// clCheck reads the partition back and checks it against the model: every
// record is the one appended at its offset; offsets increase; the newest
// record of every key is there (tombstones older than horizon excepted);
// and no record survives that a newer one below cleanedTo (the range the
// cleaner read) supersedes, nor an expired tombstone below cleanedTo.
func clCheck(t fataler, p *Partition, m *clModel, cleanedTo, horizon int64) {
	t.Helper()
	got := clReadAll(t, p)
	// What the cleaner saw: each key's newest offset below cleanedTo.
	newestBelow := map[string]int64{}
	for off, r := range m.recs {
		if r.key != nil && off < cleanedTo {
			if old, ok := newestBelow[string(r.key)]; !ok || off > old {
				newestBelow[string(r.key)] = off
			}
		}
	}
	seen := map[int64]bool{}
	prev := int64(-1)
	for _, r := range got {
		want, ok := m.recs[r.offset]
		switch {
		case r.offset <= prev:
			t.Fatalf("offset %d after %d", r.offset, prev)
		case !ok:
			t.Fatalf("offset %d was never appended", r.offset)
		case !bytes.Equal(r.key, want.key) || !bytes.Equal(r.value, want.value) || (r.value == nil) != (want.value == nil):
			t.Fatalf("offset %d holds %q=%q, appended %q=%q", r.offset, r.key, r.value, want.key, want.value)
		case r.key != nil && r.offset < newestBelow[string(r.key)]:
			t.Fatalf("offset %d: superseded value of %q survived compaction (newest cleaned %d)", r.offset, r.key, newestBelow[string(r.key)])
		case r.key != nil && r.value == nil && r.offset < cleanedTo && want.ts < horizon:
			t.Fatalf("offset %d: expired tombstone of %q survived", r.offset, r.key)
		}
		prev = r.offset
		seen[r.offset] = true
	}
	for k, off := range m.newest {
		if rec := m.recs[off]; !seen[off] && !(rec.value == nil && rec.ts < horizon) {
			t.Fatalf("newest record of %q (offset %d) is gone", k, off)
		}
	}
}

// clFill appends batches of random keys (from keys distinct ones) with
// every codec until the partition has at least segs segments.
func clFill(t fataler, p *Partition, m *clModel, rng *rand.Rand, keys, segs int) {
	t.Helper()
	codecs := []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	for i := 0; len(p.segs.Load().segs) < segs; i++ {
		kvs := make([]string, 1+rng.IntN(4))
		for j := range kvs {
			k := fmt.Sprintf("key-%d", rng.IntN(keys))
			if rng.IntN(8) == 0 {
				kvs[j] = k + "=" // tombstone
			} else {
				kvs[j] = fmt.Sprintf("%s=value-%d-%d", k, i, j)
			}
		}
		clAppend(t, p, m, batch.Options{Codec: codecs[i%len(codecs)]}, int64(1000+i), kvs...)
	}
}

func TestCompactKeepsNewestPerKey(t *testing.T) {
	fs := vfs.NewMem()
	p := clOpen(t, fs, clConfig(), 10_000)
	m := newCLModel()
	clFill(t, p, m, rand.New(rand.NewPCG(1, 2)), 20, 8)
	leo := p.LogEndOffset()
	before := p.Size()
	res, err := p.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if res.SegmentsCleaned != 7 || res.RecordsRemoved == 0 || res.BytesAfter >= res.BytesBefore {
		t.Fatalf("result %+v", res)
	}
	if p.LogEndOffset() != leo || p.Size() >= before {
		t.Fatalf("log end offset %d (was %d), size %d (was %d)", p.LogEndOffset(), leo, p.Size(), before)
	}
	horizon := int64(10_000) - clConfig().DeleteRetentionMs
	clCheck(t, p, m, res.CleanedTo, horizon)

	// Every offset can be read, gaps included: the answer starts at the
	// batch holding it or, in a gap, the next one.
	for off := p.LogStartOffset(); off < leo; off++ {
		r, err := p.Read(off, ReadOptions{MaxBytes: 1})
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(r.Regions) == 0 {
			t.Fatalf("Read(%d): nothing", off)
		}
		r.Release()
	}

	// A second pass finds nothing dirty.
	if res2, err := p.Compact(); err != nil || res2.SegmentsCleaned != 0 {
		t.Fatalf("second pass %+v, %v", res2, err)
	}
	// Appends go on after the clean; the files verify; a clean reopen and a
	// crash reopen both see the same log.
	clAppend(t, p, m, batch.Options{}, 9000, "key-1=after")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := Verify(fs, clDir, VerifyOptions{Records: true}); err != nil || !r.Clean() {
		t.Fatalf("verify: %v %v", err, r.Problems)
	}
	p = clOpen(t, fs, clConfig(), 10_000)
	clCheck(t, p, m, res.CleanedTo, horizon)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	abandonCL(p)
	p = clOpen(t, fs, clConfig(), 10_000)
	defer p.Close()
	if p.Recovery().Clean {
		t.Fatal("crash reopen was clean")
	}
	clCheck(t, p, m, res.CleanedTo, horizon)
	if p.LogEndOffset() != leo+1 {
		t.Fatalf("log end offset %d after crash, want %d", p.LogEndOffset(), leo+1)
	}
}

// abandonCL lets go of a partition whose FS crashed: Close fails on the
// dead handles, but its goroutines must stop.
func abandonCL(p *Partition) { _ = p.Close() }

func TestCompactTombstones(t *testing.T) {
	tests := []struct {
		name        string
		retentionMs int64
		wantGone    bool
	}{
		{"kept within delete.retention.ms", 5_000, false},
		{"dropped after delete.retention.ms", 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clConfig()
			cfg.DeleteRetentionMs = tt.retentionMs
			p := clOpen(t, vfs.NewMem(), cfg, 2_000)
			defer p.Close()
			m := newCLModel()
			clAppend(t, p, m, batch.Options{}, 1000, "a=1", "b=1")
			clAppend(t, p, m, batch.Options{Codec: batch.CodecSnappy}, 1000, "a=")
			clAppend(t, p, m, batch.Options{}, 1000, "c=1")
			if err := p.rollForTest(); err != nil {
				t.Fatal(err)
			}
			res, err := p.Compact()
			if err != nil {
				t.Fatal(err)
			}
			var kvs []string
			for _, r := range clReadAll(t, p) {
				kvs = append(kvs, fmt.Sprintf("%d:%s=%s", r.offset, r.key, r.value))
			}
			want := "[1:b=1 2:a= 3:c=1]"
			if tt.wantGone {
				want = "[1:b=1 3:c=1]"
			}
			if fmt.Sprint(kvs) != want {
				t.Fatalf("log %v, want %s (result %+v)", kvs, want, res)
			}
		})
	}
}

// rollForTest seals the active segment so the cleaner may take it.
func (p *Partition) rollForTest() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.roll(p.endOffset.Load())
	return err
}

// TestCompactKeepsProducerState: batches whose records are all superseded
// stay as empty batches when they carry a producer id, so after a crash the
// producer state rebuilt from the log still recognises a retry.
func TestCompactKeepsProducerState(t *testing.T) {
	fs := vfs.NewMem()
	p := clOpen(t, fs, clConfig(), 10_000)
	m := newCLModel()
	idem := batch.Options{Idempotent: true, ProducerID: 42, ProducerEpoch: 3}
	clAppend(t, p, m, idem, 1000, "a=1", "b=1")
	last := idem
	last.BaseSequence = 2
	clAppend(t, p, m, last, 1000, "a=2", "b=2")
	clAppend(t, p, m, batch.Options{}, 1000, "a=3", "b=3") // supersedes both producer batches
	if err := p.rollForTest(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	abandonCL(p)
	p = clOpen(t, fs, clConfig(), 10_000)
	defer p.Close()
	// Remove the snapshots' help: the state must come from the batches.
	p.mu.Lock()
	p.producers = newProducerLedger()
	err := p.replayProducers(p.segs.Load().segs[0].base, p.LogEndOffset())
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	retry := batch.MustBuild(last, clRecs(1000, "a=2", "b=2")...)
	res, err := p.Append(retry, AppendOptions{})
	if err != nil || !res.Duplicate || res.FirstOffset != 2 {
		t.Fatalf("retry after compaction: %+v, %v", res, err)
	}
	clCheck(t, p, m, 6, 0)
}

// TestCompactDuringAppends runs passes while a writer appends: the writer
// is never refused and the result is consistent.
func TestCompactDuringAppends(t *testing.T) {
	fs := vfs.NewMem()
	cfg := clConfig()
	cfg.MinCleanableDirtyRatio = 0
	p := clOpen(t, fs, cfg, 10_000)
	defer p.Close()
	m := newCLModel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var passes int
	var cleanErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := p.Compact(); err != nil {
				cleanErr = err
				return
			}
			passes++
		}
	}()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 400 {
		clAppend(t, p, m, batch.Options{Codec: batch.Codec(i % 5)}, int64(i), fmt.Sprintf("k%d=v%d", rng.IntN(30), i))
	}
	close(stop)
	wg.Wait()
	if cleanErr != nil {
		t.Fatal(cleanErr)
	}
	res, err := p.Compact()
	if err != nil {
		t.Fatal(err)
	}
	clCheck(t, p, m, res.CleanedTo, 0)
	t.Logf("%d passes during 400 appends", passes)
}

// TestCompactRacesLoseNothing: a segment that retention or truncation took
// while it was being cleaned is not swapped in.
func TestCompactRacesLoseNothing(t *testing.T) {
	fs := vfs.NewMem()
	p := clOpen(t, fs, clConfig(), 10_000)
	defer p.Close()
	m := newCLModel()
	clFill(t, p, m, rand.New(rand.NewPCG(5, 6)), 5, 3)
	s := p.segs.Load().segs[1]
	size := s.size.Load()
	om := newOffsetMap()
	if err := mapSegment(s, size, om, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.writeCleaned(s, size, om, nil, 0, 128); err != nil {
		t.Fatal(err)
	}
	if err := p.Truncate(s.base + 1); err != nil { // s becomes the active segment, cut
		t.Fatal(err)
	}
	if committed, err := p.swapCleaned(s, size, 0); !errors.Is(err, errCleanRaced) || committed {
		t.Fatalf("swap after truncation: committed %v, %v", committed, err)
	}
	p.removeCleaned(s.base)
	names, _ := fs.List(clDir)
	for _, n := range names {
		if bytes.HasSuffix([]byte(n), []byte(cleanedSuffix)) {
			t.Fatalf("leftover %s", n)
		}
	}
}

// TestCompactCrashAtEveryStep fails the cleaner's n-th file operation and
// crashes the machine right there, for every n until a pass completes: the
// reopened log must hold the newest value of every key, read across its
// gaps, and verify clean.
func TestCompactCrashAtEveryStep(t *testing.T) {
	finished := 0 // reopens that completed a committed swap
	for n := 0; ; n++ {
		fs := vfs.NewMem()
		p := clOpen(t, fs, clConfig(), 10_000)
		m := newCLModel()
		clFill(t, p, m, rand.New(rand.NewPCG(7, 8)), 12, 4)
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		ops := 0
		fs.SetInjector(func(op vfs.Op, name string) error {
			if ops++; ops > n {
				return errors.New("injected failure")
			}
			return nil
		})
		res, err := p.Compact()
		done := err == nil && ops <= n
		fs.SetInjector(nil)
		fs.Crash()
		abandonCL(p)

		p = clOpen(t, fs, clConfig(), 10_000)
		for _, pr := range p.Recovery().Problems {
			if bytes.Contains([]byte(pr), []byte("completed a compaction")) {
				finished++
			}
		}
		clCheck(t, p, m, 0, 0)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Verify(fs, clDir, VerifyOptions{Records: true})
		if err != nil || !r.Clean() || len(r.Notes) > 0 {
			t.Fatalf("step %d: verify: %v %v %q", n, err, r.Problems, r.Notes)
		}
		if done {
			if res.SegmentsCleaned == 0 || finished == 0 {
				t.Fatalf("the pass cleaned %d segments; %d reopens finished a committed swap", res.SegmentsCleaned, finished)
			}
			t.Logf("a pass takes %d file operations; crashed after each, %d reopens finished a swap", n, finished)
			return
		}
		if n > 10_000 {
			t.Fatal("the pass never completes")
		}
	}
}

// TestCompactModel: random appends, compactions, rolls, crashes and
// reopens against the model.
func TestCompactModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fs := vfs.NewMem()
		cfg := clConfig()
		cfg.SegmentBytes = int64(rapid.IntRange(300, 2000).Draw(rt, "segmentBytes"))
		cfg.MinCleanableDirtyRatio = rapid.Float64Range(0, 1).Draw(rt, "ratio")
		p := clOpen(rt, fs, cfg, 10_000)
		defer func() { _ = p.Close() }()
		defer func(k int) { cleanMaxKeys = k }(cleanMaxKeys)
		cleanMaxKeys = rapid.IntRange(1, 20).Draw(rt, "maxKeys")
		m := newCLModel()
		cleanedTo := int64(0)
		keys := rapid.IntRange(1, 10).Draw(rt, "keys")
		for i := range rapid.IntRange(1, 60).Draw(rt, "steps") {
			switch rapid.IntRange(0, 9).Draw(rt, fmt.Sprint("op", i)) {
			default:
				kvs := make([]string, rapid.IntRange(1, 5).Draw(rt, fmt.Sprint("n", i)))
				for j := range kvs {
					k := rapid.IntRange(0, keys-1).Draw(rt, fmt.Sprint("k", i, j))
					kvs[j] = fmt.Sprintf("k%d=v%d.%d", k, i, j)
				}
				codec := batch.Codec(rapid.IntRange(0, 4).Draw(rt, fmt.Sprint("codec", i)))
				clAppend(rt, p, m, batch.Options{Codec: codec}, int64(i), kvs...)
			case 7:
				res, err := p.Compact()
				if err != nil {
					rt.Fatalf("Compact: %v", err)
				}
				if res.SegmentsCleaned > 0 {
					cleanedTo = res.CleanedTo
				}
			case 8:
				if err := p.rollForTest(); err != nil {
					rt.Fatal(err)
				}
			case 9:
				if err := p.Flush(); err != nil {
					rt.Fatal(err)
				}
				fs.Crash()
				abandonCL(p)
				p = clOpen(rt, fs, cfg, 10_000)
			}
		}
		clCheck(rt, p, m, cleanedTo, 0)
	})
}

// TestCleanerBackground: the background cleaner compacts a partition on its
// own; Close stops its goroutine (goleak checks in TestMain).
func TestCleanerBackground(t *testing.T) {
	fs := vfs.NewMem()
	p := clOpen(t, fs, clConfig(), 10_000)
	m := newCLModel()
	clFill(t, p, m, rand.New(rand.NewPCG(9, 10)), 5, 4)
	other := clOpen(t, vfs.NewMem(), DefaultConfig(), 10_000) // delete policy: left alone
	before := p.Size()
	c := NewCleaner(CleanerOptions{Interval: time.Millisecond})
	c.Add(p)
	c.Add(other)
	c.Start()
	c.Start() // idempotent
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	deadline := time.After(10 * time.Second)
	for p.Size() >= before {
		select {
		case <-deadline:
			t.Fatal("the cleaner did not compact within 10s")
		case <-poll.C:
		}
	}
	c.Remove(p)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	clCheck(t, p, m, 0, 0)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCleanerRunOnce(t *testing.T) {
	p := clOpen(t, vfs.NewMem(), clConfig(), 10_000)
	m := newCLModel()
	clFill(t, p, m, rand.New(rand.NewPCG(11, 12)), 5, 3)
	closed := clOpen(t, vfs.NewMem(), clConfig(), 10_000)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	c := NewCleaner(CleanerOptions{})
	defer c.Close()
	c.Add(p)
	c.Add(closed)
	got := c.RunOnce()
	if len(got) != 1 || got[p].SegmentsCleaned != 2 {
		t.Fatalf("RunOnce = %+v", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCompactBoundedMap: with a key map too small for the dirty part, each
// pass cleans what it mapped and the next goes on from there, until the
// whole log is compacted.
func TestCompactBoundedMap(t *testing.T) {
	defer func(k int) { cleanMaxKeys = k }(cleanMaxKeys)
	cleanMaxKeys = 8
	cfg := clConfig()
	cfg.MinCleanableDirtyRatio = 0
	p := clOpen(t, vfs.NewMem(), cfg, 10_000)
	defer p.Close()
	m := newCLModel()
	clFill(t, p, m, rand.New(rand.NewPCG(13, 14)), 40, 8)
	sealedEnd := p.segs.Load().active().base
	passes, cleanedTo := 0, int64(0)
	for cleanedTo < sealedEnd {
		res, err := p.Compact()
		if err != nil {
			t.Fatal(err)
		}
		if res.SegmentsCleaned == 0 || res.CleanedTo <= cleanedTo {
			t.Fatalf("pass %d made no progress: %+v", passes, res)
		}
		cleanedTo = res.CleanedTo
		passes++
	}
	if passes < 2 {
		t.Fatalf("%d passes; the map bound did not split the work", passes)
	}
	clCheck(t, p, m, cleanedTo, 0)
}
