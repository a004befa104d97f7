package compat

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMessages is how many messages each group consumer reads.
const groupMessages = 3_000

// TestGroups has each client consume a topic as the only member of its own
// consumer group (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// OffsetFetch, OffsetCommit, LeaveGroup at the versions that client pins)
// and commit what it read. Every message must arrive once, in order within
// its partition, and the committed offsets (read back with kadm) must be
// the partitions' end offsets.
func TestGroups(t *testing.T) {
	b := startBroker(t)
	topic := topicName("groups")
	createTopic(t, b.Addr(), topic, partitions)
	want := messagesFor("groups", groupMessages)
	// Uncompressed: kgo's default (snappy) needs python3-snappy, which the
	// Debian kafka-python package does not pull in.
	produceKgo(t, b.Addr(), topic, want, kgo.ProducerBatchCompression(kgo.NoCompression()))

	clients := []struct {
		name    string
		consume func(t *testing.T, addr, topic, group string) []record
	}{
		{"franz-go", groupKgo},
		{"sarama V3_6_0_0", groupSarama(sarama.V3_6_0_0)},
		{"sarama V2_1_0_0", groupSarama(sarama.V2_1_0_0)},
		{"kafka-go", groupKafkaGo},
		{"kcat", groupKcat},
		{"confluent-kafka-python", groupPython("confluent_kafka", "python3-confluent-kafka", "confluent_client.py")},
		{"kafka-python", groupPython("kafka", "python3-kafka", "kafka_python_client.py")},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			group := "compat-" + strings.NewReplacer(" ", "-", ".", "-").Replace(c.name) + "-" + topic
			verify(t, c.name+" group consumer", c.consume(t, b.Addr(), topic, group), want)
			checkCommitted(t, b.Addr(), group, topic, groupMessages)
		})
	}
}

// checkCommitted checks with kadm that group committed the end offset of
// every partition of topic.
func checkCommitted(t *testing.T, addr, group, topic string, n int) {
	t.Helper()
	offs, err := newAdmin(t, addr).FetchOffsets(timeout(t), group)
	if err != nil {
		t.Fatalf("kadm: fetch offsets of %s: %v", group, err)
	}
	for p := range int32(partitions) {
		o, ok := offs.Lookup(topic, p)
		switch {
		case !ok:
			t.Errorf("group %s committed nothing for %s/%d", group, topic, p)
		case o.Err != nil:
			t.Errorf("group %s, %s/%d: %v", group, topic, p, o.Err)
		case o.At != int64(countIn(n, p)):
			t.Errorf("group %s committed %d for %s/%d, want %d", group, o.At, topic, p, countIn(n, p))
		}
	}
}

func groupKgo(t *testing.T, addr, topic, group string) []record {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	defer cl.Close()
	ctx := timeout(t)
	var out []record
	for len(out) < groupMessages {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo: group consumed %d of %d records before the deadline", len(out), groupMessages)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("kgo: fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromKgo(r)) })
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("kgo: commit: %v", err)
	}
	return out
}

func groupSarama(version sarama.KafkaVersion) func(*testing.T, string, string, string) []record {
	return func(t *testing.T, addr, topic, group string) []record {
		cfg := sarama.NewConfig()
		cfg.Version = version
		cfg.ClientID = "weir-compat"
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Return.Errors = true
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatalf("sarama: consumer group: %v", err)
		}
		defer cg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		h := &saramaHandler{want: groupMessages, done: cancel}
		errc := make(chan error, 1)
		go func() {
			defer close(errc)
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil {
					errc <- err
					return
				}
			}
		}()
		select {
		case err := <-cg.Errors():
			cancel()
			<-errc
			t.Fatalf("sarama: group: %v", err)
		case err := <-errc:
			if err != nil {
				t.Fatalf("sarama: consume: %v", err)
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.got) < groupMessages {
			t.Fatalf("sarama: group consumed %d of %d records before the deadline", len(h.got), groupMessages)
		}
		return h.got
	}
}

// saramaHandler collects messages from every claim, marks them, and when
// all have arrived commits and ends the session.
type saramaHandler struct {
	want int
	done context.CancelFunc

	mu  sync.Mutex
	got []record
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		r := record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
		for _, hd := range m.Headers {
			r.Headers = append(r.Headers, header{string(hd.Key), string(hd.Value)})
		}
		sess.MarkMessage(m, "")
		h.mu.Lock()
		h.got = append(h.got, r)
		all := len(h.got) == h.want
		h.mu.Unlock()
		if all {
			sess.Commit()
			h.done()
		}
	}
	return nil
}

func groupKafkaGo(t *testing.T, addr, topic, group string) []record {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{addr},
		GroupID:     group,
		Topic:       topic,
		StartOffset: kafka.FirstOffset,
		MinBytes:    1,
		MaxBytes:    10 << 20,
		MaxWait:     500 * time.Millisecond,
	})
	defer r.Close()
	ctx := timeout(t)
	var out []record
	last := map[int]kafka.Message{}
	for len(out) < groupMessages {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go: group fetch after %d records: %v", len(out), err)
		}
		rec := record{Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)}
		for _, h := range m.Headers {
			rec.Headers = append(rec.Headers, header{h.Key, string(h.Value)})
		}
		out = append(out, rec)
		last[m.Partition] = m
	}
	var commit []kafka.Message
	for _, m := range last {
		commit = append(commit, m)
	}
	if err := r.CommitMessages(ctx, commit...); err != nil {
		t.Fatalf("kafka-go: commit: %v", err)
	}
	return out
}

func groupKcat(t *testing.T, addr, topic, group string) []record {
	kcat := requireCommand(t, "kcat", "kcat")
	out := run(t, consumeTimeout, nil, kcat, "-b", addr, "-G", group, "-e",
		"-X", "auto.offset.reset=earliest",
		"-f", `%p\t%o\t%k\t%s\t%h\n`, topic)
	return parseKcat(t, out)
}

func groupPython(module, pkg, script string) func(*testing.T, string, string, string) []record {
	return func(t *testing.T, addr, topic, group string) []record {
		requirePythonModule(t, module, pkg)
		out := run(t, consumeTimeout, nil, python, "-B", script, "group", addr, topic, strconv.Itoa(groupMessages), group)
		return parseJSONRecords(t, out)
	}
}
