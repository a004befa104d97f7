package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFetchBodyMemoryRegions writes a body whose regions mix bytes the log
// read past the page cache with sendfile regions, over TCP, and checks
// every byte.
func TestFetchBodyMemoryRegions(t *testing.T) {
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	f := osSegment(t, data)
	client, server := loopbackPair(t)
	body := &fetchBody{buf: []byte("head")}
	mem := func(pos, size int64) fileRegion {
		return fileRegion{file: f, pos: pos, size: size, data: data[pos : pos+size]}
	}
	body.parts = []bodyPart{
		{start: 0, end: 4},
		{region: mem(1000, 300000)},
		{region: fileRegion{file: f, pos: 5, size: 7000}},
		{region: mem(10, 2500000)},
	}
	want := []byte("head")
	body.n = 4
	for _, p := range body.parts[1:] {
		want = append(want, data[p.region.pos:p.region.pos+p.region.size]...)
		body.n += p.region.size
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, body.n))
		got <- b
	}()
	if n, err := body.WriteTo(server); err != nil || n != body.n {
		t.Fatalf("WriteTo = %d, %v; want %d", n, err, body.n)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes that differ from the regions", len(b))
	}
}

// TestPageCacheWindowEndToEnd runs a broker with a small page cache window:
// franz-go produces 3 MiB to one partition and consumes it all back from the
// start (everything but the newest 64 KiB read past the page cache), in
// order and intact.
func TestPageCacheWindowEndToEnd(t *testing.T) {
	s := startServer(t, func(c *Config) { c.PageCacheWindow = 64 << 10 })
	const n = 3000
	prod := newClient(t, s, kgo.DefaultProduceTopic("window"), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	value := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%07d", i)), 146) } // 1022 bytes
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Partition: 0, Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, s, "window", n)
	for i, v := range got {
		if v != string(value(i)) {
			t.Fatalf("record %d: got %.20q..., want %.20q...", i, v, value(i))
		}
	}
}
