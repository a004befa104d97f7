package txn

import (
	"errors"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestRecordRoundTrip: every metadata survives encode and decode.
func TestRecordRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := Metadata{
			ID:         rapid.String().Draw(t, "id"),
			ProducerID: rapid.Int64Range(0, 1<<40).Draw(t, "pid"),
			Epoch:      rapid.Int16Range(0, 32766).Draw(t, "epoch"),
			Timeout:    time.Duration(rapid.Int32Range(1, 1<<30).Draw(t, "timeout")) * time.Millisecond,
			State:      State(rapid.Int8Range(0, int8(PrepareEpochFence)).Draw(t, "state")),
			LastUpdate: time.UnixMilli(rapid.Int64Range(0, 1<<42).Draw(t, "updated")),
		}
		for _, tp := range rapid.SliceOf(rapid.Custom(func(t *rapid.T) TopicPartition {
			return TopicPartition{rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "topic"), rapid.Int32Range(0, 9).Draw(t, "p")}
		})).Draw(t, "partitions") {
			if i, ok := slices.BinarySearchFunc(m.Partitions, tp, compareTP); !ok {
				m.Partitions = slices.Insert(m.Partitions, i, tp)
			}
		}
		if m.State == Ongoing || m.State == PrepareCommit || m.State == PrepareAbort {
			m.Start = time.UnixMilli(rapid.Int64Range(0, 1<<42).Draw(t, "start"))
		}
		k, v := encodeRecord(&m)
		got, ok, err := decodeRecord(k, v)
		if err != nil || !ok {
			t.Fatalf("decode: %v %v", ok, err)
		}
		if got.ID != m.ID || got.ProducerID != m.ProducerID || got.Epoch != m.Epoch || got.Timeout != m.Timeout ||
			got.State != m.State || !got.LastUpdate.Equal(m.LastUpdate) || !got.Start.Equal(m.Start) ||
			!slices.Equal(got.Partitions, m.Partitions) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
	})
}

// TestDecodeRecordRejects: damaged records are errors, tombstones are not.
func TestDecodeRecordRejects(t *testing.T) {
	m := meta(Ongoing)
	k, v := encodeRecord(&m)
	if _, ok, err := decodeRecord(k, nil); ok || err != nil {
		t.Fatalf("tombstone: %v %v", ok, err)
	}
	for _, tc := range []struct {
		name string
		k, v []byte
	}{
		{"empty key", nil, v},
		{"short value", k, v[:5]},
		{"bad state", k, func() []byte { b := slices.Clone(v); b[2+8+2+4] = 99; return b }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeRecord(tc.k, tc.v); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("err %v, want ErrBadRecord", err)
			}
		})
	}
}

// FuzzDecodeRecord: no input panics, and what decodes re-encodes to a
// record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	m := meta(Ongoing)
	k, v := encodeRecord(&m)
	f.Add(k, v)
	f.Fuzz(func(t *testing.T, k, v []byte) {
		got, ok, err := decodeRecord(k, v)
		if err != nil || !ok {
			return
		}
		k2, v2 := encodeRecord(&got)
		again, _, err := decodeRecord(k2, v2)
		if err != nil || again.ID != got.ID || again.State != got.State || !slices.Equal(again.Partitions, got.Partitions) {
			t.Fatalf("re-decode: %+v vs %+v: %v", again, got, err)
		}
	})
}
