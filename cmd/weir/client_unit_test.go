package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"pgregory.net/rapid"
)

func TestParseStart(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	offs := partitionOffsets{start: 10, end: 20}
	tests := []struct {
		in     string
		byTime int64
		want   int64
		bad    bool
	}{
		{in: "start", want: 10},
		{in: "beginning", want: 10},
		{in: "end", want: 20},
		{in: "15", want: 15},
		{in: "0", want: 10},  // below the log start: clamped
		{in: "99", want: 20}, // past the end: clamped
		{in: "-3", want: 17},
		{in: "-30", want: 10},
		{in: "@1700000000000", byTime: 12, want: 12},
		{in: "@2026-11-24T11:00:00Z", byTime: 14, want: 14},
		{in: "@-1h", byTime: -1, want: 20}, // no record at or after: the end
		{in: "@+1h", bad: true},
		{in: "@soon", bad: true},
		{in: "yesterday", bad: true},
		{in: "", bad: true},
		{in: "1.5", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := parseStart(tc.in, now)
			if tc.bad {
				if err == nil {
					t.Fatalf("parseStart(%q) = %+v, want an error", tc.in, s)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStart(%q): %v", tc.in, err)
			}
			if got := s.resolve(offs, tc.byTime); got != tc.want {
				t.Fatalf("parseStart(%q).resolve = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
	s, _ := parseStart("@-1h", now)
	if !s.at.Equal(now.Add(-time.Hour)) {
		t.Fatalf("@-1h anchored at %v", s.at)
	}
}

func TestParseAcksAndCompression(t *testing.T) {
	acks := map[string]kafka.RequiredAcks{"all": kafka.RequireAll, "-1": kafka.RequireAll, "1": kafka.RequireOne, "leader": kafka.RequireOne, "0": kafka.RequireNone}
	for in, want := range acks {
		if got, err := parseAcks(in); err != nil || got != want {
			t.Errorf("parseAcks(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseAcks("2"); !errors.As(err, new(usageError)) {
		t.Errorf("parseAcks(2): %v, want a usage error", err)
	}
	codecs := map[string]kafka.Compression{"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "ZSTD": kafka.Zstd}
	for in, want := range codecs {
		if got, err := parseCompression(in); err != nil || got != want {
			t.Errorf("parseCompression(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseCompression("brotli"); !errors.As(err, new(usageError)) {
		t.Errorf("parseCompression(brotli): %v, want a usage error", err)
	}
}

func TestOutputFormatSet(t *testing.T) {
	for _, in := range []string{"text", "wide", "json", "YAML"} {
		var f outputFormat
		if err := f.Set(in); err != nil || string(f) != strings.ToLower(in) {
			t.Errorf("Set(%q) = %q, %v", in, f, err)
		}
	}
	var f outputFormat
	if err := f.Set("xml"); err == nil {
		t.Error("Set(xml) accepted")
	}
}

func TestTableAligns(t *testing.T) {
	tb := newTable("name", "partitions")
	tb.row("a", 1)
	tb.row("longer-name", 12)
	var buf bytes.Buffer
	if err := tb.write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "NAME         PARTITIONS\na            1\nlonger-name  12\n"
	if buf.String() != want {
		t.Fatalf("table:\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestRecordFromLine(t *testing.T) {
	hs := []kafka.Header{{Key: "h", Value: []byte("v")}}
	tests := []struct {
		name       string
		line       string
		delim      string
		tombstones bool
		key, value []byte // nil: null
	}{
		{"plain", "hello", "", false, nil, []byte("hello")},
		{"no delimiter configured", "a:b", "", false, nil, []byte("a:b")},
		{"key and value", "a:b", ":", false, []byte("a"), []byte("b")},
		{"first delimiter only", "a:b:c", ":", false, []byte("a"), []byte("b:c")},
		{"multi-byte delimiter", "a::b", "::", false, []byte("a"), []byte("b")},
		{"delimiter missing", "ab", ":", false, nil, []byte("ab")},
		{"empty value", "a:", ":", false, []byte("a"), []byte{}},
		{"tombstone", "a:", ":", true, []byte("a"), nil},
		{"empty key", ":v", ":", false, []byte{}, []byte("v")},
		{"empty line", "", "", false, nil, []byte{}},
		{"empty line tombstone", "", "", true, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := recordFromLine([]byte(tc.line), &produceFlags{keyDelim: tc.delim, tombstones: tc.tombstones}, hs)
			if (m.Key == nil) != (tc.key == nil) || !bytes.Equal(m.Key, tc.key) {
				t.Errorf("key %q (nil %t), want %q (nil %t)", m.Key, m.Key == nil, tc.key, tc.key == nil)
			}
			if (m.Value == nil) != (tc.value == nil) || !bytes.Equal(m.Value, tc.value) {
				t.Errorf("value %q (nil %t), want %q (nil %t)", m.Value, m.Value == nil, tc.value, tc.value == nil)
			}
			if len(m.Headers) != 1 {
				t.Errorf("headers %v", m.Headers)
			}
		})
	}
}

// TestRecordFromLineRoundTrip: key + delimiter + value gives back the line
// whenever the line contains the delimiter.
func TestRecordFromLineRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		delim := rapid.StringMatching(`[:|\t]{1,2}`).Draw(t, "delim")
		line := rapid.String().Draw(t, "line")
		m := recordFromLine([]byte(line), &produceFlags{keyDelim: delim}, nil)
		if !strings.Contains(line, delim) {
			if m.Key != nil || string(m.Value) != line {
				t.Fatalf("no delimiter: key %q value %q", m.Key, m.Value)
			}
			return
		}
		if got := string(m.Key) + delim + string(m.Value); got != line {
			t.Fatalf("round trip %q, want %q", got, line)
		}
		if strings.Contains(string(m.Key), delim) {
			t.Fatalf("key %q contains the delimiter", m.Key)
		}
	})
}

// FuzzParseStart: any -o value either fails to parse or resolves to an
// offset inside the partition's range; never a panic.
func FuzzParseStart(f *testing.F) {
	for _, s := range []string{"start", "end", "5", "-5", "@0", "@-1h", "@2026-11-24T11:00:00Z", "@", "-", "9223372036854775807", "-9223372036854775808"} {
		f.Add(s, int64(3), int64(9), int64(4))
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in string, start, end, byTime int64) {
		if start < 0 || end < start {
			return
		}
		s, err := parseStart(in, now)
		if err != nil {
			return
		}
		if got := s.resolve(partitionOffsets{start: start, end: end}, byTime); got < start || got > end {
			t.Fatalf("parseStart(%q).resolve([%d,%d], %d) = %d: outside the range", in, start, end, byTime, got)
		}
	})
}

// FuzzRecordFromLine: splitting never panics and loses no byte.
func FuzzRecordFromLine(f *testing.F) {
	f.Add([]byte("k:v"), ":", false)
	f.Add([]byte(":"), ":", true)
	f.Add([]byte("\xff\x00::x"), "::", false)
	f.Fuzz(func(t *testing.T, line []byte, delim string, tombstones bool) {
		m := recordFromLine(line, &produceFlags{keyDelim: delim, tombstones: tombstones}, nil)
		n := len(m.Key) + len(m.Value)
		if m.Key != nil {
			n += len(delim)
		}
		if n != len(line) {
			t.Fatalf("key %q + value %q do not cover line %q", m.Key, m.Value, line)
		}
	})
}

func BenchmarkRecordWriter(b *testing.B) {
	m := kafka.Message{Topic: "orders", Partition: 3, Offset: 123456, Time: time.Now(), Key: []byte("customer-42"),
		Value: bytes.Repeat([]byte("x"), 100), Headers: []kafka.Header{{Key: "source", Value: []byte("bench")}}}
	for _, format := range []string{"text", "wide", "json"} {
		b.Run(format, func(b *testing.B) {
			var buf bytes.Buffer
			rw, err := newRecordWriter(&buf, format, nil, "text")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(m.Key) + len(m.Value)))
			for b.Loop() {
				buf.Reset()
				if err := rw.write(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgressBar(&buf, 100); p.on {
		t.Fatal("progress bar drawn on a non-terminal writer")
	}
	tests := []struct {
		done, total, records int64
		want                 string
	}{
		{0, 100, 0, "\r[                              ]   0%  0 records"},
		{50, 100, 7, "\r[===============               ]  50%  7 records"},
		{150, 100, 9, "\r[==============================] 100%  9 records"},
	}
	for _, tc := range tests {
		buf.Reset()
		p := &progressBar{w: &buf, total: tc.total, on: true}
		p.update(tc.done, tc.records)
		if buf.String() != tc.want {
			t.Errorf("update(%d/%d) drew %q, want %q", tc.done, tc.total, buf.String(), tc.want)
		}
		buf.Reset()
		p.update(tc.done, tc.records) // within 100ms: not redrawn
		if buf.Len() != 0 {
			t.Errorf("redrawn at once: %q", buf.String())
		}
	}
}

func TestRecordWriterEncodings(t *testing.T) {
	m := kafka.Message{Topic: "t", Partition: 1, Offset: 7, Time: time.UnixMilli(1700000000000),
		Key: []byte{0xff, 0x00}, Value: []byte("hi"), Headers: []kafka.Header{{Key: "h", Value: []byte{0x80}}}}
	tests := []struct {
		format, encoding string
		fields           []string
		want             string
	}{
		{"text", "text", nil, "hi\n"},
		{"text", "hex", []string{"key", "value", "headers"}, "ff00\t6869\th=80\n"},
		{"text", "base64", []string{"key"}, "/wA=\n"},
		{"wide", "hex", nil, "t\t1\t7\t2023-11-14T22:13:20Z\tff00\th=80\t6869\n"},
		{"json", "base64", []string{"offset", "key", "value"}, `{"offset":7,"key":"/wA=","value":"aGk="}` + "\n"},
		{"json", "text", []string{"value", "partition"}, `{"partition":1,"value":"hi"}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.format+"-"+tc.encoding, func(t *testing.T) {
			var buf bytes.Buffer
			rw, err := newRecordWriter(&buf, tc.format, tc.fields, tc.encoding)
			if err != nil {
				t.Fatal(err)
			}
			if err := rw.write(m); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Fatalf("got %q, want %q", buf.String(), tc.want)
			}
		})
	}
	if _, err := newRecordWriter(io.Discard, "text", nil, "rot13"); !errors.As(err, new(usageError)) {
		t.Fatalf("unknown encoding: %v, want a usage error", err)
	}
}
