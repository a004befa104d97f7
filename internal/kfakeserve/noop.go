package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/weir-broker/weir/log/batch"
)

// maxRequestSize bounds one request frame of the no-op server.
const maxRequestSize = 100 << 20

// errBadRequest is returned when a frame cannot be decoded; the connection
// is closed, as Kafka does.
var errBadRequest = errors.New("kfakeserve: bad request")

// noopVersions is what the no-op server advertises: enough for kgo and
// kafka-go producers (Metadata without topic IDs, Produce without KIP-890).
var noopVersions = []kmsg.ApiVersionsResponseApiKey{
	{ApiKey: 0, MinVersion: 3, MaxVersion: 9},  // Produce
	{ApiKey: 3, MinVersion: 0, MaxVersion: 9},  // Metadata
	{ApiKey: 18, MinVersion: 0, MaxVersion: 3}, // ApiVersions
	{ApiKey: 19, MinVersion: 0, MaxVersion: 4}, // CreateTopics
	{ApiKey: 22, MinVersion: 0, MaxVersion: 4}, // InitProducerId
}

// noopServer acknowledges every produce without storing it, or, with a
// store floor, after storing it (storefloor.go). It keeps a log end offset
// per partition so acknowledged offsets look plausible. Safe for concurrent
// use: mu guards leo and nextPID.
type noopServer struct {
	port       int32
	partitions int32
	logger     *slog.Logger
	store      *storeFloor // nil: store nothing

	mu      sync.Mutex
	leo     map[string][]int64
	nextPID int64
}

func serveNoop(ctx context.Context, c config, stdout io.Writer, logger *slog.Logger) error {
	ln, err := listen(c.port)
	if err != nil {
		return err
	}
	s := &noopServer{
		port:       int32(ln.Addr().(*net.TCPAddr).Port),
		partitions: int32(c.partitions),
		logger:     logger,
		leo:        make(map[string][]int64),
	}
	if c.storeDir != "" {
		if s.store, err = newStoreFloor(c.storeDir); err != nil {
			ln.Close()
			return err
		}
		defer s.store.close()
	}
	fmt.Fprintln(stdout, "noop listening on", ln.Addr())
	var wg sync.WaitGroup
	var connMu sync.Mutex
	conns := make(map[net.Conn]struct{})
	wg.Go(func() {
		<-ctx.Done()
		ln.Close()
		connMu.Lock()
		for cn := range conns {
			cn.Close()
		}
		connMu.Unlock()
	})
	for {
		cn, err := ln.Accept()
		if err != nil {
			break
		}
		connMu.Lock()
		conns[cn] = struct{}{}
		connMu.Unlock()
		wg.Go(func() {
			defer func() {
				connMu.Lock()
				delete(conns, cn)
				connMu.Unlock()
				cn.Close()
			}()
			if err := s.serveConn(cn); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Debug("connection closed", "remote", cn.RemoteAddr(), "err", err)
			}
		})
	}
	wg.Wait()
	return nil
}

