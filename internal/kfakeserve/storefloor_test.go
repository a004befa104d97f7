package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// startStoreFloor runs the no-op server with a store floor in a temporary
// directory and returns its address and the directory.
func startStoreFloor(t *testing.T, partitions int) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	c, err := parseFlags([]string{"-noop", "-port", "0", "-partitions", fmt.Sprint(partitions), "-store", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(ctx context.Context, out io.Writer) error {
		return serveNoop(ctx, c, out, slog.New(slog.DiscardHandler))
	}), dir
}

// storedValues parses the file of one partition of the store floor and
// returns the values of its records in order; every batch must be whole
// with a valid CRC.
func storedValues(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for len(b) > 0 {
		bt, err := batch.Parse(b)
		if err != nil {
			t.Fatalf("%s: batch at byte %d: %v", path, len(b), err)
		}
		it, err := bt.Records(1 << 30)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			values = append(values, string(it.Record().Value))
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		b = b[len(bt):]
	}
	return values
}

func TestStoreFloorStoresWhatItAcks(t *testing.T) {
	addr, dir := startStoreFloor(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("floor"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Enough 1 KiB records, produced at once, for requests of hundreds of
	// KiB: read in pieces and checked from the block sums.
	const n = 3000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte('a' + rand.IntN(26))
		}
		copy(v, fmt.Sprintf("%06d", i))
		recs[i] = &kgo.Record{Value: v}
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := make(map[int32][]string)
	for _, r := range res {
		want[r.Record.Partition] = append(want[r.Record.Partition], string(r.Record.Value))
	}
	total := 0
	for p, vs := range want {
		got := storedValues(t, filepath.Join(dir, fmt.Sprintf("floor-%d", p)))
		if len(got) != len(vs) {
			t.Fatalf("partition %d: %d records stored, %d acknowledged", p, len(got), len(vs))
		}
		for i := range got {
			if got[i] != vs[i] {
				t.Fatalf("partition %d record %d: stored %.6q..., acknowledged %.6q...", p, i, got[i], vs[i])
			}
		}
		total += len(got)
	}
	if total != n {
		t.Fatalf("%d records stored, want %d", total, n)
	}
}

// produceFrame encodes a Produce v7 request (acks 1) of records to
// partition 0 of topic.
func produceFrame(topic string, records []byte) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frame := []byte{0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0xff, 0xff} // size, key 0, v7, correlation 1, null client id
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// produceCode sends frame on cn and returns the error code of its one
// partition.
func produceCode(t *testing.T, cn net.Conn, frame []byte) int16 {
	t.Helper()
	if _, err := cn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(cn, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(cn, body); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 7
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func TestStoreFloorRejectsCorruptBatches(t *testing.T) {
	addr, dir := startStoreFloor(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t")
	cl.Close()
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	cn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	var recs []batch.Record
	for i := range 400 { // about 400 KiB: read in pieces and summed
		recs = append(recs, batch.Record{Value: fmt.Appendf(nil, "%01024d", i)})
	}
	good := batch.MustBuild(batch.Options{}, recs...)
	small := batch.MustBuild(batch.Options{}, batch.Record{Value: []byte("small")})
	path := filepath.Join(dir, "t-0")

	for _, tc := range []struct {
		name    string
		records []byte
		at      int // byte flipped
	}{
		{"large, a record byte", good, len(good) / 2},
		{"large, the last byte", good, len(good) - 1},
		{"large, the attributes", good, 22},
		{"small, a record byte", small, len(small) - 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := append([]byte(nil), tc.records...)
			bad[tc.at] ^= 0x40
			if code := produceCode(t, cn, produceFrame("t", bad)); code != kerr.CorruptMessage.Code {
				t.Fatalf("corrupt batch answered with code %d, want CORRUPT_MESSAGE", code)
			}
			if fi, err := os.Stat(path); err == nil && fi.Size() != 0 {
				t.Fatalf("%s holds %d bytes after a corrupt batch", path, fi.Size())
			}
		})
	}
	// The same batches, intact, are stored byte for byte.
	for _, b := range [][]byte{good, small} {
		if code := produceCode(t, cn, produceFrame("t", b)); code != 0 {
			t.Fatalf("intact batch answered with code %d", code)
		}
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte(nil), good...), small...); string(stored) != string(want) {
		t.Fatalf("stored %d bytes, want the %d bytes produced", len(stored), len(want))
	}
}
