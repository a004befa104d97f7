// Command seedgen writes the fuzz seed corpus of package log/batch from
// record batches that a real Kafka client produced: franz-go's kgo produces
// into an in-process kfake cluster, and a control hook on the Produce
// request captures each partition's records field as it crossed the wire.
// It runs one producer per codec (none, gzip, snappy, lz4, zstd), with and
// without idempotence, with a few record shapes (null keys, headers,
// tombstones, a 10 KB value).
//
// Java clients frame snappy in the xerial format, which no Go client writes;
// the fuzz targets add those seeds (and control batches) from log/batch's
// own builder in code.
//
//	go run ./internal/seedgen -out log/batch/testdata/fuzz
//
// It is a development tool, not part of the weir binary, and it listens on
// 127.0.0.1 only.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzTargets are the fuzz functions of log/batch that take one []byte.
var fuzzTargets = []string{"FuzzParse", "FuzzRecords"}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seedgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seedgen", flag.ContinueOnError)
	out := fs.String("out", "log/batch/testdata/fuzz", "corpus root: one directory per fuzz target is written under it")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	seeds, err := capture(ctx)
	if err != nil {
		return err
	}
	for _, target := range fuzzTargets {
		dir := filepath.Join(*out, target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("seedgen: %w", err)
		}
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
				return fmt.Errorf("seedgen: %w", err)
			}
		}
	}
	fmt.Fprintf(stdout, "wrote %d seeds for %d targets under %s\n", len(seeds), len(fuzzTargets), *out)
	return nil
}

type seed struct {
	name string
	data []byte
}

// capture runs kgo against kfake and returns every produced records field.
func capture(ctx context.Context) ([]seed, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "seeds"))
	if err != nil {
		return nil, fmt.Errorf("seedgen: kfake: %w", err)
	}
	defer cluster.Close()

	var mu sync.Mutex
	var captured [][]byte
	cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req, ok := r.(*kmsg.ProduceRequest)
		if !ok {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				captured = append(captured, bytes.Clone(p.Records))
			}
		}
		return nil, nil, false // observe only: kfake handles the request
	})

	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	var seeds []seed
	for _, c := range codecs {
		for _, idempotent := range []bool{false, true} {
			mu.Lock()
			captured = nil
			mu.Unlock()
			if err := produce(ctx, cluster.ListenAddrs(), c.codec, idempotent); err != nil {
				return nil, err
			}
			mu.Lock()
			for i, b := range captured {
				mode := "plain"
				if idempotent {
					mode = "idempotent"
				}
				seeds = append(seeds, seed{fmt.Sprintf("kgo-%s-%s-%d", c.name, mode, i), b})
			}
			mu.Unlock()
		}
	}
	if len(seeds) == 0 {
		return nil, errors.New("seedgen: no produce request captured")
	}
	return seeds, nil
}

// produce sends three rounds of records, each flushed as its own batch.
func produce(ctx context.Context, addrs []string, codec kgo.CompressionCodec, idempotent bool) error {
	opts := []kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.DefaultProduceTopic("seeds"),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(0),
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("seedgen: client: %w", err)
	}
	defer cl.Close()
	rounds := [][]*kgo.Record{
		{{Key: []byte("k1"), Value: []byte("hello")}},
		{
			{Key: []byte("order-1"), Value: []byte(`{"state":"created"}`),
				Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("42")}, {Key: "trace", Value: nil}}},
			{Key: nil, Value: []byte("no key")},
			{Key: []byte("order-1"), Value: nil}, // tombstone
		},
		{{Key: []byte("big"), Value: bytes.Repeat([]byte("weir "), 2000)}},
	}
	for _, recs := range rounds {
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("seedgen: produce: %w", err)
		}
	}
	return nil
}
