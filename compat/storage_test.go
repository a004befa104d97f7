package compat

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// Record batch v2 header layout (Kafka's, as Weir stores it): the offsets
// of the fields this suite reads.
const (
	batchLengthPos = 8  // int32, bytes after this field
	batchMagicPos  = 16 // int8, 2
	batchAttrsPos  = 21 // int16; bits 0-2 are the compression codec
	batchCountPos  = 57 // int32, number of records
	batchHeaderLen = 61
)

// Compression codec ids (batch attributes bits 0-2).
var codecIDs = map[string]int8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// storedBatch is the header of one batch in a segment file.
type storedBatch struct {
	File    string
	Pos     int64
	Offset  int64
	Codec   int8
	Records int32
}

// storedBatches reads the batch headers of every segment of a partition,
// in order, straight from <data-dir>/<topic>-<partition>/*.log.
func storedBatches(dataDir, topic string, p int32) ([]storedBatch, error) {
	dir := filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, p))
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no segment files in %s", dir)
	}
	slices.Sort(files) // %020d names sort by base offset
	var out []storedBatch
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		bs, err := parseBatchHeaders(b)
		for i := range bs {
			bs[i].File = filepath.Base(f)
		}
		out = append(out, bs...)
		if err != nil {
			return out, fmt.Errorf("%s: %w", f, err)
		}
	}
	return out, nil
}

// dumpBatches lists the batches of a partition as `weir log dump --format
// json` reports them, in storedBatch form.
func dumpBatches(dataDir, topic string, p int32) ([]storedBatch, error) {
	bin, err := weirtest.Binary()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, p))
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "log", "dump", "--format", "json", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("weir log dump %s: %w\n%s%s", dir, err, tail(string(out), 2000), stderr.String())
	}
	var bs []storedBatch
	for line := range strings.Lines(string(out)) {
		var j struct {
			File        string `json:"file"`
			Position    int64  `json:"position"`
			BaseOffset  int64  `json:"baseOffset"`
			RecordCount int32  `json:"recordCount"`
			Codec       string `json:"codec"`
			CRCValid    bool   `json:"crcValid"`
			Error       string `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			return nil, fmt.Errorf("weir log dump: malformed line %q: %w", line, err)
		}
		if j.Error != "" || !j.CRCValid {
			return nil, fmt.Errorf("weir log dump: %s position %d: crcValid=%v %s", j.File, j.Position, j.CRCValid, j.Error)
		}
		id, ok := codecIDs[j.Codec]
		if !ok {
			id = -1
		}
		bs = append(bs, storedBatch{File: filepath.Base(j.File), Pos: j.Position, Offset: j.BaseOffset, Codec: id, Records: j.RecordCount})
	}
	return bs, nil
}

// parseBatchHeaders walks concatenated v2 record batches.
func parseBatchHeaders(b []byte) ([]storedBatch, error) {
	var out []storedBatch
	for pos := 0; pos < len(b); {
		if len(b)-pos < batchHeaderLen {
			return out, fmt.Errorf("%d trailing bytes at %d, shorter than a batch header", len(b)-pos, pos)
		}
		h := b[pos:]
		size := 12 + int(int32(binary.BigEndian.Uint32(h[batchLengthPos:])))
		if size < batchHeaderLen || size > len(h) {
			return out, fmt.Errorf("batch at %d: length %d outside [%d, %d]", pos, size, batchHeaderLen, len(h))
		}
		if h[batchMagicPos] != 2 {
			return out, fmt.Errorf("batch at %d: magic %d, want 2", pos, h[batchMagicPos])
		}
		out = append(out, storedBatch{
			Pos:     int64(pos),
			Offset:  int64(binary.BigEndian.Uint64(h)),
			Codec:   int8(binary.BigEndian.Uint16(h[batchAttrsPos:]) & 7),
			Records: int32(binary.BigEndian.Uint32(h[batchCountPos:])),
		})
		pos += size
	}
	return out, nil
}

// smallUncompressed is the largest batch librdkafka may send uncompressed
// although a codec is configured: it falls back to no compression when
// compressing does not make the batch smaller, which happens for a batch of
// a record or two (typically the first one, sent before the queue fills).
const smallUncompressed = 2

// checkStored checks that every batch of topic is stored with the given
// codec (or is a batch of at most smallUncompressed records stored
// uncompressed) and that each partition holds the records message() puts
// there, at dense offsets from 0. It reads the batch headers twice:
// straight from the segment files, and through `weir log dump --format
// json`, whose answer must match.
func checkStored(t *testing.T, dataDir, topic string, codec int8, n int) {
	t.Helper()
	for p := range int32(partitions) {
		bs, err := storedBatches(dataDir, topic, p)
		if err != nil {
			t.Errorf("%s/%d: read segments: %v", topic, p, err)
			continue
		}
		dumped, err := dumpBatches(dataDir, topic, p)
		if err != nil {
			t.Errorf("%s/%d: %v", topic, p, err)
		} else if !slices.Equal(dumped, bs) {
			t.Errorf("%s/%d: weir log dump disagrees with the segment files:\n\tdump:  %.300v\n\tfiles: %.300v", topic, p, dumped, bs)
		}
		var next int64
		var bad []string
		for _, b := range bs {
			small := b.Codec == 0 && b.Records <= smallUncompressed
			if b.Codec != codec && !small && len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s@%d (offset %d, %d records): codec %d", b.File, b.Pos, b.Offset, b.Records, b.Codec))
			}
			if b.Offset != next && len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s@%d: base offset %d, want %d", b.File, b.Pos, b.Offset, next))
			}
			next = b.Offset + int64(b.Records)
		}
		if want := int64(countIn(n, p)); next != want {
			bad = append(bad, fmt.Sprintf("records end at offset %d, want %d", next, want))
		}
		if len(bad) > 0 {
			t.Errorf("%s/%d: %d stored batches, want all with codec %d:\n\t%s", topic, p, len(bs), codec, strings.Join(bad, "\n\t"))
		}
	}
}
