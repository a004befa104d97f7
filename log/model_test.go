package log

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// modelBatch is a batch as the model expects to read it back.
type modelBatch struct {
	base, last int64
	data       []byte
	seq        int32 // base sequence of an idempotent batch (producer 7), or -1
}

// logModel is the reference: a slice of batches, a start and an end offset.
type logModel struct {
	batches []modelBatch
	start   int64
	leo     int64
	durable int64        // offsets below were fsynced (Flush, Close or FsyncAlways)
	idem    []modelBatch // producer 7's batches the producer state knows
}

// forget drops producer history at or past the log end (truncation, crash);
// a full truncation forgets everything.
func (m *logModel) forget(full bool) {
	if full {
		m.idem = nil
		return
	}
	for len(m.idem) > 0 && m.idem[len(m.idem)-1].last >= m.leo {
		m.idem = m.idem[:len(m.idem)-1]
	}
}

// truncate drops batches holding offsets >= off, as Truncate does.
func (m *logModel) truncate(off int64) {
	if off <= m.start {
		m.batches, m.start, m.leo = nil, off, off
		m.durable = min(m.durable, off)
		return
	}
	for i, b := range m.batches {
		if b.last >= off {
			m.batches, m.leo = m.batches[:i], b.base
			break
		}
	}
	m.start = min(m.start, m.leo)
	m.durable = min(m.durable, m.leo)
}

// from returns the model batches a read at off must start with.
func (m *logModel) from(off int64) []modelBatch {
	for i, b := range m.batches {
		if b.last >= off {
			return m.batches[i:]
		}
	}
	return nil
}

