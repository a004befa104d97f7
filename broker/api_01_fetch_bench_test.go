package broker

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// benchConn is a minimal client for benchmarks: it writes a request and
// reads the response frame, decoding nothing unless asked.
type benchConn struct {
	nc  net.Conn
	f   *kmsg.RequestFormatter
	buf []byte
}

func dialBench(b *testing.B, s *Server) *benchConn {
	b.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return &benchConn{nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench"))}
}

// do sends req and returns the response body after the correlation id.
func (c *benchConn) do(b *testing.B, req kmsg.Request) []byte {
	c.buf = c.f.AppendRequest(c.buf[:0], req, 1)
	if _, err := c.nc.Write(c.buf); err != nil {
		b.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		b.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(c.nc, body); err != nil {
		b.Fatal(err)
	}
	return body[4:]
}

func benchServer(b *testing.B) *Server {
	b.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Listen = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchRecords is a 100-record batch of 100-byte values (about 11 KiB).
func benchRecords() []byte {
	recs := make([]batch.Record, 100)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: time.Now().UnixMilli(), Value: make([]byte, 100)}
	}
	return batch.MustBuild(batch.Options{}, recs...)
}

func produceReq(topic string, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// benchmarkProduce measures one produce round trip over loopback: decode,
// append, HW update (and the purgatory for acks=all), encode.
func benchmarkProduce(b *testing.B, acks int16) {
	s := benchServer(b)
	c := dialBench(b, s)
	recs := benchRecords()
	c.do(b, produceReq("bench", 1, append([]byte(nil), recs...))) // auto-creates
	req := produceReq("bench", acks, recs)
	b.SetBytes(int64(len(recs)))
	b.ReportAllocs()
	for b.Loop() {
		c.do(b, req)
	}
}

func BenchmarkProduceAcks1(b *testing.B)   { benchmarkProduce(b, 1) }
func BenchmarkProduceAcksAll(b *testing.B) { benchmarkProduce(b, -1) }

// BenchmarkFetch1MiB fetches 1 MiB of stored batches per round trip over
// loopback: the batches go from the segment file to the socket with
// sendfile.
func BenchmarkFetch1MiB(b *testing.B) {
	s := benchServer(b)
	c := dialBench(b, s)
	recs := benchRecords()
	for range 200 {
		c.do(b, produceReq("bench", 1, append([]byte(nil), recs...)))
	}
	req := fetchRequest(12, 0, 1, 1<<20, fetchPart{"bench", 0, 0, 1 << 20})
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		req.Topics[0].Partitions[0].FetchOffset = i % 10000
		c.do(b, req)
		i += 137
	}
}
