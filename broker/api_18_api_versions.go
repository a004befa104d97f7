package broker

// Version notes
//
// ApiVersions v0-v3 (advertised 0-3). v1 adds ThrottleMillis; v3 is flexible
// and carries the client's software name and version, which we ignore. The
// response header is always v0, even at v3 (wire handles that). A request at
// a version we do not serve (kgo starts at v5) is answered in v0 with
// UNSUPPORTED_VERSION and our full key list, so the client can retry at a
// version we know (KIP-511). Supported and finalized features (tags) are not
// sent: we advertise no feature flags, so clients do not switch on KIP-890 or
// KIP-848 behaviour.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/broker/wire"
)

func handleAPIVersions(s *Server, r *wire.Request) (wire.Response, error) {
	resp := kmsg.NewPtrApiVersionsResponse()
	if r.Fallback {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	}
	for _, a := range s.apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return wire.Response{Msg: resp}, nil
}
