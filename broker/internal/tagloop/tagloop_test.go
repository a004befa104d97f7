package tagloop

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// marker is an unknown tag's value that locates a tag buffer in an encoding.
var marker = []byte("MARK")

// fetchV12 is a flexible Fetch as consumers send it: ReplicaID, SessionEpoch
// and LogStartOffset of -1 put long uvarint-looking runs in its body. With
// tagged, the partition carries an unknown tag holding marker.
func fetchV12(tagged bool) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.SessionEpoch = 12, -1, -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, 50<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.LogStartOffset, rp.PartitionMaxBytes = 7, -1, 1<<20
	if tagged {
		rp.UnknownTags.Set(0x7f, marker)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// withCount replaces the tag count before marker's tag (count 1, key 0x7f,
// size 4) with the 5-byte uvarint count.
func withCount(t *testing.T, body []byte, count uint32) []byte {
	t.Helper()
	i := bytes.Index(body, marker) - 3
	if i < 0 || body[i] != 1 {
		t.Fatalf("no marker tag in % x", body)
	}
	count5 := []byte{byte(count) | 0x80, byte(count>>7) | 0x80, byte(count>>14) | 0x80, byte(count>>21) | 0x80, byte(count >> 28)}
	return append(append(bytes.Clone(body[:i]), count5...), body[i+1:]...)
}

func TestHazard(t *testing.T) {
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.Version = 12
	meta := metadata.AppendTo(nil) // ends with the top-level tag count, 0
	fetch := fetchV12(false).AppendTo(nil)
	tagged := fetchV12(true).AppendTo(nil)
	fetch11 := fetchV12(false)
	fetch11.Version = 11
	tests := []struct {
		name    string
		key     int16
		version int16
		body    []byte
		want    bool
	}{
		{"top-level tag count 2^32-1 at the end", 3, 12, append(meta[:len(meta)-1:len(meta)-1], 0xff, 0xff, 0xff, 0xff, 0x0f), true},
		{"nested tag count 2^31 before a few bytes", 1, 12, withCount(t, tagged, 1<<31), true},
		{"nested tag count 2^16", 1, 12, withCount(t, tagged, 1<<16), true},
		{"tag count no larger than the bytes after it", 1, 12, withCount(t, tagged, 1), false},
		{"-1 fields of a real fetch", 1, 12, fetch, false},
		{"real fetch with a tag", 1, 12, tagged, false},
		{"version without tags", 1, 11, append(fetch11.AppendTo(nil), 0xff, 0xff, 0xff, 0xff, 0x0f), false},
		{"key kmsg does not know", 999, 0, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, false},
		{"empty body", 3, 12, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hazard(tc.key, tc.version, tc.body); got != tc.want {
				t.Fatalf("Hazard(%d, %d, % x) = %v, want %v", tc.key, tc.version, tc.body, got, tc.want)
			}
		})
	}
}

// TestHazardPassesClientRequests: no request that kgo and kadm really sent
// (the two fuzz corpora) is skipped, though many hold -1 fields.
func TestHazardPassesClientRequests(t *testing.T) {
	dirs := []string{"../../testdata/fuzz/FuzzRequest", "../../wire/testdata/fuzz/FuzzDecode"}
	n := 0
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no seeds in %s: %v", dir, err)
		}
		for _, name := range files {
			key, version, body := seedBody(t, name)
			if Hazard(key, version, body) {
				t.Errorf("%s (%s v%d) flagged", name, kmsg.NameForKey(key), version)
			}
			n++
		}
	}
	t.Logf("%d client requests pass", n)
}

// seedBody reads a corpus file holding one request frame and returns its
// key, version and body (after the header and its tag buffer).
func seedBody(t *testing.T, name string) (int16, int16, []byte) {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a []byte corpus entry", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil || len(s) < 10 {
		t.Fatalf("%s: %v", name, err)
	}
	f := []byte(s)
	key, version := int16(binary.BigEndian.Uint16(f)), int16(binary.BigEndian.Uint16(f[2:]))
	body := f[10+max(int(int16(binary.BigEndian.Uint16(f[8:]))), 0):]
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		if len(body) == 0 || body[0] != 0 {
			t.Fatalf("%s: header tags", name)
		}
		body = body[1:]
	}
	if err := req.ReadFrom(body); err != nil {
		t.Fatalf("%s: a client request does not decode: %v", name, err)
	}
	return key, version, body
}
