package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// consumeFields are the record fields --fields may select, in output order.
var consumeFields = []string{"topic", "partition", "offset", "timestamp", "key", "headers", "value"}

// consumeFlags are the options of `weir consume`.
type consumeFlags struct {
	offset     string
	num        int
	exitAtEnd  bool
	partitions []int
	format     string
	fields     []string
	encoding   string
	maxWait    time.Duration
	group      string
}

// newConsumeCmd builds `weir consume`.
func newConsumeCmd() *cobra.Command {
	var fl consumeFlags
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic (follows new records until Ctrl-C)",
		Long: `Print records of a topic, without a consumer group unless -g is given.

Offsets (-o): start, end, N (absolute), -N (N before the end of each
partition), @TIME (first record at or after TIME: unix milliseconds, RFC 3339,
or a negative duration relative to now such as @-1h).

With -g GROUP the command joins the consumer group, reads the partitions the
group assigns it from the group's committed offsets (-o start or end applies
where nothing is committed), and commits each record after printing it.`,
		Example: `  weir consume orders -o start --exit-at-end
  weir consume orders -o -10 -n 10 --format json
  weir consume orders -e --format yaml
  weir consume orders -p 0 -o @-15m --fields partition,offset,key,value
  weir consume orders -g billing -n 100`,
		Args: cobra.ExactArgs(1),
	}
	cf := addClientFlags(cmd)
	cmd.ValidArgsFunction = completeTopics(cf)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return runConsume(cmd, cf, &fl, args[0]) }
	f := cmd.Flags()
	f.StringVarP(&fl.offset, "offset", "o", "start", "where to start: start, end, N, -N or @TIME")
	f.IntVarP(&fl.num, "num", "n", 0, "stop after COUNT records (0: no limit)")
	f.BoolVarP(&fl.exitAtEnd, "exit-at-end", "e", false, "stop at the high watermark each partition had at start")
	f.IntSliceVarP(&fl.partitions, "partition", "p", nil, "consume only these partitions (repeatable or comma-separated)")
	f.StringVar(&fl.format, "format", "text", "output format: text (tab-separated fields), wide (text with every field), json (one object per line) or yaml (one document per record, each opened by ---)")
	f.StringSliceVar(&fl.fields, "fields", nil, "fields to print: "+strings.Join(consumeFields, ",")+" (default: value for text, all for wide, json and yaml)")
	f.StringVar(&fl.encoding, "encoding", "text", "how keys, values and header values are printed: text, base64 or hex")
	f.DurationVar(&fl.maxWait, "fetch-max-wait", 500*time.Millisecond, "longest a fetch waits for new records")
	f.StringVarP(&fl.group, "group", "g", "", "consume as a member of this consumer group, committing after printing")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "wide", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("encoding", cobra.FixedCompletions([]string{"text", "base64", "hex"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("fields", cobra.FixedCompletions(consumeFields, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// startSpec is a parsed -o value.
type startSpec struct {
	kind string // "start", "end", "abs", "rel", "time"
	n    int64
	at   time.Time
}

// parseStart parses -o; now anchors relative times.
func parseStart(s string, now time.Time) (startSpec, error) {
	switch s {
	case "start", "beginning", "oldest":
		return startSpec{kind: "start"}, nil
	case "end", "newest":
		return startSpec{kind: "end"}, nil
	}
	if t, ok := strings.CutPrefix(s, "@"); ok {
		if ms, err := strconv.ParseInt(t, 10, 64); err == nil && ms >= 0 {
			return startSpec{kind: "time", at: time.UnixMilli(ms)}, nil
		}
		if d, err := time.ParseDuration(t); err == nil && d <= 0 {
			return startSpec{kind: "time", at: now.Add(d)}, nil
		}
		if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return startSpec{kind: "time", at: ts}, nil
		}
		return startSpec{}, fmt.Errorf("-o %q: time must be unix milliseconds, RFC 3339 or a negative duration", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return startSpec{}, fmt.Errorf("-o %q: want start, end, N, -N or @TIME", s)
	}
	if strings.HasPrefix(s, "-") {
		return startSpec{kind: "rel", n: -n}, nil
	}
	return startSpec{kind: "abs", n: n}, nil
}

// resolve turns the spec into an offset within [start, end] of one partition;
// byTime holds the ListOffsets answer for a time spec (-1: none).
func (s startSpec) resolve(o partitionOffsets, byTime int64) int64 {
	var off int64
	switch s.kind {
	case "start":
		off = o.start
	case "end":
		off = o.end
	case "abs":
		off = s.n
	case "rel":
		off = o.end - s.n
	case "time":
		off = byTime
		if off < 0 {
			off = o.end
		}
	}
	return min(max(off, o.start), o.end)
}

// recordOut is the JSON and YAML shape of one consumed record; both formats
// use the same field names.
type recordOut struct {
	Topic     string      `json:"topic,omitempty" yaml:"topic,omitempty"`
	Partition *int        `json:"partition,omitempty" yaml:"partition,omitempty"`
	Offset    *int64      `json:"offset,omitempty" yaml:"offset,omitempty"`
	Timestamp string      `json:"timestamp,omitempty" yaml:"timestamp,omitempty"`
	Key       *string     `json:"key,omitempty" yaml:"key,omitempty"`
	Headers   []headerOut `json:"headers,omitempty" yaml:"headers,omitempty"`
	Value     *string     `json:"value,omitempty" yaml:"value,omitempty"`
	// Null lists the selected fields whose value is null (key or value),
	// since omitempty cannot tell null from unselected.
	Null []string `json:"null,omitempty" yaml:"null,omitempty"`
}

// headerOut is one record header in JSON and YAML output.
type headerOut struct {
	Key   string `json:"key" yaml:"key"`
	Value string `json:"value" yaml:"value"`
}

// recordWriter formats records for stdout. It is not safe for concurrent
// use.
type recordWriter struct {
	w      io.Writer
	format string // text, wide, json or yaml
	fields []string
	enc    *json.Encoder // json only
	// enc64 renders keys, values and header values (--encoding): as text,
	// or base64 or hex for binary data that JSON would otherwise mangle.
	enc64 func([]byte) string
}

// newRecordWriter returns a writer of records to w in format (text, wide,
// json or yaml) with the selected fields (nil: the format's default) and
// the --encoding of keys, values and header values.
func newRecordWriter(w io.Writer, format string, fields []string, encoding string) (*recordWriter, error) {
	rw := &recordWriter{w: w, format: format}
	switch encoding {
	case "text", "":
		rw.enc64 = func(b []byte) string { return string(b) }
	case "base64":
		rw.enc64 = base64.StdEncoding.EncodeToString
	case "hex":
		rw.enc64 = hex.EncodeToString
	default:
		return nil, usageError{fmt.Errorf("--encoding %q: want text, base64 or hex", encoding)}
	}
	switch format {
	case "text":
		if len(fields) == 0 {
			fields = []string{"value"}
		}
	case "wide":
		if len(fields) == 0 {
			fields = consumeFields
		}
	case "json", "yaml":
		if format == "json" {
			rw.enc = json.NewEncoder(w)
		}
		if len(fields) == 0 {
			fields = consumeFields
		}
	default:
		return nil, usageError{fmt.Errorf("--format %q: want text, wide, json or yaml", format)}
	}
	for _, f := range fields {
		if !slices.Contains(consumeFields, f) {
			return nil, usageError{fmt.Errorf("--fields: unknown field %q (want %s)", f, strings.Join(consumeFields, ","))}
		}
	}
	rw.fields = fields
	return rw, nil
}

// write prints one record.
func (rw *recordWriter) write(m kafka.Message) error {
	switch rw.format {
	case "json":
		if err := rw.enc.Encode(rw.record(m)); err != nil {
			return fmt.Errorf("consume: write output: %w", err)
		}
		return nil
	case "yaml":
		return rw.writeYAML(rw.record(m))
	}
	cells := make([]string, len(rw.fields))
	for i, f := range rw.fields {
		switch f {
		case "topic":
			cells[i] = m.Topic
		case "partition":
			cells[i] = strconv.Itoa(m.Partition)
		case "offset":
			cells[i] = strconv.FormatInt(m.Offset, 10)
		case "timestamp":
			cells[i] = m.Time.UTC().Format(time.RFC3339Nano)
		case "key":
			cells[i] = rw.enc64(m.Key)
		case "headers":
			hs := make([]string, len(m.Headers))
			for j, h := range m.Headers {
				hs[j] = h.Key + "=" + rw.enc64(h.Value)
			}
			cells[i] = strings.Join(hs, ",")
		case "value":
			cells[i] = rw.enc64(m.Value)
		}
	}
	if _, err := fmt.Fprintln(rw.w, strings.Join(cells, "\t")); err != nil {
		return fmt.Errorf("consume: write output: %w", err)
	}
	return nil
}

// record builds the JSON/YAML shape of m with the selected fields.
func (rw *recordWriter) record(m kafka.Message) recordOut {
	var r recordOut
	for _, f := range rw.fields {
		switch f {
		case "topic":
			r.Topic = m.Topic
		case "partition":
			r.Partition = &m.Partition
		case "offset":
			r.Offset = &m.Offset
		case "timestamp":
			r.Timestamp = m.Time.UTC().Format(time.RFC3339Nano)
		case "key":
			if m.Key == nil {
				r.Null = append(r.Null, "key")
			} else {
				k := rw.enc64(m.Key)
				r.Key = &k
			}
		case "headers":
			r.Headers = []headerOut{}
			for _, h := range m.Headers {
				r.Headers = append(r.Headers, headerOut{Key: h.Key, Value: rw.enc64(h.Value)})
			}
		case "value":
			if m.Value == nil {
				r.Null = append(r.Null, "value")
			} else {
				v := rw.enc64(m.Value)
				r.Value = &v
			}
		}
	}
	return r
}

// writeYAML prints r as one YAML document that starts with "---", so the
// output is a stream of documents however many records it holds.
func (rw *recordWriter) writeYAML(r recordOut) error {
	if _, err := io.WriteString(rw.w, "---\n"); err != nil {
		return fmt.Errorf("consume: write output: %w", err)
	}
	enc := yaml.NewEncoder(rw.w)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("consume: write output: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("consume: write output: %w", err)
	}
	return nil
}

// partitionStart is where one partition's reader begins and, with
// --exit-at-end, where it stops (exclusive).
type partitionStart struct {
	partition  int
	offset     int64
	stopBefore int64 // -1: follow
}

func runConsume(cmd *cobra.Command, cf *clientFlags, fl *consumeFlags, topic string) error {
	spec, err := parseStart(fl.offset, time.Now())
	if err != nil {
		return usageError{err}
	}
	if fl.num < 0 {
		return usageError{errors.New("consume: -n must not be negative")}
	}
	// Buffered, and flushed whenever no record is waiting, so a follower
	// sees records at once and a bulk read costs few write calls.
	bw := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer bw.Flush()
	out, err := newRecordWriter(bw, fl.format, fl.fields, fl.encoding)
	if err != nil {
		return err
	}
	if fl.group != "" {
		return runGroupConsume(cmd, cf, fl, topic, bw, out)
	}
	cl, err := cf.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	starts, err := planConsume(cmd, cf, cl, fl, spec, topic)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}

	ctx, stop := signalContext(cmd)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan kafka.Message, 256)
	errc := make(chan error, len(starts))
	var wg sync.WaitGroup
	for _, ps := range starts {
		if ps.stopBefore >= 0 && ps.offset >= ps.stopBefore {
			continue
		}
		wg.Go(func() {
			if err := readPartition(ctx, cl, topic, ps, fl.maxWait, msgs); err != nil {
				errc <- err
			}
		})
	}
	go func() { wg.Wait(); close(msgs) }()
	defer func() {
		cancel()
		for range msgs {
		}
	}()

	count := 0
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				select {
				case err := <-errc:
					return err
				default:
				}
				return nil // done, or interrupted (Ctrl-C ends a follow normally)
			}
			if err := out.write(m); err != nil {
				return err
			}
			if len(msgs) == 0 {
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("consume: write output: %w", err)
				}
			}
			count++
			if fl.num > 0 && count >= fl.num {
				return nil
			}
		case err := <-errc:
			return err
		}
	}
}

