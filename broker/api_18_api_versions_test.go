package broker

import (
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
