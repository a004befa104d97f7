package main

import (
	"context"
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
	"github.com/spf13/cobra"
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
	maxWait    time.Duration
}

// newConsumeCmd builds `weir consume`.
func newConsumeCmd() *cobra.Command {
	var fl consumeFlags
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic (follows new records until Ctrl-C)",
		Long: `Print records of a topic without a consumer group.

Offsets (-o): start, end, N (absolute), -N (N before the end of each
partition), @TIME (first record at or after TIME: unix milliseconds, RFC 3339,
or a negative duration relative to now such as @-1h).`,
		Example: `  weir consume orders -o start --exit-at-end
  weir consume orders -o -10 -n 10 --format json
  weir consume orders -p 0 -o @-15m --fields partition,offset,key,value`,
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
	f.StringVar(&fl.format, "format", "text", "output format: text (tab-separated fields), wide (text with every field) or json (one object per line)")
	f.StringSliceVar(&fl.fields, "fields", nil, "fields to print: "+strings.Join(consumeFields, ",")+" (default: value for text, all for wide and json)")
	f.DurationVar(&fl.maxWait, "fetch-max-wait", 500*time.Millisecond, "longest a fetch waits for new records")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "wide", "json"}, cobra.ShellCompDirectiveNoFileComp))
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

// recordOut is the JSON shape of one consumed record.
type recordOut struct {
	Topic     string      `json:"topic,omitempty"`
	Partition *int        `json:"partition,omitempty"`
	Offset    *int64      `json:"offset,omitempty"`
	Timestamp string      `json:"timestamp,omitempty"`
	Key       *string     `json:"key,omitempty"`
	Headers   []headerOut `json:"headers,omitempty"`
	Value     *string     `json:"value,omitempty"`
	// Null lists the selected fields whose value is null (key or value),
	// since omitempty cannot tell null from unselected.
	Null []string `json:"null,omitempty"`
}

// headerOut is one record header in JSON output.
type headerOut struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// recordWriter formats records for stdout.
type recordWriter struct {
	w      io.Writer
	json   bool
	fields []string
	enc    *json.Encoder
}

func newRecordWriter(w io.Writer, format string, fields []string) (*recordWriter, error) {
	rw := &recordWriter{w: w}
	switch format {
	case "text":
		if len(fields) == 0 {
			fields = []string{"value"}
		}
	case "wide":
		if len(fields) == 0 {
			fields = consumeFields
		}
	case "json":
		rw.json = true
		rw.enc = json.NewEncoder(w)
		if len(fields) == 0 {
			fields = consumeFields
		}
	default:
		return nil, usageError{fmt.Errorf("--format %q: want text, wide or json", format)}
	}
	for _, f := range fields {
		if !slices.Contains(consumeFields, f) {
			return nil, usageError{fmt.Errorf("--fields: unknown field %q (want %s)", f, strings.Join(consumeFields, ","))}
		}
	}
	rw.fields = fields
	return rw, nil
}

func (rw *recordWriter) write(m kafka.Message) error {
	if rw.json {
		return rw.writeJSON(m)
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
			cells[i] = string(m.Key)
		case "headers":
			hs := make([]string, len(m.Headers))
			for j, h := range m.Headers {
				hs[j] = h.Key + "=" + string(h.Value)
			}
			cells[i] = strings.Join(hs, ",")
		case "value":
			cells[i] = string(m.Value)
		}
	}
	if _, err := fmt.Fprintln(rw.w, strings.Join(cells, "\t")); err != nil {
		return fmt.Errorf("consume: write output: %w", err)
	}
	return nil
}

func (rw *recordWriter) writeJSON(m kafka.Message) error {
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
				k := string(m.Key)
				r.Key = &k
			}
		case "headers":
			r.Headers = []headerOut{}
			for _, h := range m.Headers {
				r.Headers = append(r.Headers, headerOut{Key: h.Key, Value: string(h.Value)})
			}
		case "value":
			if m.Value == nil {
				r.Null = append(r.Null, "value")
			} else {
				v := string(m.Value)
				r.Value = &v
			}
		}
	}
	if err := rw.enc.Encode(r); err != nil {
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
	out, err := newRecordWriter(cmd.OutOrStdout(), fl.format, fl.fields)
	if err != nil {
		return err
	}
	addrs, err := cf.addrs()
	if err != nil {
		return err
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
	dialer := &kafka.Dialer{Timeout: cf.timeout, ClientID: "weir", DualStack: true}
	for _, ps := range starts {
		if ps.stopBefore >= 0 && ps.offset >= ps.stopBefore {
			continue
		}
		wg.Go(func() {
			if err := readPartition(ctx, dialer, addrs, topic, ps, fl.maxWait, msgs); err != nil {
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
				return ctx.Err() // nil unless interrupted
			}
			if err := out.write(m); err != nil {
				return err
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
	n, err := partitionCount(ctx, cl, topic)
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
// or, with a stop offset, the record before it has been read.
func readPartition(ctx context.Context, d *kafka.Dialer, addrs []string, topic string, ps partitionStart, maxWait time.Duration, msgs chan<- kafka.Message) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   addrs,
		Topic:     topic,
		Partition: ps.partition,
		Dialer:    d,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		MaxWait:   maxWait,
	})
	defer r.Close()
	if err := r.SetOffset(ps.offset); err != nil {
		return fmt.Errorf("consume %s/%d: %w", topic, ps.partition, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consume %s/%d: %w", topic, ps.partition, err)
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return nil
		}
		if ps.stopBefore >= 0 && m.Offset+1 >= ps.stopBefore {
			return nil
		}
	}
}
