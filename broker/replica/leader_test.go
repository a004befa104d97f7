package replica

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestHighWatermark(t *testing.T) {
	tests := []struct {
		name      string
		isr       []int32
		followers map[int32]int64
		leaderLEO int64
		want      int64
	}{
		{"leader alone", []int32{1}, nil, 42, 42},
		{"follower behind", []int32{1, 2}, map[int32]int64{2: 10}, 42, 10},
		{"follower caught up", []int32{1, 2}, map[int32]int64{2: 42}, 42, 42},
		{"follower never fetched", []int32{1, 2}, nil, 42, 0},
		{"out-of-sync replica ignored", []int32{1, 2}, map[int32]int64{2: 40, 3: 1}, 42, 40},
		{"slowest of two", []int32{1, 2, 3}, map[int32]int64{2: 40, 3: 30}, 42, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newLeaderState(1, 0)
			s.setISR(tc.isr)
			for r, leo := range tc.followers {
				s.followerLEO[r] = leo
			}
			if got := s.highWatermark(tc.leaderLEO); got != tc.want {
				t.Fatalf("highWatermark = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestHighWatermarkModel checks highWatermark against the definition: the
// smallest log end offset over the ISR, the leader counting with its own.
func TestHighWatermarkModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newLeaderState(0, 0)
		isr := rapid.SliceOfDistinct(rapid.Int32Range(0, 5), rapid.ID[int32]).Draw(t, "isr")
		s.setISR(isr)
		leo := map[int32]int64{0: rapid.Int64Range(0, 1000).Draw(t, "leaderLEO")}
		for r := int32(1); r <= 5; r++ {
			if rapid.Bool().Draw(t, "fetched") {
				leo[r] = rapid.Int64Range(0, 1000).Draw(t, "leo")
				s.followerLEO[r] = leo[r]
			}
		}
		want := leo[0]
		for _, r := range s.isr {
			want = min(want, leo[r]) // never fetched: 0
		}
		if got := s.highWatermark(leo[0]); got != want {
			t.Fatalf("highWatermark = %d, want %d (isr %v, leos %v)", got, want, s.isr, leo)
		}
		if !slices.Contains(s.isr, 0) {
			t.Fatal("leader dropped from its own ISR")
		}
	})
}

func TestAcksAllState(t *testing.T) {
	tests := []struct {
		name            string
		last, hw        int64
		isrSize, minISR int
		want            ackState
	}{
		{"not committed", 9, 9, 1, 1, ackWaiting},
		{"committed", 9, 10, 1, 1, ackDone},
		{"committed, enough ISR", 9, 20, 2, 2, ackDone},
		{"committed but ISR too small", 9, 10, 1, 2, ackNotEnoughISR},
		{"waiting regardless of ISR", 9, 5, 1, 2, ackWaiting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := acksAllState(tc.last, tc.hw, tc.isrSize, tc.minISR); got != tc.want {
				t.Fatalf("acksAllState = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseDirName(t *testing.T) {
	tests := []struct {
		in   string
		want TopicPartition
		ok   bool
	}{
		{"orders-0", TopicPartition{"orders", 0}, true},
		{"my-topic-12", TopicPartition{"my-topic", 12}, true},
		{"__consumer_offsets-49", TopicPartition{"__consumer_offsets", 49}, true},
		{"orders", TopicPartition{}, false},
		{"-1", TopicPartition{}, false},
		{"orders-01", TopicPartition{}, false},
		{"orders--1", TopicPartition{"orders-", 1}, true},
		{"orders-x", TopicPartition{}, false},
		{"producer-id-block", TopicPartition{}, false},
		{"orders-99999999999", TopicPartition{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseDirName(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("parseDirName(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestConfigWith(t *testing.T) {
	tests := []struct {
		name    string
		m       map[string]string
		check   func(Config) bool
		wantErr bool
	}{
		{"defaults", nil, func(c Config) bool { return c.MaxMessageBytes == DefaultMaxMessageBytes && c.MinInsyncReplicas == 1 }, false},
		{"max.message.bytes", map[string]string{"max.message.bytes": "100"}, func(c Config) bool { return c.MaxMessageBytes == 100 }, false},
		{"LogAppendTime", map[string]string{"message.timestamp.type": "LogAppendTime"}, func(c Config) bool { return c.TimestampType == LogAppendTime }, false},
		{"min.insync.replicas", map[string]string{"min.insync.replicas": "2"}, func(c Config) bool { return c.MinInsyncReplicas == 2 }, false},
		{"bad timestamp type", map[string]string{"message.timestamp.type": "Now"}, nil, true},
		{"negative max", map[string]string{"max.message.bytes": "-1"}, nil, true},
		{"not a number", map[string]string{"min.insync.replicas": "two"}, nil, true},
		{"unknown key", map[string]string{"no.such.config": "1"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DefaultConfig().With(tc.m)
			if (err != nil) != tc.wantErr {
				t.Fatalf("With(%v) error = %v, want error %v", tc.m, err, tc.wantErr)
			}
			if err == nil && !tc.check(c) {
				t.Fatalf("With(%v) = %+v", tc.m, c)
			}
		})
	}
}
