package broker

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// TestParkedFetchesHoldNoGoroutines parks 200 long-poll fetches on four
// connections and checks that the server's goroutine count does not grow
// with them (they wait in the purgatory, not on a goroutine each), then
// that one append answers all of them with the record.
func TestParkedFetchesHoldNoGoroutines(t *testing.T) {
	s := startServer(t)
	admin := dialRaw(t, s)
	createTopicRaw(t, admin, "parked", 1, nil)
	const conns, perConn = 4, 50
	cs := make([]*rawConn, conns)
	for i := range cs {
		cs[i] = dialRaw(t, s)
		cs[i].roundTrip(kmsg.NewPtrApiVersionsRequest(), 0) // the connection's goroutines are running
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 30_000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "parked"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 0, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	for _, c := range cs {
		for i := range perConn {
			c.send(fetch, int32(i+1))
		}
	}
	waitFor(t, "the fetches to park", func() bool { _, f := s.replicas().Waiting(); return f == conns*perConn })
	if grown := runtime.NumGoroutine() - before; grown > 20 {
		t.Fatalf("%d parked fetches grew the goroutines by %d", conns*perConn, grown)
	}
	if got := produceRaw(t, admin, 9, 1, "parked", 0, nowBatch("wake", 1, batch.Options{})); got.ErrorCode != 0 {
		t.Fatalf("produce: error %d", got.ErrorCode)
	}
	for _, c := range cs {
		for i := range perConn {
			corr, body, err := c.recv()
			if err != nil || corr != int32(i+1) {
				t.Fatalf("fetch %d: correlation id %d, err %v", i+1, corr, err)
			}
			resp := fetch.ResponseKind().(*kmsg.FetchResponse)
			if err := resp.ReadFrom(body); err != nil { // v11: no response-header tag byte
				t.Fatal(err)
			}
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
				t.Fatalf("fetch %d: error %d, high watermark %d, %d record bytes", i+1, p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
			}
		}
	}
}

// TestManyConnectionsLargeRequestsBoundedMemory opens 40 connections that
// each announce an 8 MiB request and send half of it, then stall. Only the
// shared in-flight budget (16 MiB) may be read into memory: the server's
// heap grows by far less than the 160 MiB the stalled bodies would take,
// and once they go, another client is served as before.
func TestManyConnectionsLargeRequestsBoundedMemory(t *testing.T) {
	const (
		conns     = 40
		frameSize = 8 << 20
		shared    = 16 << 20
	)
	s := startServer(t, func(c *Config) {
		c.MaxRequestBytes = frameSize
		c.MaxInFlightBytes = shared
	})
	admin := dialRaw(t, s)
	createTopicRaw(t, admin, "bounded", 1, nil)
	// A Produce header, then the body's first half: every byte a request
	// reader could take in before it knows the request is whole.
	half := make([]byte, frameSize/2)
	binary.BigEndian.PutUint32(half, frameSize)
	copy(half[4:], []byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 0})
	var runtimeStats runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&runtimeStats)
	heapBefore := runtimeStats.HeapAlloc

	var writers sync.WaitGroup
	stalled := make([]net.Conn, conns)
	for i := range stalled {
		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		stalled[i] = nc
		_ = nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		writers.Go(func() { _, _ = nc.Write(half) }) // blocks once the socket buffers fill
	}
	waitFor(t, "the shared budget to fill", func() bool { return s.shared.Used() == shared })
	time.Sleep(200 * time.Millisecond) // let any unbounded reader show itself
	runtime.GC()
	runtime.ReadMemStats(&runtimeStats)
	grown := int64(runtimeStats.HeapAlloc) - int64(heapBefore)
	if grown > 3*shared {
		t.Fatalf("heap grew by %d MiB with %d stalled %d MiB requests; the budget is %d MiB",
			grown>>20, conns, frameSize>>20, shared>>20)
	}
	t.Logf("heap grew by %d MiB", grown>>20)

	for _, nc := range stalled {
		_ = nc.Close()
	}
	writers.Wait()
	waitFor(t, "the budget to drain", func() bool { return s.shared.Used() == 0 })
	if got := produceRaw(t, admin, 9, -1, "bounded", 0, nowBatch("after", 3, batch.Options{})); got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("produce after the stalled clients left: error %d, base offset %d", got.ErrorCode, got.BaseOffset)
	}
}

// TestMaxConnections: at MaxConnections the server stops accepting, so a
// further client is not served until an open connection closes.
func TestMaxConnections(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxConnections = 3 })
	open := make([]*rawConn, 3)
	for i := range open {
		open[i] = dialRaw(t, s)
		open[i].roundTrip(kmsg.NewPtrApiVersionsRequest(), 1)
	}
	waiting := dialRaw(t, s) // connects in the kernel's backlog
	waiting.send(kmsg.NewPtrApiVersionsRequest(), 7)
	_ = waiting.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if corr, _, err := waiting.recv(); err == nil {
		t.Fatalf("a fourth connection was served (correlation id %d) with MaxConnections 3", corr)
	}
	_ = open[0].nc.Close()
	_ = waiting.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if corr, _, err := waiting.recv(); err != nil || corr != 7 {
		t.Fatalf("after a connection closed: correlation id %d, err %v", corr, err)
	}
}
