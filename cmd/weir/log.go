package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// newLogCmd builds `weir log`: offline tools over a partition's files.
func newLogCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "log",
		Short: "Inspect and check log segment files offline",
		Long: `Inspect and check log segment files offline, without a running broker.

DIR is one partition directory (<topic>-<partition>, holding %020d.log,
.index and .timeindex files) or a whole data directory, in which case every
partition directory under it is processed.`,
	}
	c.AddCommand(newLogDumpCmd(), newLogVerifyCmd())
	return c
}

// logFlags are the flags dump and verify share.
type logFlags struct {
	format         string
	records        bool
	maxRecordBytes int
}

func (f *logFlags) register(c *cobra.Command, recordsHelp string) {
	c.Flags().StringVar(&f.format, "format", "text", "output format: text or json")
	c.Flags().BoolVar(&f.records, "records", false, recordsHelp)
	c.Flags().IntVar(&f.maxRecordBytes, "max-record-bytes", 64<<20, "largest decompressed batch to decode")
}

func (f *logFlags) check() error {
	if f.format != "text" && f.format != "json" {
		return usageError{fmt.Errorf("--format %q: want text or json", f.format)}
	}
	if f.maxRecordBytes <= 0 {
		return usageError{fmt.Errorf("--max-record-bytes %d: must be positive", f.maxRecordBytes)}
	}
	return nil
}

// partitionDirs resolves DIR to partition directories.
func partitionDirs(dir string) ([]string, error) {
	dirs, err := log.PartitionDirs(vfs.OS{}, dir)
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s: no partition directories or segment files", dir)
	}
	return dirs, nil
}