// planConsume resolves the partitions and start offsets.
func planConsume(cmd *cobra.Command, cf *clientFlags, cl *adminClient, fl *consumeFlags, spec startSpec, topic string) ([]partitionStart, error) {
	ctx, cancel := cf.requestContext(cmd)
	defer cancel()
	n, err := partitionCount(ctx, cl, topic, false)
	if err != nil {
		return nil, err
	}
	parts := fl.partitions
	if len(parts) == 0 {
		for p := range n {
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		if p < 0 || p >= n {
			return nil, fmt.Errorf("partition %d out of range: %s has %d", p, topic, n)
		}
	}
	offs, err := listOffsets(ctx, cl, topic, parts)
	if err != nil {
		return nil, err
	}
	var byTime map[int]int64
	if spec.kind == "time" {
		if byTime, err = offsetsForTime(ctx, cl, topic, parts, spec.at); err != nil {
			return nil, err
		}
	}
	var out []partitionStart
	for _, p := range parts {
		ps := partitionStart{partition: p, offset: spec.resolve(offs[p], byTime[p]), stopBefore: -1}
		if fl.exitAtEnd {
			ps.stopBefore = offs[p].end
		}
		out = append(out, ps)
	}
	return out, nil
}

// readPartition reads one partition from ps.offset into msgs until ctx ends
// or, with a stop offset, everything before it has been read. It uses
// kafka-go's Client.Fetch rather than its Reader, because the Reader turns
// empty keys and values into null ones and a tombstone must stay
// distinguishable from an empty value.
func readPartition(ctx context.Context, cl *adminClient, topic string, ps partitionStart, maxWait time.Duration, msgs chan<- kafka.Message) error {
	next := ps.offset
	backoff := 50 * time.Millisecond
	for ps.stopBefore < 0 || next < ps.stopBefore {
		resp, err := cl.Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: ps.partition, Offset: next,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: maxWait,
		})
		if err == nil {
			err = kafkaErr(resp.Error)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if ke, ok := errors.AsType[kafka.Error](err); ok && ke.Temporary() {
				if !sleepCtx(ctx, backoff) {
					return nil
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("consume %s/%d at offset %d: %w", topic, ps.partition, next, err)
		}
		backoff = 50 * time.Millisecond
		n, err := drainRecords(ctx, resp, topic, ps, &next, msgs)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if n == 0 && ps.stopBefore >= 0 && resp.HighWatermark <= next {
			// Nothing left below the stop offset (it may have been a
			// transaction marker or a compacted-away record).
			return nil
		}
	}
	return nil
}

// drainRecords sends the records of one fetch response at or after *next,
// and below the stop offset, advancing *next past them and past control
// batches. It returns how many it sent.
func drainRecords(ctx context.Context, resp *kafka.FetchResponse, topic string, ps partitionStart, next *int64, msgs chan<- kafka.Message) (int, error) {
	if c, ok := resp.Records.(io.Closer); ok {
		defer c.Close()
	}
	if st, ok := resp.Records.(*protocol.RecordStream); ok {
		for _, rr := range st.Records {
			if cb, ok := rr.(*protocol.ControlBatch); ok {
				for {
					cr, err := cb.ReadControlRecord()
					if err != nil {
						break
					}
					*next = max(*next, cr.Offset+1)
				}
			}
		}
	}
	sent := 0
	for {
		r, err := resp.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return sent, nil
		}
		if err != nil {
			return sent, fmt.Errorf("consume %s/%d: read record: %w", topic, ps.partition, err)
		}
		if r.Offset < *next {
			continue // batches start before the fetch offset
		}
		if ps.stopBefore >= 0 && r.Offset >= ps.stopBefore {
			return sent, nil
		}
		m := kafka.Message{Topic: topic, Partition: ps.partition, Offset: r.Offset, Time: r.Time, Headers: r.Headers}
		if m.Key, err = readBytes(r.Key); err == nil {
			m.Value, err = readBytes(r.Value)
		}
		if err != nil {
			return sent, fmt.Errorf("consume %s/%d at offset %d: %w", topic, ps.partition, r.Offset, err)
		}
		*next = r.Offset + 1
		select {
		case msgs <- m:
			sent++
		case <-ctx.Done():
			return sent, nil
		}
	}
}

// readBytes copies a record key or value; nil stays nil (null), empty stays
// empty.
func readBytes(b protocol.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	out, err := protocol.ReadAll(b)
	if err != nil {
		return nil, fmt.Errorf("read record bytes: %w", err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
