package compat

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestKcat round-trips messages with kcat (librdkafka 2.0.2 in Debian
// bookworm) once per compression codec: kcat -z produces, kcat and kgo read
// back, and the codec is checked twice: in the batch attributes kgo
// receives, and (once the broker has shut down cleanly) in the batch
// headers of the segment files on disk. librdkafka 2.0.2 compresses gzip,
// snappy and lz4 only if the broker advertises Produce v0, so a broker that
// does not would fail the codec check here.
func TestKcat(t *testing.T) {
	kcat := requireCommand(t, "kcat", "kcat")
	b := startBroker(t)
	topics := map[string]string{}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		topic := topicName("kcat-" + codec)
		topics[codec] = topic
		t.Run(codec, func(t *testing.T) {
			createTopic(t, b.Addr(), topic, partitions)
			want := kcatMessages(codec, messages)
			for p := range int32(partitions) {
				var in bytes.Buffer
				for _, r := range want {
					if r.Partition == p {
						fmt.Fprintf(&in, "%s:%s\n", r.Key, r.Value)
					}
				}
				run(t, opTimeout, in.Bytes(), kcat, "-P", "-b", b.Addr(), "-t", topic,
					"-p", strconv.Itoa(int(p)), "-K", ":", "-z", codec,
					"-H", "client=kcat", "-H", "codec="+codec)
			}
			checkEndOffsets(t, b.Addr(), topic, messages)

			got := consumeKgo(t, b.Addr(), topic, partitions, messages)
			verify(t, "kgo after kcat -P", got, want)
			checkReceivedCodec(t, got, codecIDs[codec])

			got = nil
			for p := range int32(partitions) {
				got = append(got, consumeKcat(t, kcat, b.Addr(), topic, p)...)
			}
			verify(t, "kcat -C", got, want)
		})
	}
	if b.External() {
		return // the batches' codecs were checked on the wire
	}
	checkNoProtocolErrors(t, b)
	if err := b.Stop(); err != nil {
		t.Fatalf("stop broker: %v", err)
	}
	for codec, topic := range topics {
		t.Run("stored/"+codec, func(t *testing.T) {
			checkStored(t, b.DataDir(), topic, codecIDs[codec], messages)
		})
	}
}

// checkReceivedCodec checks the codec of the batches kgo received: all
// want, except at most smallUncompressed records per partition that may
// come uncompressed (see smallUncompressed).
func checkReceivedCodec(t *testing.T, got []record, want int8) {
	t.Helper()
	plain := map[int32]int{}
	for _, r := range got {
		if r.Codec == want {
			continue
		}
		if r.Codec == 0 {
			if plain[r.Partition]++; plain[r.Partition] <= smallUncompressed {
				continue
			}
		}
		t.Fatalf("kgo received %v in a batch with codec %d, want %d; "+
			"librdkafka 2.0.2 sends gzip, snappy and lz4 uncompressed unless the broker advertises Produce v0, "+
			"and lz4 also needs FindCoordinator v0 advertised", r, r.Codec, want)
	}
}

// kcatMessages are message() with the fixed headers kcat -H sets.
func kcatMessages(codec string, n int) []record {
	recs := messagesFor("kcat-"+codec, n)
	for i := range recs {
		recs[i].Headers = []header{{"client", "kcat"}, {"codec", codec}}
	}
	return recs
}

// consumeKcat reads partition p of topic from the beginning to its end
// with kcat -C -e, which needs the broker's answer at the end of the log
// (an empty fetch) to be well-formed.
func consumeKcat(t *testing.T, kcat, addr, topic string, p int32) []record {
	t.Helper()
	out := run(t, consumeTimeout, nil, kcat, "-C", "-e", "-b", addr, "-t", topic,
		"-p", strconv.Itoa(int(p)), "-o", "beginning",
		"-f", `%p\t%o\t%k\t%s\t%h\n`)
	return parseKcat(t, out)
}

// parseKcat reads the records printed by kcat -f '%p\t%o\t%k\t%s\t%h\n'.
func parseKcat(t *testing.T, out []byte) []record {
	t.Helper()
	var recs []record
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 5 {
			t.Fatalf("kcat -C: malformed line %q", line)
		}
		part, err1 := strconv.ParseInt(f[0], 10, 32)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kcat -C: malformed line %q", line)
		}
		r := record{Partition: int32(part), Offset: off, Key: f[2], Value: f[3]}
		if f[4] != "" {
			for kv := range strings.SplitSeq(f[4], ",") {
				k, v, _ := strings.Cut(kv, "=")
				r.Headers = append(r.Headers, header{k, v})
			}
		}
		recs = append(recs, r)
	}
	return recs
}
