package main

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// encodeAssignment builds consumer-protocol assignment bytes (version 0 or
// later) the way Java clients do.
func encodeAssignment(version int16, tps []topicPartitions, userData []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(len(tps)))
	for _, tp := range tps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(tp.Topic)))
		b = append(b, tp.Topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(tp.Partitions)))
		for _, p := range tp.Partitions {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
	}
	if userData == nil {
		return binary.BigEndian.AppendUint32(b, math.MaxUint32) // null
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(userData)))
	return append(b, userData...)
}

func TestDecodeAssignment(t *testing.T) {
	two := []topicPartitions{{Topic: "a", Partitions: []int{0, 2}}, {Topic: "b", Partitions: []int{1}}}
	full := encodeAssignment(0, two, nil)
	tests := []struct {
		name    string
		in      []byte
		want    []topicPartitions
		wantErr bool
	}{
		{"empty: no assignment", nil, []topicPartitions{}, false},
		{"v0 two topics", full, two, false},
		{"v1 with user data and trailing fields", append(encodeAssignment(1, two, []byte("ud")), 0, 0, 0, 0), two, false},
		{"unsorted input comes back sorted", encodeAssignment(0, []topicPartitions{{"b", []int{1}}, {"a", []int{2, 0}}}, nil), two, false},
		{"zero topics", encodeAssignment(3, nil, nil), []topicPartitions{}, false},
		{"negative version", encodeAssignment(-1, two, nil), []topicPartitions{}, true},
		{"truncated in a partition list", full[:len(full)-8], nil, true},
		{"huge topic count", []byte{0, 0, 0x7f, 0xff, 0xff, 0xff}, []topicPartitions{}, true},
		{"one byte", []byte{0}, []topicPartitions{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAssignment(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errBadAssignment) {
				t.Fatalf("err = %v, want errBadAssignment", err)
			}
			if tt.want != nil && !slices.EqualFunc(got, tt.want, func(a, b topicPartitions) bool {
				return a.Topic == b.Topic && slices.Equal(a.Partitions, b.Partitions)
			}) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDecodeAssignmentRoundTrip: whatever a client encodes decodes back.
func TestDecodeAssignmentRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		names := rapid.SliceOfDistinct(rapid.StringMatching(`[a-z._-]{1,20}`), rapid.ID[string]).Draw(t, "topics")
		var tps []topicPartitions
		for _, n := range names {
			ps := rapid.SliceOfDistinct(rapid.IntRange(0, 1000), rapid.ID[int]).Draw(t, "partitions")
			slices.Sort(ps)
			tps = append(tps, topicPartitions{Topic: n, Partitions: append([]int{}, ps...)})
		}
		ud := rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "userdata")
		got, err := decodeAssignment(encodeAssignment(rapid.Int16Range(0, 3).Draw(t, "version"), tps, ud))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		slices.SortFunc(tps, func(a, b topicPartitions) int {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		})
		if len(got) != len(tps) {
			t.Fatalf("got %d topics, want %d", len(got), len(tps))
		}
		for i := range got {
			if got[i].Topic != tps[i].Topic || !slices.Equal(got[i].Partitions, tps[i].Partitions) {
				t.Fatalf("topic %d: got %+v, want %+v", i, got[i], tps[i])
			}
		}
	})
}

// FuzzDecodeAssignment: member assignment bytes come from other clients;
// any input decodes or fails with errBadAssignment, never panics, and
// never yields more partitions than the input could hold.
func FuzzDecodeAssignment(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeAssignment(0, []topicPartitions{{"orders", []int{0, 1, 2}}}, nil))
	f.Add(encodeAssignment(1, []topicPartitions{{"a", []int{5}}, {"b", nil}}, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeAssignment(b)
		if err != nil && !errors.Is(err, errBadAssignment) {
			t.Fatalf("error %v does not wrap errBadAssignment", err)
		}
		n := 0
		for _, tp := range got {
			n += len(tp.Partitions)
		}
		if n > len(b)/4 {
			t.Fatalf("%d partitions from %d bytes", n, len(b))
		}
	})
}

