package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"testing/iotest"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// allVersions serves every key kmsg knows at every version it knows, except
// ApiVersions, served at 0-3 as the broker does.
func allVersions(key int16) (int16, int16, bool) {
	if key == apiVersionsKey {
		return 0, 3, true
	}
	r := kmsg.RequestForKey(key)
	if r == nil {
		return 0, 0, false
	}
	return 0, r.MaxVersion(), true
}

// frameOf encodes req as a client would, without the size prefix.
func frameOf(req kmsg.Request, corr int32, clientID *string) []byte {
	f := kmsg.NewRequestFormatter()
	if clientID != nil {
		f = kmsg.NewRequestFormatter(kmsg.FormatterClientID(*clientID))
	}
	return f.AppendRequest(nil, req, corr)[4:]
}

func TestParseHeader(t *testing.T) {
	hdr := func(key, version int16, corr int32, idLen int16, id string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, uint32(corr))
		b = binary.BigEndian.AppendUint16(b, uint16(idLen))
		return append(b, id...)
	}
	tests := []struct {
		name    string
		in      []byte
		want    Header
		rest    int
		wantErr error
	}{
		{"null client id", hdr(3, 9, 42, -1, ""), Header{Key: 3, Version: 9, CorrelationID: 42}, 0, nil},
		{"empty client id", hdr(3, 9, 42, 0, ""), Header{Key: 3, Version: 9, CorrelationID: 42}, 0, nil},
		{"client id then body", append(hdr(0, 1, -7, 3, "abc"), 1, 2), Header{Key: 0, Version: 1, CorrelationID: -7, ClientID: "abc"}, 2, nil},
		{"client id longer than frame", hdr(3, 0, 1, 10, "abc"), Header{}, 0, ErrMalformed},
		{"negative client id length", hdr(3, 0, 1, -2, ""), Header{}, 0, ErrMalformed},
		{"short", []byte{0, 3, 0}, Header{}, 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rest, err := ParseHeader(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if h != tt.want || len(rest) != tt.rest {
				t.Fatalf("got %+v rest %d, want %+v rest %d", h, len(rest), tt.want, tt.rest)
			}
		})
	}
}

func TestSkipTags(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		rest    int
		wantErr bool
	}{
		{"none", []byte{0, 9}, 1, false},
		{"one tag", []byte{1, 5, 2, 0xaa, 0xbb, 9}, 1, false},
		{"two tags", []byte{2, 0, 0, 1, 1, 0xcc}, 0, false},
		{"size past end", []byte{1, 5, 9, 0}, 0, true},
		{"count missing", []byte{}, 0, true},
		{"bad varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, err := SkipTags(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && len(rest) != tt.rest {
				t.Fatalf("rest %d, want %d", len(rest), tt.rest)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	id := "client"
	meta := func(v int16) kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		r.Version = v
		r.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
		return r
	}
	apiv := func(v int16) kmsg.Request {
		r := kmsg.NewPtrApiVersionsRequest()
		r.Version = v
		r.ClientSoftwareName, r.ClientSoftwareVersion = "x", "1"
		return r
	}
	only := func(key, min, max int16) VersionsFunc {
		return func(k int16) (int16, int16, bool) { return min, max, k == key || k == apiVersionsKey }
	}
	tests := []struct {
		name     string
		frame    []byte
		versions VersionsFunc
		wantErr  error
		fallback bool
	}{
		{"metadata v0", frameOf(meta(0), 1, &id), allVersions, nil, false},
		{"metadata v8 not flexible", frameOf(meta(8), 1, &id), allVersions, nil, false},
		{"metadata v9 flexible header", frameOf(meta(9), 1, &id), allVersions, nil, false},
		{"metadata v12 null client id", frameOf(meta(12), 1, nil), allVersions, nil, false},
		{"api versions v3", frameOf(apiv(3), 1, &id), allVersions, nil, false},
		{"api versions v4 falls back", frameOf(apiv(4), 1, &id), allVersions, nil, true},
		{"api versions v5 falls back", frameOf(apiv(5), 1, &id), allVersions, nil, true},
		{"unsupported version", frameOf(meta(9), 1, &id), only(3, 0, 8), ErrUnsupportedVersion, false},
		{"unknown key", frameOf(meta(1), 1, &id), only(0, 0, 9), ErrUnknownKey, false},
		{"key kmsg does not know", append([]byte{0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, 0), allVersions, ErrUnknownKey, false},
		{"truncated body", frameOf(meta(4), 1, &id)[:14], allVersions, ErrMalformed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode(tt.frame, tt.versions)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if d.Fallback != tt.fallback {
				t.Fatalf("fallback %v, want %v", d.Fallback, tt.fallback)
			}
			if d.CorrelationID != 1 {
				t.Fatalf("correlation id %d", d.CorrelationID)
			}
			if d.Fallback && d.Msg.GetVersion() != 0 {
				t.Fatalf("fallback request at v%d, want v0", d.Msg.GetVersion())
			}
			if !d.Fallback && d.Msg.GetVersion() != d.Version {
				t.Fatalf("body at v%d, header says v%d", d.Msg.GetVersion(), d.Version)
			}
		})
	}
}

