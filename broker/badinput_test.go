package broker

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// TestBadInputClosesOnlyThatConnection sends what no client should to a
// real server: each closes that one connection (counted in
// weir_connections_closed_on_error_total) with exactly one log line, leaves
// a topic's files byte for byte as they were, and another connection keeps
// being served.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	logs := &lineLog{}
	s := startServer(t, func(c *Config) { c.MaxRequestBytes = 1 << 20; c.Logger = slog.New(logs) })
	frame := func(req kmsg.Request) []byte { return kmsg.NewRequestFormatter().AppendRequest(nil, req, 5) }
	sized := func(n uint32, body []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, n), body...) }
	unknownKey := kmsg.NewPtrConsumerGroupHeartbeatRequest() // KIP-848: not advertised
	meta12 := kmsg.NewPtrMetadataRequest()
	meta12.Version = 12 // above the advertised 11
	produce2 := kmsg.NewPtrProduceRequest()
	produce2.Version = 9
	tests := []struct {
		name string
		in   []byte
	}{
		{"oversized frame", sized(64<<20, []byte{0, 3})},
		{"garbage", []byte("\x00\x00\x00\x0cnot a kafka request at all")},
		{"truncated header", sized(10, []byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0x7f})},
		{"unknown api key", frame(unknownKey)},
		{"key beyond every table", sized(10, []byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff})},
		{"unsupported version", frame(meta12)},
		{"produce body truncated", sized(16, frame(produce2)[4:20])},
		{"huge tag count", sized(uint32(len(hugeTagCountFrame)), hugeTagCountFrame)},
	}
	good := dialRaw(t, s)
	createTopicRaw(t, good, "kept", 1, nil)
	if got := produceRaw(t, good, 9, -1, "kept", 0, nowBatch("k", 5, batch.Options{})); got.ErrorCode != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	kept := topicFiles(t, s.cfg.DataDir, "kept")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counterValue(t, s.metrics.closedBad)
			lines := logs.count()
			bad := dialRaw(t, s)
			bad.writeRaw(tt.in)
			bad.expectClosed()
			if got := counterValue(t, s.metrics.closedBad); got != before+1 {
				t.Fatalf("closed-on-error counter %v, want %v", got, before+1)
			}
			// The close is logged before the socket closes.
			if got := logs.since(lines); len(got) != 1 {
				t.Fatalf("logged %q, want exactly one line", got)
			}
			if got := topicFiles(t, s.cfg.DataDir, "kept"); !maps.Equal(got, kept) {
				t.Fatalf("topic files changed: %v, were %v", got, kept)
			}
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 3
			if resp := good.roundTrip(req, int32(i)).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("other connection: error %d", resp.ErrorCode)
			}
		})
	}
}

// hugeTagCountFrame is a Metadata v11 request (flexible, advertised) whose
// body ends in a tag count of 2^32-1 with no tags after it. kmsg v1.15.0
// kept counting down after its reader ran dry: a minute of CPU here.
var hugeTagCountFrame = []byte{
	0, 3, 0, 11, 0, 0, 0, 1, 0xff, 0xff, 0, // header v2: key, version, correlation, null client id, no tags
	0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, // null topics, auto-create, no authorized ops, tag count
}

// topicFiles returns the SHA-256 of every file in the partition directories
// of topic under dataDir, by path.
func topicFiles(t *testing.T, dataDir, topic string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(filepath.Base(filepath.Dir(path)), topic+"-") {
			return err
		}
		b, err := os.ReadFile(path)
		sums[path] = fmt.Sprintf("%x", sha256.Sum256(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) == 0 {
		t.Fatalf("no files of topic %s under %s", topic, dataDir)
	}
	return sums
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
