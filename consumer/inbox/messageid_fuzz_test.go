package inbox_test

import (
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer/inbox"
)

// FuzzMessageID checks MessageID on arbitrary headers: the first non-empty
// `id` header wins, else topic/partition/offset; it never panics.
func FuzzMessageID(f *testing.F) {
	f.Add("orders", 3, int64(42), "id", []byte("evt-1"), "x", []byte("y"))
	f.Add("t", 0, int64(0), "id", []byte{}, "id", []byte("second"))
	f.Fuzz(func(t *testing.T, topic string, partition int, offset int64, k1 string, v1 []byte, k2 string, v2 []byte) {
		m := kafka.Message{Topic: topic, Partition: partition, Offset: offset,
			Headers: []kafka.Header{{Key: k1, Value: v1}, {Key: k2, Value: v2}}}
		want := topic + "/" + strconv.Itoa(partition) + "/" + strconv.FormatInt(offset, 10)
		switch {
		case k1 == "id" && len(v1) > 0:
			want = string(v1)
		case k2 == "id" && len(v2) > 0:
			want = string(v2)
		}
		if got := inbox.MessageID(m); got != want {
			t.Fatalf("MessageID = %q, want %q", got, want)
		}
	})
}
