package broker

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
	"pgregory.net/rapid"

	"github.com/weir-broker/weir/log/vfs"
)

// TestFetchBodyMatchesKmsg encodes random fetch responses with records held
// in a file and checks the bytes equal kmsg's own encoding of the same
// response with the records inline, for every version served (4-12).
func TestFetchBodyMatchesKmsg(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fs := vfs.NewMem()
		f, err := fs.Create("seg")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		data := rapid.SliceOfN(rapid.Byte(), 0, 4096).Draw(t, "data")
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		version := int16(rapid.IntRange(4, 12).Draw(t, "version"))
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = version
		resp.ThrottleMillis = rapid.Int32().Draw(t, "throttle")
		if version >= 7 {
			resp.ErrorCode = rapid.Int16().Draw(t, "err")
			resp.SessionID = rapid.Int32().Draw(t, "session")
		}
		var regions [][][]fileRegion
		inline := kmsg.NewPtrFetchResponse() // the same with records inline
		for ti := range rapid.IntRange(0, 3).Draw(t, "topics") {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = rapid.StringMatching(`[a-z.\-]{0,20}`).Draw(t, "topic")
			var trs [][]fileRegion
			for range rapid.IntRange(0, 3).Draw(t, "partitions") {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = rapid.Int32().Draw(t, "p")
				rp.ErrorCode = rapid.Int16().Draw(t, "perr")
				rp.HighWatermark = rapid.Int64().Draw(t, "hw")
				rp.LastStableOffset = rapid.Int64().Draw(t, "lso")
				if version >= 5 {
					rp.LogStartOffset = rapid.Int64().Draw(t, "lstart")
				}
				if version >= 11 {
					rp.PreferredReadReplica = rapid.Int32().Draw(t, "prr")
				}
				if rapid.Bool().Draw(t, "aborted") {
					rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
					for range rapid.IntRange(0, 2).Draw(t, "naborted") {
						a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
						a.ProducerID = rapid.Int64().Draw(t, "apid")
						a.FirstOffset = rapid.Int64().Draw(t, "afirst")
						rp.AbortedTransactions = append(rp.AbortedTransactions, a)
					}
				}
				var rs []fileRegion
				var want []byte
				for range rapid.IntRange(0, 3).Draw(t, "regions") {
					pos := rapid.IntRange(0, len(data)).Draw(t, "pos")
					size := rapid.IntRange(0, len(data)-pos).Draw(t, "size")
					rs = append(rs, fileRegion{file: f, pos: int64(pos), size: int64(size)})
					want = append(want, data[pos:pos+size]...)
				}
				ip := rp
				// Kafka never sends null records: an empty partition has
				// zero-length (not null) record bytes, which librdkafka
				// 2.0 requires ("invalid MessageSetSize -1" otherwise).
				ip.RecordBatches = append([]byte{}, want...)
				rt.Partitions = append(rt.Partitions, rp)
				trs = append(trs, rs)
				if len(inline.Topics) <= ti {
					inline.Topics = append(inline.Topics, kmsg.NewFetchResponseTopic())
					inline.Topics[ti].Topic = rt.Topic
				}
				inline.Topics[ti].Partitions = append(inline.Topics[ti].Partitions, ip)
			}
			if len(inline.Topics) <= ti {
				inline.Topics = append(inline.Topics, kmsg.NewFetchResponseTopic())
				inline.Topics[ti].Topic = rt.Topic
			}
			resp.Topics = append(resp.Topics, rt)
			regions = append(regions, trs)
		}
		inline.Version, inline.ThrottleMillis, inline.ErrorCode, inline.SessionID = version, resp.ThrottleMillis, resp.ErrorCode, resp.SessionID
		want := inline.AppendTo(nil)

		body := encodeFetchBody(resp, version, regions)
		defer body.Release()
		var got bytes.Buffer
		n, err := body.WriteTo(&got)
		if err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		if n != body.Len() || int64(got.Len()) != body.Len() {
			t.Fatalf("wrote %d, buffer %d, Len %d", n, got.Len(), body.Len())
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("v%d encoding differs from kmsg:\n got %x\nwant %x", version, got.Bytes(), want)
		}
		// Appended to a write buffer (wire.BodyAppender), after what it holds.
		prefix := []byte("header")
		appended, err := body.AppendBody(bytes.Clone(prefix))
		if err != nil {
			t.Fatalf("AppendBody: %v", err)
		}
		if !bytes.Equal(appended, append(prefix, want...)) {
			t.Fatalf("v%d AppendBody differs from kmsg:\n got %x\nwant %x", version, appended[len(prefix):], want)
		}
	})
}

