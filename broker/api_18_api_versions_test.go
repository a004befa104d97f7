package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAPIVersions(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name     string
		version  int16
		wantCode int16
	}{
		{"v0", 0, 0},
		{"v1", 1, 0},
		{"v2", 2, 0},
		{"v3 flexible, header v0", 3, 0},
		{"v4 falls back to v0 (KIP-511)", 4, kerr.UnsupportedVersion.Code},
		{"v5 as kgo sends it falls back to v0", 5, kerr.UnsupportedVersion.Code},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, s)
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = tt.version
			req.ClientSoftwareName, req.ClientSoftwareVersion = "weir-test", "1"
			c.send(req, int32(i+7))
			corr, body, err := c.recv()
			if err != nil {
				t.Fatalf("recv: %v", err)
			}
			if corr != int32(i+7) {
				t.Fatalf("correlation id %d, want %d", corr, i+7)
			}
			// The ApiVersions response header never has a tag byte; the
			// body of a fallback is v0.
			decodeAt := tt.version
			if tt.wantCode != 0 {
				decodeAt = 0
			}
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = decodeAt
			if err := resp.ReadFrom(body); err != nil {
				t.Fatalf("decode v%d body: %v", decodeAt, err)
			}
			if resp.ErrorCode != tt.wantCode {
				t.Fatalf("error code %d, want %d", resp.ErrorCode, tt.wantCode)
			}
			assertAdvertisedIsTable(t, s, resp.ApiKeys)
		})
	}
}

func assertAdvertisedIsTable(t *testing.T, s *Server, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	if len(keys) != len(s.apis) {
		t.Fatalf("advertised %d keys, table has %d", len(keys), len(s.apis))
	}
	for i, k := range keys {
		a := s.apis[i]
		if k.ApiKey != a.key || k.MinVersion != a.min || k.MaxVersion != a.max {
			t.Errorf("key %d advertised %d-%d, table says key %d %d-%d", k.ApiKey, k.MinVersion, k.MaxVersion, a.key, a.min, a.max)
		}
		if kmsg.RequestForKey(a.key) == nil || kmsg.RequestForKey(a.key).MaxVersion() < a.max {
			t.Errorf("key %d: kmsg cannot decode up to v%d", a.key, a.max)
		}
	}
}

// TestEveryAdvertisedVersionIsAnswered sends every API key at every version
// that ApiVersions advertises, with kmsg's default fields, and requires a
// response that decodes at that version: nothing advertised closes the
// connection or goes unanswered. Produce uses acks=1 (acks=0 has no
// response) and Fetch waits 0 ms.
func TestEveryAdvertisedVersionIsAnswered(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	keys := c.roundTrip(av, 0).(*kmsg.ApiVersionsResponse).ApiKeys
	corr, sent := int32(1), 0
	for _, k := range keys {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			ok := t.Run(fmt.Sprintf("%s/v%d", kmsg.NameForKey(k.ApiKey), v), func(t *testing.T) {
				c.t = t // roundTrip fails this subtest if the connection closes or the answer does not decode at v
				req := kmsg.RequestForKey(k.ApiKey)
				if d, ok := req.(interface{ Default() }); ok {
					d.Default()
				}
				req.SetVersion(v)
				switch r := req.(type) {
				case *kmsg.ProduceRequest:
					r.Acks = 1
				case *kmsg.FetchRequest:
					r.MaxWaitMillis = 0
				}
				if resp := c.roundTrip(req, corr); resp.Key() != k.ApiKey || resp.GetVersion() != v {
					t.Fatalf("answered with key %d v%d", resp.Key(), resp.GetVersion())
				}
			})
			if !ok {
				return // the connection is gone: the rest would fail alike
			}
			corr++
			sent++
		}
	}
	if want := advertisedVersions(s); sent != want {
		t.Fatalf("sent %d requests, the table advertises %d versions", sent, want)
	}
}

// advertisedVersions counts the versions of the server's API table.
func advertisedVersions(s *Server) int {
	n := 0
	for _, a := range s.apis {
		n += int(a.max-a.min) + 1
	}
	return n
}
