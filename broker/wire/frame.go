package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// DefaultMaxRequestBytes is Kafka's socket.request.max.bytes default: 100 MiB.
const DefaultMaxRequestBytes = 100 << 20

// apiVersionsKey is the one key whose response header is never flexible and
// whose unsupported versions get an answer instead of a closed connection.
const apiVersionsKey = 18

var (
	// ErrFrameTooLarge is returned for a frame whose size prefix exceeds the
	// maximum request size.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformed is returned for a request that cannot be decoded.
	ErrMalformed = errors.New("wire: malformed request")
	// ErrUnknownKey is returned for a request whose API key we do not serve.
	ErrUnknownKey = errors.New("wire: unknown api key")
	// ErrUnsupportedVersion is returned for a request whose version is
	// outside the range we serve for its key.
	ErrUnsupportedVersion = errors.New("wire: unsupported api version")
)

// Header is a decoded request header.
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	// ClientID is the client id; Kafka treats a null one as empty.
	ClientID string
}

// VersionsFunc reports the version range served for key, ok false if the key
// is not served at all.
type VersionsFunc func(key int16) (min, max int16, ok bool)

// ReadFrame reads one size-prefixed frame from r into a new buffer. A size
// above max or below the smallest header returns ErrFrameTooLarge or
// ErrMalformed without allocating the body. Before the body is read, reserve
// is called with its size (for flow control); an error from reserve is
// returned as is.
func ReadFrame(r io.Reader, max int32, reserve func(n int32) error) ([]byte, error) {
	return readFrame(r, max, reserve, func(n int) []byte { return make([]byte, n) }, nil)
}

// Large frames are read in pieces of at most sumPiece bytes, each summed
// (batch.BlockSums) right after it arrives, while it is in the CPU's cache:
// a Produce request's batches are CRC-checked from those sums instead of
// being read again from main memory. Frames below minSummedFrame are
// small enough to stay cached until they are checked.
const (
	minSummedFrame = minPooledFrame
	sumPiece       = 256 << 10
)

// summedFrame reports whether a frame of n bytes is read in pieces and
// summed.
func summedFrame(n int) bool { return n >= minSummedFrame }

// readFrame is ReadFrame with the body's buffer from alloc. A non-nil sums
// is reset to describe the body, summed as it arrives when summedFrame, and
// to describe nothing otherwise.
func readFrame(r io.Reader, max int32, reserve func(n int32) error, alloc func(n int) []byte, sums *batch.BlockSums) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	switch {
	case n < 0 || n > max:
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, uint32(n), max)
	case n < 10: // key, version, correlation id, client id length
		return nil, fmt.Errorf("%w: frame of %d bytes is shorter than a request header", ErrMalformed, n)
	}
	if reserve != nil {
		if err := reserve(n); err != nil {
			return nil, err
		}
	}
	body := alloc(int(n))
	if sums == nil || !summedFrame(int(n)) {
		if sums != nil {
			sums.Reset(nil)
		}
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, frameReadError(n, err)
		}
		return body, nil
	}
	sums.Reset(body)
	for got := 0; got < len(body); {
		m, err := r.Read(body[got:min(got+sumPiece, len(body))])
		got += m
		sums.Filled(got)
		if err != nil && got < len(body) {
			sums.Reset(nil)
			return nil, frameReadError(n, err)
		}
	}
	return body, nil
}

// frameReadError describes a failure to read the body of an n-byte frame.
func frameReadError(n int32, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: read %d-byte frame: %w", n, err)
}

// ParseHeader decodes the fixed part of a request header (key, version,
// correlation id, client id) and returns the bytes after it: the header tag
// buffer, if the version is flexible, and the body.
func ParseHeader(frame []byte) (Header, []byte, error) {
	var h Header
	if len(frame) < 10 {
		return h, nil, fmt.Errorf("%w: %d-byte header", ErrMalformed, len(frame))
	}
	h.Key = int16(binary.BigEndian.Uint16(frame[0:]))
	h.Version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	switch {
	case idLen == -1:
	case idLen < -1 || int(idLen) > len(rest):
		return h, nil, fmt.Errorf("%w: client id length %d", ErrMalformed, idLen)
	default:
		h.ClientID = string(rest[:idLen])
		rest = rest[idLen:]
	}
	return h, rest, nil
}

// SkipTags skips one tag buffer (uvarint count, then per tag a uvarint tag
// number, a uvarint size and the value) and returns what follows it.
func SkipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad tag count", ErrMalformed)
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: bad tag number", ErrMalformed)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: bad tag size", ErrMalformed)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// Decoded is one decoded request.
type Decoded struct {
	Header
	// Msg is the request body, its version set. For an ApiVersions request at
	// a version we do not serve, Msg is an empty v0 ApiVersionsRequest and
	// Fallback is true: the answer is a v0 UNSUPPORTED_VERSION (KIP-511).
	Msg      kmsg.Request
	Fallback bool
}

// Decode decodes a request frame (header and body). Unknown keys and
// unsupported versions are errors wrapping ErrUnknownKey and
// ErrUnsupportedVersion, except ApiVersions, which is never refused for its
// version. Decode never panics on any input.
func Decode(frame []byte, versions VersionsFunc) (d Decoded, err error) {
	h, rest, err := ParseHeader(frame)
	if err != nil {
		return d, err
	}
	d.Header = h
	min, max, ok := versions(h.Key)
	req := kmsg.RequestForKey(h.Key)
	if !ok || req == nil {
		return d, fmt.Errorf("%w: key %d", ErrUnknownKey, h.Key)
	}
	if h.Version < min || h.Version > max {
		if h.Key != apiVersionsKey {
			return d, fmt.Errorf("%w: %s v%d (we serve v%d-v%d)", ErrUnsupportedVersion, kmsg.NameForKey(h.Key), h.Version, min, max)
		}
		// KIP-511: do not parse a body we do not know; answer in v0.
		d.Msg = &kmsg.ApiVersionsRequest{Version: 0}
		d.Fallback = true
		return d, nil
	}
	req.SetVersion(h.Version)
	if req.IsFlexible() {
		if rest, err = SkipTags(rest); err != nil {
			return d, err
		}
	}
	if err := readBody(req, rest); err != nil {
		return d, fmt.Errorf("%w: %s v%d: %w", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	d.Msg = req
	return d, nil
}

// readBody decodes a request body. kmsg's decoders report truncation as an
// error; the recover is a second line of defence so that no input can take
// the broker down.
func readBody(req kmsg.Request, body []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return req.ReadFrom(body)
}

// HeaderFlexible reports whether the response to a request of key at
// version carries the response-header tag byte: flexible versions do, except
// ApiVersions, which always answers with header v0.
func HeaderFlexible(req kmsg.Request) bool {
	return req.IsFlexible() && req.Key() != apiVersionsKey
}

// AppendResponse appends a whole response frame (size, correlation id, tag
// byte if flexible, body) to dst. The response's version must already be set.
func AppendResponse(dst []byte, correlationID int32, flexible bool, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if flexible {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendResponseHeader appends the size prefix and response header for a
// body of bodyLen bytes that the caller writes itself.
func AppendResponseHeader(dst []byte, correlationID int32, flexible bool, bodyLen int64) []byte {
	size := 4 + bodyLen
	if flexible {
		size++
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if flexible {
		dst = append(dst, 0)
	}
	return dst
}
