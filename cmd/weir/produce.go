package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
)

// errLineTooLong is returned when an input line exceeds --max-line-bytes.
var errLineTooLong = errors.New("produce: line too long")

// produceChunk and produceChunkBytes bound one synchronous write (records
// and value bytes). Large chunks let kafka-go fill a batch per partition;
// 10000 doubled the throughput of a 1M-line file over 1000.
const (
	produceChunk      = 10000
	produceChunkBytes = 8 << 20
)

// produceFlags are the options of `weir produce`.
type produceFlags struct {
	file         string
	keyDelim     string
	headers      []string
	tombstones   bool
	acks         string
	partition    int
	compression  string
	maxLine      int
	printOffsets bool
}

// newProduceCmd builds `weir produce`.
func newProduceCmd() *cobra.Command {
	var pf produceFlags
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce one record per input line (stdin or -f FILE)",
		Example: `  echo hello | weir produce orders
  weir produce orders -f events.txt --key-delim ':' -H source=import --acks all
  printf 'user-1:\n' | weir produce users --key-delim ':' -Z   # tombstone for key user-1`,
		Args: cobra.ExactArgs(1),
	}
	cf := addClientFlags(cmd)
	cmd.ValidArgsFunction = completeTopics(cf)
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return runProduce(cmd, cf, &pf, args[0]) }
	fl := cmd.Flags()
	fl.StringVarP(&pf.file, "file", "f", "", "read records from FILE instead of stdin")
	fl.StringVar(&pf.keyDelim, "key-delim", "", "split each line at the first DELIM into key and value (no DELIM on a line: no key)")
	fl.StringArrayVarP(&pf.headers, "header", "H", nil, "add header key=value to every record (repeatable)")
	fl.BoolVarP(&pf.tombstones, "tombstone", "Z", false, "produce empty values as tombstones (null values)")
	fl.StringVar(&pf.acks, "acks", "all", "acknowledgements: all (-1), 1 (leader) or 0 (none)")
	fl.IntVarP(&pf.partition, "partition", "p", -1, "produce to this partition (default: murmur2 of the key, Java-compatible; random for no key)")
	fl.StringVarP(&pf.compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	fl.IntVar(&pf.maxLine, "max-line-bytes", 1<<20, "longest accepted input line")
	fl.BoolVar(&pf.printOffsets, "print-offsets", false, "print PARTITION OFFSET of every produced record on stdout")
	_ = cmd.RegisterFlagCompletionFunc("acks", cobra.FixedCompletions([]string{"all", "1", "0"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("compression", cobra.FixedCompletions([]string{"none", "gzip", "snappy", "lz4", "zstd"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// parseAcks maps --acks onto kafka-go's RequiredAcks.
func parseAcks(s string) (kafka.RequiredAcks, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return kafka.RequireAll, nil
	case "1", "leader":
		return kafka.RequireOne, nil
	case "0", "none":
		return kafka.RequireNone, nil
	}
	return 0, usageError{fmt.Errorf("--acks %q: want all, 1 or 0", s)}
}

// parseCompression maps --compression onto kafka-go's codecs.
func parseCompression(s string) (kafka.Compression, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, usageError{fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", s)}
}

// fixedPartition is a kafka-go balancer that always picks one partition.
type fixedPartition int

// Balance implements kafka.Balancer.
func (p fixedPartition) Balance(kafka.Message, ...int) int { return int(p) }

// recordFromLine builds the record for one input line (without its newline).
func recordFromLine(line []byte, pf *produceFlags, headers []kafka.Header) kafka.Message {
	var m kafka.Message
	value := line
	if pf.keyDelim != "" {
		if k, v, ok := bytes.Cut(line, []byte(pf.keyDelim)); ok {
			m.Key = bytes.Clone(k)
			value = v
		}
	}
	if len(value) > 0 || !pf.tombstones {
		m.Value = bytes.Clone(value)
		if m.Value == nil {
			m.Value = []byte{}
		}
	}
	m.Headers = headers
	return m
}

// offsetPrinter collects the offsets kafka-go reports for completed batches.
// Safe for concurrent use: the writer calls record from several goroutines.
type offsetPrinter struct {
	mu   sync.Mutex
	done [][2]int64
}

func (o *offsetPrinter) record(msgs []kafka.Message, err error) {
	if err != nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range msgs {
		o.done = append(o.done, [2]int64{int64(m.Partition), m.Offset})
	}
}

// flush prints and forgets the collected offsets, sorted.
func (o *offsetPrinter) flush(w io.Writer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	slices.SortFunc(o.done, func(a, b [2]int64) int {
		if a[0] != b[0] {
			return int(a[0] - b[0])
		}
		return int(a[1] - b[1])
	})
	for _, d := range o.done {
		fmt.Fprintf(w, "%d %d\n", d[0], d[1])
	}
	o.done = o.done[:0]
}

func runProduce(cmd *cobra.Command, cf *clientFlags, pf *produceFlags, topic string) error {
	acks, err := parseAcks(pf.acks)
	if err != nil {
		return err
	}
	codec, err := parseCompression(pf.compression)
	if err != nil {
		return err
	}
	if pf.maxLine < 1 {
		return usageError{errors.New("produce: --max-line-bytes must be positive")}
	}
	kvs, err := parseKeyValues("-H", pf.headers)
	if err != nil {
		return err
	}
	var headers []kafka.Header
	for _, kv := range kvs {
		headers = append(headers, kafka.Header{Key: kv[0], Value: []byte(kv[1])})
	}
	in := cmd.InOrStdin()
	var size int64 = -1
	if pf.file != "" {
		f, err := os.Open(pf.file)
		if err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = f
	}

	cl, err := cf.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, stop := signalContext(cmd)
	defer stop()
	mdCtx, cancel := cf.requestContext(cmd)
	n, err := partitionCount(mdCtx, cl, topic, true)
	cancel()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	var balancer kafka.Balancer = &kafka.Murmur2Balancer{}
	if pf.partition >= 0 {
		if pf.partition >= n {
			return fmt.Errorf("produce: partition %d out of range: %s has %d", pf.partition, topic, n)
		}
		balancer = fixedPartition(pf.partition)
	}
	printer := &offsetPrinter{}
	w := &kafka.Writer{
		Addr:         cl.Addr,
		Topic:        topic,
		Balancer:     balancer,
		RequiredAcks: acks,
		Compression:  codec,
		BatchSize:    produceChunk,
		BatchBytes:   int64(max(pf.maxLine+1024, 1<<20)),
		BatchTimeout: time.Millisecond,
		WriteTimeout: cf.timeout,
		Transport:    cl.transport,
	}
	if pf.printOffsets {
		w.Completion = printer.record
	}
	defer w.Close()

	bar := newProgressBar(cmd.ErrOrStderr(), size)
	start := time.Now()
	var records, bytesIn int64
	r := bufio.NewReaderSize(in, pf.maxLine+1)
	chunk := make([]kafka.Message, 0, produceChunk)
	chunkBytes := 0
	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, chunk...); err != nil {
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
		records += int64(len(chunk))
		chunk, chunkBytes = chunk[:0], 0
		if pf.printOffsets {
			printer.flush(cmd.OutOrStdout())
		}
		bar.update(bytesIn, records)
		return nil
	}
	for {
		line, rerr := r.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			return fmt.Errorf("%w: record %d exceeds --max-line-bytes %d", errLineTooLong, records+int64(len(chunk))+1, pf.maxLine)
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("produce: read input: %w", rerr)
		}
		bytesIn += int64(len(line))
		if len(line) > 0 {
			chunk = append(chunk, recordFromLine(bytes.TrimSuffix(line, []byte("\n")), pf, headers))
			chunkBytes += len(line)
		}
		// Send when the chunk is full, at the end, or when no more input
		// is ready (interactive use: each line goes out as it is typed).
		if len(chunk) == produceChunk || chunkBytes >= produceChunkBytes || rerr != nil || r.Buffered() == 0 {
			if err := send(); err != nil {
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	bar.finish()
	noun := "records"
	if records == 1 {
		noun = "record"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "produced %d %s to %s in %s\n", records, noun, topic, time.Since(start).Round(time.Millisecond))
	return nil
}