func newLogVerifyCmd() *cobra.Command {
	var f logFlags
	c := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every batch and index entry; exit 1 on any corruption",
		Long: `Check every batch (length, magic, CRC-32C, codec, record count, offsets
increasing and within the segment named by the file) and every .index and
.timeindex entry (monotonic, pointing at the batch that holds its offset).
Each problem is reported with its file, byte position and offset.

Exit status: 0 when everything is clean, 1 on any corruption or error,
2 on a usage error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			dirs, err := partitionDirs(args[0])
			if err != nil {
				return err
			}
			var reports []*log.VerifyReport
			for _, d := range dirs {
				r, err := log.Verify(vfs.OS{}, d, log.VerifyOptions{Records: f.records, MaxRecordBytes: f.maxRecordBytes})
				if err != nil {
					return err
				}
				reports = append(reports, r)
			}
			clean := true
			for _, r := range reports {
				clean = clean && r.Clean()
			}
			out := c.OutOrStdout()
			if f.format == "json" {
				err = writeJSON(out, struct {
					Clean      bool                `json:"clean"`
					Partitions []*log.VerifyReport `json:"partitions"`
				}{clean, reports})
			} else {
				err = writeVerifyText(out, reports)
			}
			if err != nil {
				return err
			}
			if !clean {
				return exitCode(1)
			}
			return nil
		},
	}
	f.register(c, "also decompress every batch and decode its records")
	return c
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeVerifyText(w io.Writer, reports []*log.VerifyReport) error {
	bad := 0
	for _, r := range reports {
		var batches int
		var records int64
		first, last := int64(-1), int64(-1)
		for _, s := range r.Segments {
			batches += s.Batches
			records += s.Records
			if first < 0 {
				first = s.FirstOffset
			}
			last = max(last, s.LastOffset)
		}
		status := "OK"
		if !r.Clean() {
			status = fmt.Sprintf("CORRUPT (%d problems)", len(r.Problems))
			bad++
		}
		span := "empty"
		if last >= 0 {
			span = fmt.Sprintf("offsets %d..%d", first, last)
		}
		fmt.Fprintf(w, "%s: %d segments, %d batches, %d records, %s: %s\n", r.Dir, len(r.Segments), batches, records, span, status)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s", p.Path)
			if p.Pos >= 0 {
				fmt.Fprintf(w, " position %d", p.Pos)
			}
			if p.Offset >= 0 {
				fmt.Fprintf(w, " offset %d", p.Offset)
			}
			fmt.Fprintf(w, ": %s\n", p.Reason)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	_, err := fmt.Fprintf(w, "verified %d partitions: %d corrupt\n", len(reports), bad)
	return err
}

func newLogDumpCmd() *cobra.Command {
	var f logFlags
	c := &cobra.Command{
		Use:   "dump DIR",
		Short: "Print every batch: offsets, size, CRC status, codec, producer fields",
		Long: `Print every batch of every segment: offsets, byte position and size, CRC
status, codec, timestamps and producer fields; with --records also each
record's offset, timestamp, key, value and headers. --format json writes one
JSON object per batch (JSON Lines). Keys and values that are not UTF-8 are
written base64-encoded (text: b64:...; JSON: keyBase64/valueBase64).

Exit status: 0 when every batch was readable, 1 when damage was met (it is
printed in place and the dump goes on where it can).`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			dirs, err := partitionDirs(args[0])
			if err != nil {
				return err
			}
			d := &dumper{w: c.OutOrStdout(), f: f}
			for _, dir := range dirs {
				files, err := log.SegmentLogFiles(vfs.OS{}, dir)
				if err != nil {
					return err
				}
				for _, path := range files {
					if err := d.file(path); err != nil {
						return err
					}
				}
			}
			if d.damaged {
				return exitCode(1)
			}
			return nil
		},
	}
	f.register(c, "also print each record's key, value and headers")
	return c
}

// dumper prints batches as ScanLogFile finds them.
type dumper struct {
	w       io.Writer
	f       logFlags
	damaged bool
}

// dumpBatch is the JSON form of one batch.
type dumpBatch struct {
	File                 string       `json:"file"`
	Position             int64        `json:"position"`
	Size                 int          `json:"size"`
	BaseOffset           int64        `json:"baseOffset"`
	LastOffset           int64        `json:"lastOffset"`
	RecordCount          int32        `json:"recordCount"`
	PartitionLeaderEpoch int32        `json:"partitionLeaderEpoch"`
	Magic                int8         `json:"magic"`
	CRC                  string       `json:"crc"`
	CRCValid             bool         `json:"crcValid"`
	Codec                string       `json:"codec"`
	TimestampType        string       `json:"timestampType"`
	BaseTimestamp        int64        `json:"baseTimestamp"`
	MaxTimestamp         int64        `json:"maxTimestamp"`
	ProducerID           int64        `json:"producerId"`
	ProducerEpoch        int16        `json:"producerEpoch"`
	BaseSequence         int32        `json:"baseSequence"`
	Transactional        bool         `json:"transactional"`
	Control              bool         `json:"control"`
	Error                string       `json:"error,omitempty"`
	Records              []dumpRecord `json:"records,omitempty"`
}

// dumpRecord is the JSON form of one record.
type dumpRecord struct {
	Offset      int64        `json:"offset"`
	Timestamp   int64        `json:"timestamp"`
	Key         *string      `json:"key,omitempty"`
	KeyBase64   *string      `json:"keyBase64,omitempty"`
	Value       *string      `json:"value,omitempty"`
	ValueBase64 *string      `json:"valueBase64,omitempty"`
	Headers     []dumpHeader `json:"headers,omitempty"`
}

type dumpHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"valueBase64,omitempty"`
}

