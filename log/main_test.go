package log

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// The partition starts goroutines (background flushes at roll, the flush.ms
// ticker): every test must leave none behind. With killEnv set the binary is
// TestKill9's child process instead.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killEnv); dir != "" {
		killChild(dir)
	}
	goleak.VerifyTestMain(m)
}

// tb is what the helpers need; *testing.T, *testing.B and *rapid.T have it.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// testBatch builds one uncompressed batch of n records with timestamps from
// ts, each value valSize bytes (filled with tag).
func testBatch(n int, ts int64, valSize int, tag byte) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: ts + int64(i), Key: []byte{tag, byte(i)}, Value: bytes.Repeat([]byte{tag}, valSize)}
	}
	return batch.MustBuild(batch.Options{}, recs...)
}

// idemBatch builds an idempotent batch.
func idemBatch(pid int64, epoch int16, seq int32, n int, ts int64) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: ts, Value: []byte("v")}
	}
	return batch.MustBuild(batch.Options{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs...)
}

func smallConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	return c
}

func openT(t tb, fs vfs.FS, cfg Config, o Options) *Partition {
	t.Helper()
	o.FS = fs
	if o.Now == nil {
		// Tests use small timestamps: a clock at 0 keeps segment.ms and
		// retention.ms from firing unless a test sets its own clock.
		o.Now = func() time.Time { return time.UnixMilli(0) }
	}
	p, err := Open("/p/t-0", cfg, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

func appendT(t tb, p *Partition, b []byte, o AppendOptions) AppendResult {
	t.Helper()
	res, err := p.Append(b, o)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readBatches reads every batch from offset to the log end offset, checking
// that each returned batch is whole and passes its CRC.
func readBatches(t tb, p *Partition, from int64) []batch.Batch {
	t.Helper()
	var out []batch.Batch
	for off := from; off < p.LogEndOffset(); {
		res, err := p.Read(off, ReadOptions{MaxBytes: 1000})
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		var buf bytes.Buffer
		if _, err := res.WriteTo(&buf); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		res.Release()
		if buf.Len() == 0 {
			break
		}
		data := buf.Bytes()
		for len(data) > 0 {
			bt, err := batch.Parse(data)
			if err != nil {
				t.Fatalf("Read(%d) returned a bad batch: %v", off, err)
			}
			out = append(out, bt)
			data = data[len(bt):]
			off = bt.NextOffset()
		}
	}
	return out
}

func closeT(t tb, p *Partition) {
	t.Helper()
	if err := p.Close(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
}