// TestPartitionModel runs random appends, reads, truncations, rolls,
// retention, DeleteRecords, flushes and restarts (clean, and crashes that
// keep a random part of the unsynced bytes) against logModel.
func TestPartitionModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		always := rapid.Bool().Draw(rt, "fsyncAlways")
		cfg := DefaultConfig()
		cfg.SegmentBytes = int64(rapid.IntRange(300, 3000).Draw(rt, "segmentBytes"))
		cfg.IndexIntervalBytes = int64(rapid.IntRange(0, 600).Draw(rt, "indexInterval"))
		opts := Options{}
		if always {
			opts.Fsync = FsyncAlways
		}
		fs := vfs.NewMem()
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 1))
		p := openT(rt, fs, cfg, opts)
		defer func() { p.Close() }()
		m := &logModel{}
		tag := byte(0)

		check := func(rt *rapid.T) {
			if p.LogEndOffset() != m.leo || p.LogStartOffset() != m.start {
				rt.Fatalf("offsets [%d, %d), model [%d, %d)", p.LogStartOffset(), p.LogEndOffset(), m.start, m.leo)
			}
		}
		reopen := func(rt *rapid.T) {
			np, err := Open("/p/t-0", cfg, Options{FS: fs, Fsync: opts.Fsync, Now: p.now})
			if err != nil {
				rt.Fatalf("reopen: %v", err)
			}
			p = np
		}
		rt.Repeat(map[string]func(*rapid.T){
			"": check,
			"append": func(rt *rapid.T) {
				n := rapid.IntRange(1, 5).Draw(rt, "records")
				size := rapid.IntRange(0, 300).Draw(rt, "valueSize")
				tag++
				b := testBatch(n, int64(tag), size, tag)
				o := AppendOptions{LeaderEpoch: 3}
				switch rapid.IntRange(0, 2).Draw(rt, "mode") {
				case 1: // a follower: the batch carries its offsets and epoch
					batch.Batch(b).SetBaseOffset(m.leo)
					batch.Batch(b).SetPartitionLeaderEpoch(3)
					o = AppendOptions{KeepOffsets: true}
				case 2:
					o.LogAppendTime = 1000 + int64(tag)
				}
				res, err := p.Append(b, o)
				if err != nil {
					rt.Fatalf("append: %v", err)
				}
				if res.FirstOffset != m.leo || res.LastOffset != m.leo+int64(n)-1 {
					rt.Fatalf("append at %d..%d, model LEO %d", res.FirstOffset, res.LastOffset, m.leo)
				}
				m.batches = append(m.batches, modelBatch{res.FirstOffset, res.LastOffset, bytes.Clone(b), -1})
				m.leo = res.LastOffset + 1
				if always {
					m.durable = m.leo
				}
			},
			"appendIdempotent": func(rt *rapid.T) {
				// Producer 7, epoch 0: the next sequence follows its last
				// batch still in the log; a retry of that batch is a
				// duplicate answered with its original offsets.
				var last *modelBatch
				if len(m.idem) > 0 {
					last = &m.idem[len(m.idem)-1]
				}
				seq := int32(0)
				if last != nil {
					seq = last.seq + int32(last.last-last.base) + 1
				}
				if last != nil && last.base >= m.start && rapid.Bool().Draw(rt, "retry") {
					b := idemBatch(7, 0, last.seq, int(last.last-last.base)+1, 1)
					res, err := p.Append(b, AppendOptions{})
					if err != nil || !res.Duplicate || res.FirstOffset != last.base || res.LastOffset != last.last {
						rt.Fatalf("retry of %d..%d: %+v %v", last.base, last.last, res, err)
					}
					return
				}
				n := rapid.IntRange(1, 4).Draw(rt, "records")
				b := idemBatch(7, 0, seq, n, 1)
				res, err := p.Append(b, AppendOptions{LeaderEpoch: 3})
				if err != nil {
					rt.Fatalf("idempotent append seq %d: %v", seq, err)
				}
				if res.Duplicate || res.FirstOffset != m.leo {
					rt.Fatalf("idempotent append at %d (dup %v), model LEO %d", res.FirstOffset, res.Duplicate, m.leo)
				}
				m.batches = append(m.batches, modelBatch{res.FirstOffset, res.LastOffset, bytes.Clone(b), seq})
				m.idem = append(m.idem, m.batches[len(m.batches)-1])
				m.leo = res.LastOffset + 1
				if always {
					m.durable = m.leo
				}
				if gap := idemBatch(7, 0, seq+int32(n)+5, 1, 1); true {
					if _, err := p.Append(gap, AppendOptions{}); !errors.Is(err, ErrOutOfOrderSequence) {
						rt.Fatalf("sequence gap accepted: %v", err)
					}
				}
			},
			"read": func(rt *rapid.T) {
				off := rapid.Int64Range(m.start, m.leo).Draw(rt, "offset")
				maxBytes := rapid.IntRange(0, 2000).Draw(rt, "maxBytes")
				res, err := p.Read(off, ReadOptions{MaxBytes: maxBytes})
				if err != nil {
					rt.Fatalf("read %d: %v", off, err)
				}
				var buf bytes.Buffer
				if _, err := res.WriteTo(&buf); err != nil {
					rt.Fatalf("WriteTo: %v", err)
				}
				res.Release()
				want := m.from(off)
				if off < m.leo && buf.Len() == 0 {
					rt.Fatalf("read %d: nothing, model has %d batches from there", off, len(want))
				}
				for data := buf.Bytes(); len(data) > 0; want = want[1:] {
					if len(want) == 0 {
						rt.Fatalf("read %d: more batches than the model", off)
					}
					if !bytes.HasPrefix(data, want[0].data) {
						rt.Fatalf("read %d: batch differs from model batch %d..%d", off, want[0].base, want[0].last)
					}
					data = data[len(want[0].data):]
				}
				if off < m.leo && int64(buf.Len()) > int64(max(maxBytes, len(m.from(off)[0].data))) {
					rt.Fatalf("read %d: %d bytes over budget %d", off, buf.Len(), maxBytes)
				}
			},
			"truncate": func(rt *rapid.T) {
				off := rapid.Int64Range(m.start, m.leo).Draw(rt, "offset")
				if err := p.Truncate(off); err != nil {
					for _, s := range p.segs.Load().segs {
						rt.Logf("seg %d size %d next %d fileIdx %d mem %v", s.base, s.size.Load(), s.next.Load(), s.fileIdx.Load(), s.mem.Load() != nil)
					}
					rt.Fatalf("truncate %d: %v", off, err)
				}
				if off < m.leo {
					full := off <= m.start
					m.truncate(off)
					m.forget(full)
				}
			},
			"roll": func(rt *rapid.T) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if p.segs.Load().active().size.Load() == 0 {
					return
				}
				if _, err := p.roll(p.endOffset.Load()); err != nil {
					rt.Fatalf("roll: %v", err)
				}
			},
			"deleteRecords": func(rt *rapid.T) {
				off := rapid.Int64Range(m.start, m.leo).Draw(rt, "offset")
				got, err := p.DeleteRecordsBefore(off)
				if err != nil {
					rt.Fatalf("DeleteRecordsBefore(%d): %v", off, err)
				}
				m.start = max(m.start, off)
				if got != m.start {
					rt.Fatalf("DeleteRecordsBefore(%d) = %d, want %d", off, got, m.start)
				}
			},
			"retentionBytes": func(rt *rapid.T) {
				c := cfg
				c.RetentionBytes = int64(rapid.IntRange(0, 5000).Draw(rt, "retentionBytes"))
				if err := p.SetConfig(c); err != nil {
					rt.Fatal(err)
				}
				before := p.Size()
				res, err := p.EnforceRetention()
				if err != nil {
					rt.Fatalf("EnforceRetention: %v", err)
				}
				if err := p.SetConfig(cfg); err != nil {
					rt.Fatal(err)
				}
				if res.SegmentsDeleted > 0 && before-res.BytesDeleted < c.RetentionBytes {
					rt.Fatalf("retention left %d bytes, below retention.bytes %d", before-res.BytesDeleted, c.RetentionBytes)
				}
				if res.LogStartOffset < m.start || res.LogStartOffset > m.leo {
					rt.Fatalf("retention moved start to %d, model [%d, %d]", res.LogStartOffset, m.start, m.leo)
				}
				m.start = res.LogStartOffset
				for len(m.batches) > 0 && m.batches[0].last < m.start {
					m.batches = m.batches[1:]
				}
			},
			"flush": func(rt *rapid.T) {
				if err := p.Flush(); err != nil {
					rt.Fatalf("flush: %v", err)
				}
				m.durable = m.leo
			},
			"cleanRestart": func(rt *rapid.T) {
				if err := p.Close(); err != nil {
					rt.Fatalf("close: %v", err)
				}
				reopen(rt)
				if r := p.Recovery(); !r.Clean || r.BytesTruncated != 0 {
					rt.Fatalf("clean restart recovered: %+v", r)
				}
				m.durable = m.leo
			},
			"crashRestart": func(rt *rapid.T) {
				abandon(p)
				fs.CrashRandom(rng)
				reopen(rt)
				leo := p.LogEndOffset()
				if leo < m.durable || leo > m.leo {
					rt.Fatalf("after crash LEO %d, model durable %d, LEO %d (%+v)", leo, m.durable, m.leo, p.Recovery())
				}
				if leo < m.leo {
					m.truncate(leo)
					m.forget(false)
					if leo > m.start && len(m.batches) > 0 && m.leo != leo {
						rt.Fatalf("crash cut inside a batch: LEO %d, model %d", leo, m.leo)
					}
				}
				m.start = min(m.start, leo)
				m.durable = m.leo
			},
		})
		// Everything the model holds reads back.
		got := readBatches(rt, p, m.start)
		if len(got) != len(m.from(m.start)) {
			rt.Fatalf("final read: %d batches, model %d", len(got), len(m.from(m.start)))
		}
		if err := p.Close(); err != nil && !errors.Is(err, ErrClosed) {
			rt.Fatalf("close: %v", err)
		}
	})
}

// abandon stops a partition the way a killed process does: in-flight
// background flushes finish, nothing else is written (no checkpoints, no
// marker), and its files are dropped.
func abandon(p *Partition) {
	p.mu.Lock()
	p.closed.Store(true)
	close(p.stop)
	p.mu.Unlock()
	p.bg.Wait()
	p.sync.close()
	p.closeFiles()
}