// loopbackPair returns a connected TCP pair on 127.0.0.1.
func loopbackPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server = <-ch
	if server == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// osSegment writes data to a real file and returns it as a vfs.File.
func osSegment(tb testing.TB, data []byte) vfs.File {
	tb.Helper()
	name := filepath.Join(tb.TempDir(), "00000000000000000000.log")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	f, err := vfs.OS{}.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// TestSendfileRegions sends regions of one OS file over TCP, both zero-copy
// and copied, with two regions of the same file interleaved so a shared file
// offset would garble them.
func TestSendfileRegions(t *testing.T) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f := osSegment(t, data)
	tests := []struct {
		name     string
		copyOnly bool
	}{{"sendfile", false}, {"copy", true}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			body := &fetchBody{copyOnly: tc.copyOnly, buf: []byte("head")}
			body.parts = []bodyPart{
				{start: 0, end: 4},
				{region: fileRegion{file: f, pos: 1000, size: 300000}},
				{region: fileRegion{file: f, pos: 10, size: 500000}},
			}
			body.n = 4 + 300000 + 500000
			want := append(append([]byte("head"), data[1000:301000]...), data[10:500010]...)
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(io.LimitReader(client, body.n))
				got <- b
			}()
			n, err := body.WriteTo(server)
			if err != nil || n != body.n {
				t.Fatalf("WriteTo = %d, %v; want %d", n, err, body.n)
			}
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("received %d bytes that differ from the regions", len(b))
			}
		})
	}
}

// TestSendfileShortFile reports a region past the end of its file as an
// error instead of sending fewer bytes than announced.
func TestSendfileShortFile(t *testing.T) {
	f := osSegment(t, make([]byte, 100))
	for _, copyOnly := range []bool{false, true} {
		client, server := loopbackPair(t)
		go io.Copy(io.Discard, client)
		if _, err := writeRegion(server, fileRegion{file: f, pos: 50, size: 100}, copyOnly); err == nil {
			t.Fatalf("copyOnly=%v: no error for a region past the end of the file", copyOnly)
		}
	}
}

// TestAppendBodyShortFile: a region past the end of its file fails
// AppendBody instead of appending fewer bytes than announced.
func TestAppendBodyShortFile(t *testing.T) {
	f := osSegment(t, make([]byte, 100))
	body := &fetchBody{buf: []byte("head"), parts: []bodyPart{{start: 0, end: 4}, {region: fileRegion{file: f, pos: 50, size: 100}}}, n: 104}
	if b, err := body.AppendBody(nil); err == nil {
		t.Fatalf("no error for a region past the end of the file (%d bytes appended)", len(b))
	}
}

// benchmarkFetchBody writes a 1 MiB region of a real segment file to a
// loopback socket, zero-copy or copied. Besides wall time it reports the CPU
// time of the sending thread per op (the benchmark goroutine is locked to
// its thread, and the reader runs on another): on a shared machine that is
// steadier than wall time, and it is exactly the cost sendfile removes.
func benchmarkFetchBody(b *testing.B, copyOnly bool) {
	const size = 1 << 20
	f := osSegment(b, bytes.Repeat([]byte{0xab}, size))
	client, server := loopbackPair(b)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, client)
		close(done)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	body := &fetchBody{copyOnly: copyOnly, parts: []bodyPart{{region: fileRegion{file: f, size: size}}}, n: size}
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := threadCPU(b)
	for b.Loop() {
		if _, err := body.WriteTo(server); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(threadCPU(b)-cpu0)/float64(b.N), "sender-cpu-ns/op")
	server.Close()
	<-done
}

// threadCPU returns the user plus system CPU time of the calling thread.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkFetchBodySendfile(b *testing.B) { benchmarkFetchBody(b, false) }
func BenchmarkFetchBodyCopy(b *testing.B)     { benchmarkFetchBody(b, true) }
