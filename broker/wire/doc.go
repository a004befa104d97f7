// Package wire speaks the Kafka protocol's framing on one TCP connection:
// size-prefixed frames, request headers, response headers, and the ordered
// per-connection read and write loops. Request and response bodies are
// encoded and decoded with franz-go's kmsg; this package knows nothing of
// topics or partitions.
//
// # Frames
//
// Every request and response is one frame:
//
//	| Size int32 (big endian, bytes that follow) | Body (Size bytes) |
//
// A request frame larger than the configured maximum
// (socket.request.max.bytes, 100 MiB by default) closes the connection
// before any of it is allocated.
//
// # Request header
//
//	| ApiKey int16 | ApiVersion int16 | CorrelationId int32 | ClientId nullable string (int16 length) | [tag buffer] | request body |
//
// The client id is never a compact string, not even in the flexible header
// (v2); the tag buffer is present only when the request version is flexible.
//
// # Response header
//
//	| CorrelationId int32 | [tag buffer: one 0 byte] | response body |
//
// The tag byte is written when the request version is flexible, except for
// ApiVersions, whose response always uses header v0 so that a client that
// does not yet know our versions can parse it (KIP-511).
//
// # Ordering and flow control
//
// Each connection has a read goroutine and a write goroutine. Requests are
// decoded and dispatched in arrival order on the read goroutine; a handler
// may answer at once or later (a request parked in a purgatory answers from
// whichever goroutine completes it). The write goroutine sends responses in
// request order. The bytes of requests in flight (read but not yet answered)
// are bounded per connection and across the server by a [Budget]; when the
// budget is spent the read loop stops reading, and TCP pushes back on the
// client.
package wire
