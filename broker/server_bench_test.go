package broker

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkRequestRoundTrip measures one request and its response on one
// loopback connection, against this server and, as the baseline in the same
// run, franz-go's kfake: ApiVersions (dispatch and framing only), Metadata
// for 10 topics of 4 partitions, and 16 pipelined Metadata requests (the
// ordered write loop batching responses).
func BenchmarkRequestRoundTrip(b *testing.B) {
	s := startServer(b, func(c *Config) { c.Logger = nil })
	ref, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	var topics []kmsg.MetadataRequestTopic
	for i := range 10 {
		name := "bench-" + string(rune('a'+i))
		if _, err := s.createTopic(topicSpec{name: name, partitions: 4, replicationFactor: 1}, false); err != nil {
			b.Fatal(err)
		}
		create := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, 4, 1
		create.Topics = append(create.Topics, ct)
		if _, err := roundTripTo(b, ref.ListenAddrs()[0], create); err != nil {
			b.Fatal(err)
		}
		topics = append(topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(name)})
	}
	apiVersions := kmsg.NewPtrApiVersionsRequest()
	apiVersions.Version = 3
	apiVersions.ClientSoftwareName, apiVersions.ClientSoftwareVersion = "bench", "1"
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 11
	meta.Topics = topics
	servers := []struct{ name, addr string }{{"weir", s.Addr().String()}, {"kfake", ref.ListenAddrs()[0]}}
	reqs := []struct {
		name     string
		req      kmsg.Request
		pipeline int
	}{{"ApiVersions", apiVersions, 1}, {"Metadata", meta, 1}, {"Metadata16Pipelined", meta, 16}}
	for _, rq := range reqs {
		for _, srv := range servers {
			b.Run(rq.name+"/"+srv.name, func(b *testing.B) {
				nc, err := net.Dial("tcp", srv.addr)
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				var frames []byte
				for i := range rq.pipeline {
					// AppendRequest writes its size prefix at dst[0]: encode each
					// frame on its own, then concatenate.
					frames = append(frames, kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, rq.req, int32(i))...)
				}
				buf := make([]byte, 64<<10)
				b.SetBytes(int64(len(frames)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := nc.Write(frames); err != nil {
						b.Fatal(err)
					}
					for range rq.pipeline {
						if err := readResponse(nc, buf); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

func readResponse(nc net.Conn, buf []byte) error {
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n > len(buf) {
		buf = make([]byte, n)
	}
	_, err := io.ReadFull(nc, buf[:n])
	return err
}

func roundTripTo(tb testing.TB, addr string, req kmsg.Request) ([]byte, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if _, err := nc.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	return nil, readResponse(nc, buf)
}
