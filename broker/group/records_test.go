package group

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecodeRecord from seedRecords")

// seedRecords are encoded records of every kind and version readers meet.
func seedRecords() [][2][]byte {
	now := time.UnixMilli(1_700_000_000_000)
	h := newHarness(0)
	h.join(JoinRequest{ClientID: "c", InstanceID: "i", ProtocolType: "consumer", Protocols: protocols("range"),
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 20 * time.Second})
	static := groupRecord(h.g, now)
	h2 := newHarness(0)
	h2.join(JoinRequest{ClientID: "c", ProtocolType: "consumer", Protocols: protocols("range"),
		SessionTimeout: 10 * time.Second})
	dynamic := groupRecord(h2.g, now)
	off := offsetRecord("g", TopicPartition{"t", 3}, Offset{Offset: 42, LeaderEpoch: 7, Metadata: "meta", CommitTime: now})
	v1 := kmsg.NewOffsetCommitValue()
	v1.Version, v1.Offset, v1.Metadata, v1.CommitTimestamp, v1.ExpireTimestamp = 1, 9, "", now.UnixMilli(), -1
	v0 := kmsg.NewOffsetCommitValue()
	v0.Version, v0.Offset = 0, 8
	k0 := kmsg.NewOffsetCommitKey()
	k0.Version, k0.Group, k0.Topic, k0.Partition = 0, "g", "t", 1
	return [][2][]byte{
		{static.Key, static.Value},
		{dynamic.Key, dynamic.Value},
		{off.Key, off.Value},
		{off.Key, v1.AppendTo(nil)},
		{k0.AppendTo(nil), v0.AppendTo(nil)},
		{off.Key, nil},
		{static.Key, nil},
		{[]byte{0, 9}, []byte{1}},
		{nil, nil},
	}
}

// TestRecordFormats checks the versions written (offset key v1 and value
// v3; group metadata v1, v3 only with static members) and that every seed
// decodes as Kafka's readers would.
func TestRecordFormats(t *testing.T) {
	seeds := seedRecords()
	if v := seeds[0][1][:2]; !bytes.Equal(v, []byte{0, 3}) {
		t.Errorf("group metadata with a static member: value version %v, want 3", v)
	}
	if v := seeds[1][1][:2]; !bytes.Equal(v, []byte{0, 1}) {
		t.Errorf("group metadata without static members: value version %v, want 1", v)
	}
	if k, v := seeds[2][0][:2], seeds[2][1][:2]; !bytes.Equal(k, []byte{0, 1}) || !bytes.Equal(v, []byte{0, 3}) {
		t.Errorf("offset commit: key version %v value version %v, want 1 and 3", k, v)
	}
	tests := []struct {
		name     string
		rec      [2][]byte
		isOffset bool
		offset   int64 // -1: tombstone
		epoch    int32
		bad      bool
	}{
		{"group v3", seeds[0], false, 0, 0, false},
		{"group v1", seeds[1], false, 0, 0, false},
		{"offset v3", seeds[2], true, 42, 7, false},
		{"offset v1 (older Kafka)", seeds[3], true, 9, -1, false},
		{"offset key v0 value v0", seeds[4], true, 8, -1, false},
		{"offset tombstone", seeds[5], true, -1, 0, false},
		{"group tombstone", seeds[6], false, 0, 0, false},
		{"unknown key version", seeds[7], false, 0, 0, true},
		{"empty", seeds[8], false, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := decodeRecord(tt.rec[0], tt.rec[1])
			if (err != nil) != tt.bad {
				t.Fatalf("err %v, want bad=%v", err, tt.bad)
			}
			if tt.bad {
				return
			}
			if l.isOffset != tt.isOffset {
				t.Fatalf("isOffset %v", l.isOffset)
			}
			if tt.isOffset && tt.offset < 0 && l.offset != nil {
				t.Fatalf("tombstone decoded as %+v", l.offset)
			}
			if tt.isOffset && tt.offset >= 0 && (l.offset == nil || l.offset.Offset != tt.offset || l.offset.LeaderEpoch != tt.epoch) {
				t.Fatalf("offset %+v, want %d epoch %d", l.offset, tt.offset, tt.epoch)
			}
		})
	}
	// A static member survives the round trip.
	l, _ := decodeRecord(seeds[0][0], seeds[0][1])
	g := New("g", &newHarness(0).rules, time.Now())
	g.restore(l.metadata, time.Time{}, time.Now())
	if g.state != Stable || len(g.static) != 1 || g.static["i"] == "" {
		t.Fatalf("restored %s with static %v", g.state, g.static)
	}
}

// FuzzDecodeRecord: no record of the offsets topic panics the decoder or
// the restore of a group from it.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range seedRecords() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		l, err := decodeRecord(key, value)
		if err != nil || l.metadata == nil {
			return
		}
		g := New(l.group, &newHarness(0).rules, time.Now())
		g.restore(l.metadata, time.Time{}, time.Now())
		_ = g.NextDeadline()
		_ = groupRecord(g, time.Now())
	})
}

// TestWriteFuzzSeeds keeps the committed corpus in step with seedRecords
// (run with -update-seeds to rewrite it).
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeRecord")
	for i, s := range seedRecords() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s[0], s[1])
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != body {
			t.Fatalf("%s is stale or missing (run go test -run TestWriteFuzzSeeds -update-seeds): %v", path, err)
		}
	}
}