// jsonBytes splits b into a UTF-8 string or a base64 string; both nil for null.
func jsonBytes(b []byte) (text, b64 *string) {
	if b == nil {
		return nil, nil
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return nil, &s
}

func (d *dumper) file(path string) error {
	if d.f.format == "text" {
		fmt.Fprintf(d.w, "segment %s\n", path)
	}
	err := log.ScanLogFile(vfs.OS{}, path, func(pos int64, b batch.Batch, perr error) error {
		return d.batch(path, pos, b, perr)
	})
	if ce, ok := errors.AsType[*log.CorruptError](err); ok {
		d.damaged = true
		if d.f.format == "json" {
			return writeJSONLine(d.w, dumpBatch{File: path, Position: ce.Pos, BaseOffset: ce.Offset, Error: ce.Reason})
		}
		_, err := fmt.Fprintf(d.w, "position %d: DAMAGED: %s (rest of file skipped)\n", ce.Pos, ce.Reason)
		return err
	}
	return err
}

func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func (d *dumper) batch(path string, pos int64, b batch.Batch, perr error) error {
	db := dumpBatch{
		File: path, Position: pos, Size: len(b), BaseOffset: b.BaseOffset(), LastOffset: b.LastOffset(),
		RecordCount: b.RecordCount(), PartitionLeaderEpoch: b.PartitionLeaderEpoch(), Magic: b.Magic(),
		CRC: fmt.Sprintf("%08x", b.CRC()), CRCValid: b.ComputeCRC() == b.CRC(), Codec: b.Codec().String(),
		TimestampType: "CreateTime", BaseTimestamp: b.BaseTimestamp(), MaxTimestamp: b.MaxTimestamp(),
		ProducerID: b.ProducerID(), ProducerEpoch: b.ProducerEpoch(), BaseSequence: b.BaseSequence(),
		Transactional: b.IsTransactional(), Control: b.IsControl(),
	}
	if b.IsLogAppendTime() {
		db.TimestampType = "LogAppendTime"
	}
	if perr != nil {
		d.damaged = true
		db.Error = perr.Error()
	}
	var recErr error
	if d.f.records && perr == nil {
		db.Records, recErr = d.records(b)
		if recErr != nil {
			d.damaged = true
			db.Error = recErr.Error()
		}
	}
	if d.f.format == "json" {
		return writeJSONLine(d.w, db)
	}
	crc := "ok"
	if !db.CRCValid {
		crc = "BAD (computed " + fmt.Sprintf("%08x", b.ComputeCRC()) + ")"
	}
	fmt.Fprintf(d.w, "offset %d..%d position %d size %d count %d codec %s crc %s %s leaderEpoch %d %s %d..%d producer %d epoch %d seq %d",
		db.BaseOffset, db.LastOffset, pos, db.Size, db.RecordCount, db.Codec, db.CRC, crc, db.PartitionLeaderEpoch,
		db.TimestampType, db.BaseTimestamp, db.MaxTimestamp, db.ProducerID, db.ProducerEpoch, db.BaseSequence)
	if db.Transactional {
		fmt.Fprint(d.w, " transactional")
	}
	if db.Control {
		fmt.Fprint(d.w, " control")
	}
	if db.Error != "" {
		fmt.Fprintf(d.w, " ERROR: %s", db.Error)
	}
	fmt.Fprintln(d.w)
	for _, r := range db.Records {
		d.textRecord(r)
	}
	return nil
}

// records decodes the batch's records for output; keys and values are
// copied because the iterator reuses its buffers.
func (d *dumper) records(b batch.Batch) ([]dumpRecord, error) {
	it, err := b.Records(d.f.maxRecordBytes)
	if err != nil {
		return nil, err
	}
	var out []dumpRecord
	for it.Next() {
		r := it.Record()
		dr := dumpRecord{Offset: r.Offset, Timestamp: r.Timestamp}
		dr.Key, dr.KeyBase64 = jsonBytes(r.Key)
		dr.Value, dr.ValueBase64 = jsonBytes(r.Value)
		for _, h := range r.Headers {
			dh := dumpHeader{Key: string(h.Key)}
			dh.Value, dh.ValueBase64 = jsonBytes(h.Value)
			dr.Headers = append(dr.Headers, dh)
		}
		out = append(out, dr)
	}
	return out, it.Err()
}

func (d *dumper) textRecord(r dumpRecord) {
	text := func(s, b64 *string) string {
		switch {
		case s != nil:
			return strconv.Quote(*s)
		case b64 != nil:
			return "b64:" + *b64
		}
		return "null"
	}
	fmt.Fprintf(d.w, "  | offset %d timestamp %d key %s value %s", r.Offset, r.Timestamp,
		text(r.Key, r.KeyBase64), text(r.Value, r.ValueBase64))
	for _, h := range r.Headers {
		fmt.Fprintf(d.w, " header %s=%s", strconv.Quote(h.Key), text(h.Value, h.ValueBase64))
	}
	fmt.Fprintln(d.w)
}
