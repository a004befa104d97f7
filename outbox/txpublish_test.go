package outbox

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// TestSeqsRoundTrip: a position record decodes to the round's seqs,
// sorted, whatever their order and sign.
func TestSeqsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seqs := rapid.SliceOf(rapid.Int64()).Draw(t, "seqs")
		got, err := decodeSeqs(encodeSeqs(seqs))
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(seqs))
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("decoded %v, want %v", got, want)
		}
	})
}

func TestDecodeSeqsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"count beyond the bytes", []byte{0x7f}},
		{"truncated delta", []byte{0x02, 0x02}},
		{"trailing bytes", append(encodeSeqs([]int64{1, 2}), 0)},
		{"unterminated varint", []byte{0x01, 0x80}},
		{"descending", binary.AppendUvarint([]byte{0x02, 0x02}, ^uint64(0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeSeqs(tc.in); !errors.Is(err, ErrBadPosition) {
				t.Fatalf("decodeSeqs(%x) = %v, want ErrBadPosition", tc.in, err)
			}
		})
	}
}

func FuzzDecodeSeqs(f *testing.F) {
	f.Add(encodeSeqs([]int64{3, 1, 2}))
	f.Add([]byte{0x7f})
	f.Add([]byte{0x01, 0x80})
	f.Add(binary.AppendUvarint([]byte{0x02, 0x02}, ^uint64(0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		seqs, err := decodeSeqs(b)
		if err != nil {
			return
		}
		again, err := decodeSeqs(encodeSeqs(seqs))
		if err != nil || !slices.Equal(again, seqs) {
			t.Fatalf("re-encoding %v gave %v (%v)", seqs, again, err)
		}
	})
}

// fakeBroker answers ApiVersions only, listing keys, and closes the
// connection on any other request.
func fakeBroker(t *testing.T, keys ...int16) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	serve := func(c net.Conn) {
		defer c.Close()
		for {
			var size [4]byte
			if _, err := io.ReadFull(c, size[:]); err != nil {
				return
			}
			req := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(c, req); err != nil || len(req) < 8 {
				return
			}
			key, ver := int16(binary.BigEndian.Uint16(req)), int16(binary.BigEndian.Uint16(req[2:]))
			if key != kmsg.ApiVersions.Int16() {
				return
			}
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = min(ver, 3)
			for _, k := range keys {
				v := kmsg.NewApiVersionsResponseApiKey()
				v.ApiKey, v.MaxVersion = k, 3
				resp.ApiKeys = append(resp.ApiKeys, v)
			}
			out := binary.BigEndian.AppendUint32(make([]byte, 4), binary.BigEndian.Uint32(req[4:8]))
			out = resp.AppendTo(out)
			binary.BigEndian.PutUint32(out, uint32(len(out)-4))
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(c) })
		}
	})
	return ln.Addr().String()
}

// TestSupportsTransactions: the relay takes the exactly-once path only when
// the broker's ApiVersions lists EndTxn.
func TestSupportsTransactions(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []int16
		want bool
	}{
		{"with EndTxn", []int16{kmsg.ApiVersions.Int16(), kmsg.Metadata.Int16(), kmsg.EndTxn.Int16()}, true},
		{"without EndTxn", []int16{kmsg.ApiVersions.Int16(), kmsg.Metadata.Int16(), kmsg.Produce.Int16()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SupportsTransactions(context.Background(), []string{fakeBroker(t, tc.keys...)}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("SupportsTransactions = %v, want %v", got, tc.want)
			}
		})
	}
}