// TestResponseHeaderTagByte pins the response-header rules: a tag byte
// after the correlation id for flexible versions, never for ApiVersions.
func TestResponseHeaderTagByte(t *testing.T) {
	tests := []struct {
		key, version int16
		want         bool
	}{
		{3, 8, false},
		{3, 9, true},
		{0, 8, false},
		{0, 9, true},
		{1, 11, false},
		{1, 12, true},
		{18, 0, false},
		{18, 2, false},
		{18, 3, false},
		{18, 4, false},
		{19, 4, false},
		{19, 5, true},
		{32, 4, true},
	}
	for _, tt := range tests {
		t.Run(kmsg.NameForKey(tt.key), func(t *testing.T) {
			req := kmsg.RequestForKey(tt.key)
			req.SetVersion(tt.version)
			if got := HeaderFlexible(req); got != tt.want {
				t.Fatalf("%s v%d: tag byte %v, want %v", kmsg.NameForKey(tt.key), tt.version, got, tt.want)
			}
			resp := req.ResponseKind()
			b := AppendResponse(nil, 77, HeaderFlexible(req), resp)
			if int(binary.BigEndian.Uint32(b)) != len(b)-4 || binary.BigEndian.Uint32(b[4:]) != 77 {
				t.Fatalf("bad size or correlation id in % x", b[:8])
			}
			body := b[8:]
			if tt.want {
				if body[0] != 0 {
					t.Fatalf("tag byte %d, want 0", body[0])
				}
				body = body[1:]
			}
			back := req.ResponseKind()
			if err := back.ReadFrom(body); err != nil {
				t.Fatalf("response does not decode after the header: %v", err)
			}
			hb := AppendResponseHeader(nil, 77, tt.want, int64(len(body)))
			if !bytes.Equal(hb, b[:len(b)-len(body)]) {
				t.Fatalf("AppendResponseHeader % x, AppendResponse header % x", hb, b[:len(b)-len(body)])
			}
		})
	}
}

func TestReadFrame(t *testing.T) {
	sized := func(n uint32, body []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, n), body...) }
	tests := []struct {
		name     string
		in       []byte
		reserved bool
		wantErr  error
	}{
		{"ok", sized(10, make([]byte, 10)), true, nil},
		{"oversized: no reserve, no allocation", sized(1<<30, nil), false, ErrFrameTooLarge},
		{"negative size", sized(0xffffffff, nil), false, ErrFrameTooLarge},
		{"shorter than a header", sized(3, []byte{1, 2, 3}), false, ErrMalformed},
		{"truncated", sized(20, make([]byte, 5)), true, io.ErrUnexpectedEOF},
		{"no size", []byte{0, 0}, false, io.ErrUnexpectedEOF},
		{"eof", nil, false, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reserved := false
			_, err := ReadFrame(bytes.NewReader(tt.in), 1<<20, func(int32) error { reserved = true; return nil })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if reserved != tt.reserved {
				t.Fatalf("reserve called %v, want %v", reserved, tt.reserved)
			}
		})
	}
}

// TestReadFrameSums: a large frame read in pieces of any size comes with
// block sums that give the CRC-32C of any part of it; a small one with sums
// describing nothing; a frame cut short with no sums left over.
func TestReadFrameSums(t *testing.T) {
	body := make([]byte, minSummedFrame+3*sumPiece+77)
	for i := range body {
		body[i] = byte(i * 7 / 3)
	}
	in := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for _, r := range map[string]io.Reader{
		"whole":      bytes.NewReader(in),
		"half reads": iotest.HalfReader(bytes.NewReader(in)),
		"odd pieces": &pieceReader{r: bytes.NewReader(in), n: 5000},
	} {
		var sums batch.BlockSums
		got, err := readFrame(r, 1<<30, nil, func(n int) []byte { return make([]byte, n) }, &sums)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("readFrame: %v (equal %t)", err, bytes.Equal(got, body))
		}
		for _, part := range [][2]int{{0, len(got)}, {9, len(got) - 9}, {sumPiece - 5, 2*sumPiece + 5}, {100, 200}} {
			crc, ok := sums.Checksum(got[part[0]:part[1]])
			if want := crc32.Checksum(got[part[0]:part[1]], castagnoli); !ok || crc != want {
				t.Errorf("Checksum of bytes %d-%d = %08x, %t; want %08x", part[0], part[1], crc, ok, want)
			}
		}
	}

	var sums batch.BlockSums
	small := append(binary.BigEndian.AppendUint32(nil, 100), make([]byte, 100)...)
	got, err := readFrame(bytes.NewReader(small), 1<<30, nil, func(n int) []byte { return make([]byte, n) }, &sums)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sums.Checksum(got); ok {
		t.Error("a small frame came with sums")
	}

	sums.Reset(body)
	if _, err := readFrame(bytes.NewReader(in[:len(in)-10]), 1<<30, nil, func(n int) []byte { return make([]byte, n) }, &sums); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: err %v", err)
	}
	if _, ok := sums.Checksum(body); ok {
		t.Error("a truncated frame left sums behind")
	}
}

// pieceReader returns at most n bytes per Read.
type pieceReader struct {
	r io.Reader
	n int
}

func (p *pieceReader) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.n)]) }