// serveConn answers requests one at a time, in order.
func (s *noopServer) serveConn(cn net.Conn) error {
	r := bufio.NewReaderSize(cn, 64<<10)
	w := bufio.NewWriterSize(cn, 64<<10)
	var size [4]byte
	var buf, out []byte
	var sums batch.BlockSums
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > maxRequestSize || n < 8 {
			return fmt.Errorf("%w: frame of %d bytes", errBadRequest, n)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if err := s.readFrame(r, buf, &sums); err != nil {
			return err
		}
		var err error
		out, err = s.handle(buf, out[:0], &sums)
		if err != nil {
			return err
		}
		if len(out) == 0 { // acks=0
			continue
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// readFrame fills buf from r. With a store floor, a large frame is read in
// pieces, each summed into sums as it arrives; otherwise sums describes
// nothing.
func (s *noopServer) readFrame(r io.Reader, buf []byte, sums *batch.BlockSums) error {
	if s.store == nil || len(buf) < floorPieceMin {
		sums.Reset(nil)
		_, err := io.ReadFull(r, buf)
		return err
	}
	sums.Reset(buf)
	for got := 0; got < len(buf); {
		end := min(got+floorPiece, len(buf))
		if _, err := io.ReadFull(r, buf[got:end]); err != nil {
			sums.Reset(nil)
			return err
		}
		got = end
		sums.Filled(got)
	}
	return nil
}

// handle decodes one request and appends the framed response to out; a nil
// result means no response is sent. sums describes frame's block sums, if
// any.
func (s *noopServer) handle(frame, out []byte, sums *batch.BlockSums) ([]byte, error) {
	rd := kbin.Reader{Src: frame}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	rd.NullableString() // client id, never compact
	if rd.Complete() != nil {
		return nil, fmt.Errorf("%w: short header", errBadRequest)
	}
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("%w: unknown key %d", errBadRequest, key)
	}
	if key == 18 && version > noopVersions[2].MaxVersion { // noopVersions[2] is ApiVersions
		// KIP-511: answer in v0 with UNSUPPORTED_VERSION and our keys.
		resp := &kmsg.ApiVersionsResponse{ErrorCode: kerr.UnsupportedVersion.Code, ApiKeys: noopVersions}
		return frameResponse(out, corr, resp), nil
	}
	if !supported(key, version) {
		return nil, fmt.Errorf("%w: key %d version %d not supported", errBadRequest, key, version)
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("%w: key %d: %w", errBadRequest, key, err)
	}
	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		ar := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		ar.ApiKeys = noopVersions
		resp = ar
	case *kmsg.MetadataRequest:
		resp = s.metadata(r)
	case *kmsg.CreateTopicsRequest:
		resp = s.createTopics(r)
	case *kmsg.InitProducerIDRequest:
		ir := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		s.mu.Lock()
		s.nextPID++
		ir.ProducerID = s.nextPID
		s.mu.Unlock()
		resp = ir
	case *kmsg.ProduceRequest:
		pr := s.produce(r, sums)
		if r.Acks == 0 {
			return nil, nil
		}
		resp = pr
	default:
		return nil, fmt.Errorf("%w: key %d not served", errBadRequest, key)
	}
	resp.SetVersion(version)
	return frameResponse(out, corr, resp), nil
}

func supported(key, version int16) bool {
	for _, k := range noopVersions {
		if k.ApiKey == key {
			return version >= k.MinVersion && version <= k.MaxVersion
		}
	}
	return false
}

// frameResponse appends size, correlation id, the header tag byte (flexible
// responses except ApiVersions) and the body.
func frameResponse(out []byte, corr int32, resp kmsg.Response) []byte {
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(corr))
	if resp.IsFlexible() && resp.Key() != 18 {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}

func (s *noopServer) metadata(r *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = 0, "127.0.0.1", s.port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ControllerID = 0
	id := "noop"
	resp.ClusterID = &id
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(r.Topics))
	if r.Topics == nil {
		for t := range s.leo {
			names = append(names, t)
		}
	}
	for _, t := range r.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	for _, name := range names {
		if _, ok := s.leo[name]; !ok {
			s.leo[name] = make([]int64, s.partitions)
		}
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = &name
		for p := range int32(len(s.leo[name])) {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition, mp.Leader = p, 0
			mp.Replicas, mp.ISR = []int32{0}, []int32{0}
			t.Partitions = append(t.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// createTopics registers the topics (partitions from the request, or the
// server default) so later metadata lists them.
func (s *noopServer) createTopics(r *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range r.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		n := t.NumPartitions
		if n <= 0 {
			n = s.partitions
		}
		if _, ok := s.leo[t.Topic]; ok {
			rt.ErrorCode = kerr.TopicAlreadyExists.Code
		} else {
			s.leo[t.Topic] = make([]int64, n)
		}
		rt.NumPartitions, rt.ReplicationFactor = n, 1
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// produce acknowledges every partition, advancing its log end offset by the
// record count of each batch header (lastOffsetDelta + 1).
func (s *noopServer) produce(r *kmsg.ProduceRequest, sums *batch.BlockSums) *kmsg.ProduceResponse {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range r.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		leo := s.leo[t.Topic]
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			if p.Partition < 0 || int(p.Partition) >= len(leo) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if err := s.storeRecords(t.Topic, p.Partition, p.Records, sums); err != nil {
				rp.ErrorCode = kerr.KafkaStorageError.Code
				if ke, ok := errors.AsType[*kerr.Error](err); ok {
					rp.ErrorCode = ke.Code
				}
			} else {
				rp.BaseOffset = leo[p.Partition]
				leo[p.Partition] += countRecords(p.Records)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// storeRecords stores a produce partition's records when the server has a
// store floor.
func (s *noopServer) storeRecords(topic string, partition int32, records []byte, sums *batch.BlockSums) error {
	if s.store == nil {
		return nil
	}
	return s.store.store(topic, partition, records, sums)
}

// countRecords sums lastOffsetDelta+1 over the v2 batch headers in b.
func countRecords(b []byte) int64 {
	var n int64
	for len(b) >= 61 {
		length := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if length < 49 || 12+length > int64(len(b)) {
			break
		}
		n += int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[12+length:]
	}
	return n
}
