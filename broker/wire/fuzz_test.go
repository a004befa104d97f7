package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecode checks that any frame either fails to decode or decodes to a
// request that re-encodes and decodes again. Seeds are real kgo and kadm
// requests (the broker's TestClientRequestsDecode -update-seeds) plus the
// empty requests added here, and one whose tag count kmsg v1.15.0 looped
// on for a minute after running out of bytes.
func FuzzDecode(f *testing.F) {
	id := "fuzz"
	for _, key := range []int16{0, 1, 3, 18, 19, 32} {
		req := kmsg.RequestForKey(key)
		for v := int16(0); v <= req.MaxVersion(); v += 3 {
			req.SetVersion(v)
			f.Add(frameOf(req, int32(v), &id))
		}
	}
	f.Add([]byte{ // Metadata v11 ending in a tag count of 2^32-1
		0, 3, 0, 11, 0, 0, 0, 1, 0xff, 0xff, 0,
		0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f,
	})
	f.Fuzz(func(t *testing.T, frame []byte) {
		d, err := Decode(frame, allVersions)
		if err != nil {
			return
		}
		if d.Msg == nil || (!d.Fallback && d.Msg.Key() != d.Key) {
			t.Fatalf("decoded %+v", d)
		}
		// What decodes re-encodes and decodes to the same request.
		again := d.Msg.AppendTo(nil)
		back := kmsg.RequestForKey(d.Msg.Key())
		back.SetVersion(d.Msg.GetVersion())
		if err := back.ReadFrom(again); err != nil {
			t.Fatalf("re-encoded %s v%d does not decode: %v", kmsg.NameForKey(d.Key), d.Msg.GetVersion(), err)
		}
	})
}