func TestResetTarget(t *testing.T) {
	st := partitionState{start: 10, end: 100, committed: 40, byTime: 55}
	noCommit := partitionState{start: 10, end: 100, committed: -1, byTime: -1}
	tests := []struct {
		name    string
		spec    resetSpec
		p       partitionState
		want    int64
		wantErr error
	}{
		{"earliest", resetSpec{kind: resetEarliest}, st, 10, nil},
		{"latest", resetSpec{kind: resetLatest}, st, 100, nil},
		{"offset inside", resetSpec{kind: resetOffset, n: 42}, st, 42, nil},
		{"offset below the log start is clamped", resetSpec{kind: resetOffset, n: 3}, st, 10, nil},
		{"offset past the end is clamped", resetSpec{kind: resetOffset, n: 1000}, st, 100, nil},
		{"datetime found", resetSpec{kind: resetDatetime}, st, 55, nil},
		{"datetime after every record: the end", resetSpec{kind: resetDatetime}, noCommit, 100, nil},
		{"shift back", resetSpec{kind: resetShift, n: -5}, st, 35, nil},
		{"shift forward past the end", resetSpec{kind: resetShift, n: 500}, st, 100, nil},
		{"shift back past the start", resetSpec{kind: resetShift, n: -500}, st, 10, nil},
		{"shift overflow", resetSpec{kind: resetShift, n: math.MaxInt64}, st, 100, nil},
		{"shift without a commit", resetSpec{kind: resetShift, n: 1}, noCommit, 0, errNoCommittedOffset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.spec.target(tt.p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("target = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestResetTargetInRange: every target lies within the partition's log.
func TestResetTargetInRange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		start := rapid.Int64Range(0, 1<<40).Draw(t, "start")
		end := start + rapid.Int64Range(0, 1<<40).Draw(t, "len")
		p := partitionState{start: start, end: end,
			committed: rapid.Int64Range(-1, 1<<42).Draw(t, "committed"),
			byTime:    rapid.Int64Range(-1, 1<<42).Draw(t, "byTime")}
		s := resetSpec{kind: resetKind(rapid.IntRange(1, 5).Draw(t, "kind")), n: rapid.Int64().Draw(t, "n")}
		got, err := s.target(p)
		if err != nil {
			if s.kind != resetShift || p.committed >= 0 {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if got < start || got > end {
			t.Fatalf("target %d outside [%d, %d]", got, start, end)
		}
	})
}

func TestResetFlagsSpec(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		f       resetFlags
		set     []string
		want    resetKind
		wantErr bool
	}{
		{"none", resetFlags{}, nil, 0, true},
		{"earliest", resetFlags{earliest: true}, nil, resetEarliest, false},
		{"two targets", resetFlags{earliest: true, latest: true}, nil, 0, true},
		{"offset", resetFlags{offset: 5}, []string{"to-offset"}, resetOffset, false},
		{"negative offset", resetFlags{offset: -5}, []string{"to-offset"}, 0, true},
		{"shift", resetFlags{shift: -5}, []string{"shift-by"}, resetShift, false},
		{"datetime RFC 3339", resetFlags{datetime: "2026-11-24T10:00:00Z"}, []string{"to-datetime"}, resetDatetime, false},
		{"datetime relative", resetFlags{datetime: "-1h"}, []string{"to-datetime"}, resetDatetime, false},
		{"datetime garbage", resetFlags{datetime: "yesterday"}, []string{"to-datetime"}, 0, true},
		{"offset and shift", resetFlags{}, []string{"to-offset", "shift-by"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.spec(func(n string) bool { return slices.Contains(tt.set, n) }, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if err == nil && got.kind != tt.want {
				t.Fatalf("kind = %d, want %d", got.kind, tt.want)
			}
		})
	}
}

func TestGroupStartOffset(t *testing.T) {
	for _, s := range []string{"start", "end", "oldest", "newest", "beginning"} {
		if _, err := groupStartOffset(s); err != nil {
			t.Errorf("-o %s: %v", s, err)
		}
	}
	for _, s := range []string{"5", "-5", "@-1h", ""} {
		if _, err := groupStartOffset(s); err == nil {
			t.Errorf("-o %q accepted with a group", s)
		}
	}
}

// BenchmarkDecodeAssignment decodes a member assignment of 10 topics with
// 12 partitions each, as `group describe` does per member.
func BenchmarkDecodeAssignment(b *testing.B) {
	var tps []topicPartitions
	for i := range 10 {
		tps = append(tps, topicPartitions{Topic: "topic-" + string(rune('a'+i)), Partitions: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}})
	}
	in := encodeAssignment(1, tps, []byte("user-data"))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeAssignment(in); err != nil {
			b.Fatal(err)
		}
	}
}
