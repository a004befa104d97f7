package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
)

// errBench is the prefix of benchmark failures.
var errBench = errors.New("bench")

// benchClients are the Kafka clients the driver can use.
var benchClients = []string{"franz-go", "kafka-go"}

// benchFlags are the options shared by `weir bench` modes.
type benchFlags struct {
	client      string
	topic       string
	partitions  int
	replicas    int
	size        int
	count       int64
	duration    time.Duration
	acks        string
	idempotent  bool
	linger      time.Duration
	concurrency int
	compression string
	batchBytes  int
	rate        int
	format      *outputFormat
}

// newBenchCmd builds `weir bench produce|consume|e2e`.
func newBenchCmd() *cobra.Command {
	var (
		bf                   benchFlags
		produceRate, e2eRate int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce, consume and end-to-end throughput and latency",
		Long: `Measure a cluster the way kafka-producer-perf-test does, with the franz-go
(kgo) client by default or with kafka-go, so Weir and other Kafka brokers can be
compared with the same client.

Latency percentiles come from a log-linear histogram (at most 1.6% high).
Produce latency is from handing a record to the client to its acknowledgement;
end-to-end latency is from the record's scheduled send time (so a stalled
producer does not hide its delay) to its arrival at the consumer.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("bench: missing mode: produce, consume or e2e")}
		},
	}
	cf := addClientFlags(cmd)
	p := cmd.PersistentFlags()
	p.StringVar(&bf.client, "client", "franz-go", "client library: franz-go or kafka-go")
	p.StringVarP(&bf.topic, "topic", "t", "weir-bench", "topic (created if missing)")
	p.IntVarP(&bf.partitions, "partitions", "p", 6, "partitions when the topic is created")
	p.IntVarP(&bf.replicas, "replicas", "r", -1, "replication factor when the topic is created (-1: broker default)")
	p.IntVarP(&bf.size, "size", "s", 100, "record value size in bytes (at least 8 for e2e)")
	p.Int64VarP(&bf.count, "count", "n", 100000, "records to produce or consume (0: until --duration)")
	p.DurationVarP(&bf.duration, "duration", "d", 0, "stop after this long (0: until --count)")
	p.StringVar(&bf.acks, "acks", "all", "acknowledgements: all, 1 or 0")
	p.BoolVar(&bf.idempotent, "idempotent", true, "idempotent producer (franz-go only; kafka-go has none)")
	p.DurationVar(&bf.linger, "linger", 0, "producer linger (franz-go ProducerLinger, kafka-go BatchTimeout)")
	p.IntVarP(&bf.concurrency, "concurrency", "c", 1, "producer clients (franz-go) or writer goroutines (kafka-go)")
	p.StringVarP(&bf.compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	p.IntVar(&bf.batchBytes, "batch-bytes", 1<<20, "largest record batch a producer builds")
	bf.format = new(outputFormat)
	*bf.format = formatText
	p.Var(bf.format, "format", "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("client", cobra.FixedCompletions(benchClients, cobra.ShellCompDirectiveNoFileComp))

	produce := &cobra.Command{
		Use:   "produce",
		Short: "Produce records as fast as the client goes (or at --rate)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			bf.rate = produceRate
			return runBench(c, cf, &bf, "produce")
		},
	}
	produce.Flags().IntVar(&produceRate, "rate", 0, "records per second across all producers (0: unthrottled)")
	consume := &cobra.Command{
		Use:   "consume",
		Short: "Consume --count records from the start of the topic (fill it with bench produce first)",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return runBench(c, cf, &bf, "consume") },
	}
	e2e := &cobra.Command{
		Use:   "e2e",
		Short: "Produce at a fixed --rate while consuming; report produce-to-consume latency",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			bf.rate = e2eRate
			return runBench(c, cf, &bf, "e2e")
		},
	}
	e2e.Flags().IntVar(&e2eRate, "rate", 10000, "records per second across all producers")
	cmd.AddCommand(produce, consume, e2e)
	return cmd
}

// benchReport is the result of one run; its JSON names are stable.
type benchReport struct {
	Mode        string        `json:"mode" yaml:"mode"`
	Client      string        `json:"client" yaml:"client"`
	Topic       string        `json:"topic" yaml:"topic"`
	Partitions  int           `json:"partitions" yaml:"partitions"`
	RecordSize  int           `json:"record_size" yaml:"record_size"`
	Acks        string        `json:"acks,omitempty" yaml:"acks,omitempty"`
	Idempotent  bool          `json:"idempotent" yaml:"idempotent"`
	LingerMs    float64       `json:"linger_ms,omitempty" yaml:"linger_ms,omitempty"`
	Concurrency int           `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	Compression string        `json:"compression,omitempty" yaml:"compression,omitempty"`
	TargetRate  int           `json:"target_rate,omitempty" yaml:"target_rate,omitempty"`
	Records     int64         `json:"records" yaml:"records"`
	Bytes       int64         `json:"bytes" yaml:"bytes"`
	Seconds     float64       `json:"seconds" yaml:"seconds"`
	MsgsPerSec  float64       `json:"msgs_per_sec" yaml:"msgs_per_sec"`
	MBPerSec    float64       `json:"mb_per_sec" yaml:"mb_per_sec"`
	Latency     *latencyStats `json:"latency_ms,omitempty" yaml:"latency_ms,omitempty"`
}

// latencyStats are latency percentiles in milliseconds.
type latencyStats struct {
	Mean float64 `json:"mean" yaml:"mean"`
	P50  float64 `json:"p50" yaml:"p50"`
	P99  float64 `json:"p99" yaml:"p99"`
	P999 float64 `json:"p999" yaml:"p999"`
	Max  float64 `json:"max" yaml:"max"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func statsOf(h *latencyHist) *latencyStats {
	if h.count() == 0 {
		return nil
	}
	return &latencyStats{Mean: ms(h.mean()), P50: ms(h.quantile(0.5)), P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.quantile(1))}
}

// benchRun is what a driver needs for one run. Its histogram and counters
// are safe for concurrent use.
type benchRun struct {
	bf      *benchFlags
	addrs   []string
	acks    kafka.RequiredAcks
	codec   kafka.Compression
	parts   int
	start   map[int]int64 // partition → first offset to consume
	end     map[int]int64 // partition → high watermark when the run began
	payload []byte

	mu   sync.Mutex
	hist latencyHist

	e2e      bool
	limit    int64        // most records to count (consume); 0: no limit
	claimed  atomic.Int64 // records handed out to producers
	sent     atomic.Int64 // e2e: records the producers had acknowledged
	records  atomic.Int64 // records acknowledged (produce) or consumed
	bytes    atomic.Int64
	lastAt   atomic.Int64 // unix nanoseconds of the last observe
	deadline time.Time    // zero: none
	begin    time.Time

	errOnce sync.Once
	err     error
	cancel  context.CancelFunc
}

// observe records one completed record of n bytes with latency d (d < 0:
// none). It reports false, counting nothing, once the limit is reached.
func (r *benchRun) observe(d time.Duration, n int) bool {
	if c := r.records.Add(1); r.limit > 0 && c > r.limit {
		r.records.Add(-1)
		return false
	}
	r.bytes.Add(int64(n))
	r.lastAt.Store(time.Now().UnixNano())
	if d >= 0 {
		r.mu.Lock()
		r.hist.record(d)
		r.mu.Unlock()
	}
	return true
}

// acked is called by producers for each acknowledged record: in e2e runs
// the consumer measures, so it is only counted.
func (r *benchRun) acked(d time.Duration, n int) {
	if r.e2e {
		r.sent.Add(1)
		return
	}
	r.observe(d, n)
}

// fail records the first error and stops the run. Cancellations after the
// run was stopped are not errors.
func (r *benchRun) fail(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	r.errOnce.Do(func() {
		r.err = err
		r.cancel()
	})
}

// claim hands out the next record to produce and when it is due (zero time
// without --rate); ok is false when the run is complete.
func (r *benchRun) claim() (i int64, due time.Time, ok bool) {
	i = r.claimed.Add(1) - 1
	if r.bf.count > 0 && i >= r.bf.count {
		return i, due, false
	}
	if !r.deadline.IsZero() && time.Now().After(r.deadline) {
		return i, due, false
	}
	if r.bf.rate > 0 {
		due = r.begin.Add(time.Duration(float64(i) * float64(time.Second) / float64(r.bf.rate)))
	}
	return i, due, true
}

// pace waits until due (no-op for the zero time) or ctx ends.
func pace(ctx context.Context, due time.Time) bool {
	if due.IsZero() {
		return ctx.Err() == nil
	}
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// value returns a record value stamped with t (unix nanoseconds in the first
// 8 bytes) for end-to-end latency.
func (r *benchRun) value(t time.Time) []byte {
	v := make([]byte, len(r.payload))
	copy(v, r.payload)
	if len(v) >= 8 {
		binary.BigEndian.PutUint64(v, uint64(t.UnixNano()))
	}
	return v
}

// stampLatency is the time since the stamp in a record value, or -1.
func stampLatency(v []byte, now time.Time) time.Duration {
	if len(v) < 8 {
		return -1
	}
	return now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(v))))
}

func validateBench(bf *benchFlags, mode string, cmd *cobra.Command) error {
	switch {
	case bf.client != "franz-go" && bf.client != "kafka-go":
		return fmt.Errorf("--client %q: want franz-go or kafka-go", bf.client)
	case bf.size < 1 || (mode == "e2e" && bf.size < 8):
		return fmt.Errorf("--size %d: want at least 1 (8 for e2e)", bf.size)
	case bf.count < 0 || bf.duration < 0 || (bf.count == 0 && bf.duration == 0):
		return errors.New("give a positive --count or --duration")
	case bf.concurrency < 1 || bf.partitions < 1:
		return errors.New("--concurrency and --partitions must be at least 1")
	case bf.rate < 0 || (mode == "e2e" && bf.rate == 0):
		return errors.New("--rate must be positive for e2e (and not negative)")
	case *bf.format == formatWide:
		return errors.New("--format wide is not supported by bench (text, json or yaml)")
	case bf.client == "kafka-go" && bf.idempotent && cmd.Flags().Changed("idempotent"):
		return errors.New("--idempotent: kafka-go has no idempotent producer")
	}
	return nil
}

func runBench(cmd *cobra.Command, cf *clientFlags, bf *benchFlags, mode string) error {
	if err := validateBench(bf, mode, cmd); err != nil {
		return usageError{fmt.Errorf("bench %s: %w", mode, err)}
	}
	if bf.client == "kafka-go" {
		bf.idempotent = false
	}
	acks, err := parseAcks(bf.acks)
	if err != nil {
		return err
	}
	if acks != kafka.RequireAll && bf.client == "franz-go" && bf.idempotent {
		if cmd.Flags().Changed("idempotent") {
			return usageError{errors.New("bench: an idempotent producer needs --acks all")}
		}
		bf.idempotent = false
	}
	codec, err := parseCompression(bf.compression)
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

	ctx, stop := signalContext(cmd)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &benchRun{bf: bf, addrs: addrs, acks: acks, codec: codec, cancel: cancel, payload: make([]byte, bf.size), e2e: mode == "e2e"}
	for i := range run.payload {
		run.payload[i] = byte('a' + i%26)
	}
	if err := prepareBench(cmd, cf, cl, run, mode); err != nil {
		return fmt.Errorf("%w %s: %w", errBench, mode, err)
	}

	run.begin = time.Now()
	if bf.duration > 0 {
		run.deadline = run.begin.Add(bf.duration)
	}
	var d benchDriver = franzDriver{}
	if bf.client == "kafka-go" {
		d = kafkaGoDriver{}
	}
	elapsed, err := driveBench(ctx, d, run, mode)
	if err == nil {
		err = run.err
	}
	if err != nil {
		return fmt.Errorf("%w %s (%s): %w", errBench, mode, bf.client, err)
	}
	rep := benchReport{
		Mode: mode, Client: bf.client, Topic: bf.topic, Partitions: run.parts, RecordSize: bf.size,
		Acks: bf.acks, Idempotent: bf.idempotent, LingerMs: ms(bf.linger), Concurrency: bf.concurrency,
		Compression: bf.compression, TargetRate: bf.rate,
		Records: run.records.Load(), Bytes: run.bytes.Load(), Seconds: elapsed.Seconds(),
		Latency: statsOf(&run.hist),
	}
	if mode == "consume" {
		rep.Acks, rep.Idempotent, rep.LingerMs, rep.Concurrency, rep.Compression = "", false, 0, 0, ""
	}
	if elapsed > 0 {
		rep.MsgsPerSec = float64(rep.Records) / elapsed.Seconds()
		rep.MBPerSec = float64(rep.Bytes) / elapsed.Seconds() / (1 << 20)
	}
	return render(cmd.OutOrStdout(), *bf.format, rep, func(w io.Writer, _ bool) error {
		return writeBenchText(w, rep)
	})
}

// prepareBench creates the topic if needed and reads its offsets.
func prepareBench(cmd *cobra.Command, cf *clientFlags, cl *adminClient, run *benchRun, mode string) error {
	ctx, cancel := cf.requestContext(cmd)
	defer cancel()
	bf := run.bf
	n, err := partitionCount(ctx, cl, bf.topic, false)
	if errors.Is(err, errUnknownTopic) && mode != "consume" {
		resp, cerr := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: bf.topic, NumPartitions: bf.partitions, ReplicationFactor: bf.replicas,
		}}})
		if cerr != nil {
			return fmt.Errorf("create topic %s: %w", bf.topic, cerr)
		}
		if cerr := kafkaErr(resp.Errors[bf.topic]); cerr != nil && !errors.Is(cerr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", bf.topic, cerr)
		}
		n, err = waitPartitions(ctx, cl, bf.topic)
	}
	if err != nil {
		return err
	}
	run.parts = n
	if mode == "produce" {
		return nil // offsets are only needed to consume
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	offs, err := listOffsets(ctx, cl, bf.topic, ids)
	if err != nil {
		return err
	}
	run.start, run.end = make(map[int]int64, n), make(map[int]int64, n)
	var total int64
	for p, o := range offs {
		run.start[p], run.end[p] = o.start, o.end
		if mode == "e2e" {
			run.start[p] = o.end
		}
		total += o.end - o.start
	}
	if mode == "consume" && total == 0 {
		return fmt.Errorf("topic %s is empty: fill it with `weir bench produce` first", bf.topic)
	}
	return nil
}

// waitPartitions polls metadata until a new topic is visible.
func waitPartitions(ctx context.Context, cl *adminClient, topic string) (int, error) {
	for {
		n, err := partitionCount(ctx, cl, topic, false)
		if err == nil && n > 0 {
			return n, nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("topic %s not visible after create: %w", topic, ctx.Err())
		case <-t.C:
		}
	}
}

// writeBenchText prints a report in kafka-producer-perf-test's words.
func writeBenchText(w io.Writer, r benchReport) error {
	verb := map[string]string{"produce": "sent", "consume": "consumed", "e2e": "delivered end to end"}[r.Mode]
	var b strings.Builder
	fmt.Fprintf(&b, "%d records %s in %.2f s: %.1f records/sec (%.2f MB/sec)", r.Records, verb, r.Seconds, r.MsgsPerSec, r.MBPerSec)
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, ", %.2f ms avg latency, %.2f ms max latency, %.2f ms 50th, %.2f ms 99th, %.2f ms 99.9th", l.Mean, l.Max, l.P50, l.P99, l.P999)
	}
	fmt.Fprintf(&b, ".\n[%s, client %s, %d partitions, %d B records", r.Topic, r.Client, r.Partitions, r.RecordSize)
	if r.Mode != "consume" {
		fmt.Fprintf(&b, ", acks=%s, idempotent=%t, linger=%gms, concurrency %d, compression %s", r.Acks, r.Idempotent, r.LingerMs, r.Concurrency, r.Compression)
	}
	if r.TargetRate > 0 {
		fmt.Fprintf(&b, ", target %d records/sec", r.TargetRate)
	}
	b.WriteString("]\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// benchDriver runs producers and consumers with one client library.
type benchDriver interface {
	// produce sends records claimed from run until none are left, stamping
	// values with their due time when stamp is set, and returns once every
	// sent record is acknowledged (or failed through run.fail).
	produce(ctx context.Context, run *benchRun, stamp bool) error
	// consume reads every partition from run.start, calling run.observe,
	// until ctx ends; it returns nil then.
	consume(ctx context.Context, run *benchRun) error
}

// e2eGrace bounds how long an e2e run waits for the last records after the
// producers finished.
const e2eGrace = 10 * time.Second

// driveBench runs one mode and returns the measured elapsed time.
func driveBench(ctx context.Context, d benchDriver, run *benchRun, mode string) (time.Duration, error) {
	if mode == "produce" {
		if err := d.produce(ctx, run, false); err != nil {
			return 0, err
		}
		return time.Since(run.begin), nil
	}
	var available int64
	for p, end := range run.end {
		available += end - run.start[p]
	}
	if mode == "consume" {
		run.limit = available
		if run.bf.count > 0 {
			run.limit = min(available, run.bf.count)
		}
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := d.consume(cctx, run); err != nil {
			run.fail(err)
		}
	})
	var produced atomic.Bool
	if mode == "e2e" {
		wg.Go(func() {
			if err := d.produce(ctx, run, true); err != nil {
				run.fail(err)
			}
			produced.Store(true)
		})
	}
	// Watch for the end of the run: every record wanted has arrived.
	var graceEnd time.Time
	tick := time.NewTicker(2 * time.Millisecond)
	var err error
watch:
	for {
		select {
		case <-ctx.Done():
			break watch
		case <-tick.C:
		}
		got := run.records.Load()
		if mode == "consume" {
			if got >= run.limit ||
				(!run.deadline.IsZero() && time.Now().After(run.deadline)) {
				break watch
			}
			continue
		}
		if !produced.Load() {
			continue
		}
		if got >= run.sent.Load() {
			break watch
		}
		if graceEnd.IsZero() {
			graceEnd = time.Now().Add(e2eGrace)
		} else if time.Now().After(graceEnd) {
			err = fmt.Errorf("%d of %d records not consumed %s after the producers finished", run.sent.Load()-got, run.sent.Load(), e2eGrace)
			break watch
		}
	}
	tick.Stop()
	stopConsumer()
	wg.Wait()
	if err != nil {
		return 0, err
	}
	last := run.lastAt.Load()
	if last == 0 {
		return 0, run.err
	}
	return time.Unix(0, last).Sub(run.begin), run.err
}
