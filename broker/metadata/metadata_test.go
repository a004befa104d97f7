package metadata

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestValidateTopicName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a.b_c-D9", true},
		{strings.Repeat("x", 249), true},
		{strings.Repeat("x", 250), false},
		{"", false},
		{".", false},
		{"..", false},
		{"...", true},
		{"has space", false},
		{"slash/no", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name[:min(len(tt.name), 20)], func(t *testing.T) {
			err := ValidateTopicName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateTopicName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidTopic) {
				t.Fatalf("error %v does not wrap ErrInvalidTopic", err)
			}
		})
	}
}

func onePartition(i int32) Partition {
	return Partition{Partition: i, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}
}

func TestApplyErrorsLeaveImageUnchanged(t *testing.T) {
	im := NewImage("c", 1)
	im, err := im.Apply(CreateTopic{Name: "a", ID: NewUUID(), Partitions: []Partition{onePartition(0)}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rec  Record
		want error
	}{
		{"exists", CreateTopic{Name: "a", ID: NewUUID(), Partitions: []Partition{onePartition(0)}}, ErrTopicExists},
		{"bad name", CreateTopic{Name: "a b", ID: NewUUID(), Partitions: []Partition{onePartition(0)}}, ErrInvalidTopic},
		{"no partitions", CreateTopic{Name: "b", ID: NewUUID()}, ErrInvalidPartitions},
		{"gap", CreateTopic{Name: "b", ID: NewUUID(), Partitions: []Partition{onePartition(1)}}, ErrInvalidPartitions},
		{"duplicate replica", CreateTopic{Name: "b", ID: NewUUID(), Partitions: []Partition{{Replicas: []int32{1, 1}}}}, ErrInvalidReplicaAssignment},
		{"delete unknown", DeleteTopic{Name: "zz"}, ErrUnknownTopic},
		{"partitions unknown", CreatePartitions{Topic: "zz", Partitions: []Partition{onePartition(0)}}, ErrUnknownTopic},
		{"partitions misnumbered", CreatePartitions{Topic: "a", Partitions: []Partition{onePartition(0)}}, ErrInvalidPartitions},
		{"configs unknown", SetTopicConfigs{Topic: "zz"}, ErrUnknownTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := im.Apply(CreateTopic{Name: "ok", ID: NewUUID(), Partitions: []Partition{onePartition(0)}}, tt.rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if got != im || im.TopicCount() != 1 {
				t.Fatal("a failed Apply changed the image")
			}
		})
	}
}

// TestImageModel applies random records to an Image and to a plain map
// model and checks that they agree, that old images never change, and that
// the persisted form round-trips.
func TestImageModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		im := NewImage("cluster", 1)
		model := map[string]int{} // topic → partition count
		names := []string{"a", "b", "c", "d"}
		for range rapid.IntRange(1, 40).Draw(t, "steps") {
			name := rapid.SampledFrom(names).Draw(t, "topic")
			before := im
			beforeCount := im.TopicCount()
			var rec Record
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				n := rapid.IntRange(1, 4).Draw(t, "n")
				ps := make([]Partition, n)
				for i := range ps {
					ps[i] = onePartition(int32(i))
				}
				rec = CreateTopic{Name: name, ID: NewUUID(), Partitions: ps}
			case 1:
				rec = DeleteTopic{Name: name}
			case 2:
				ps := []Partition{onePartition(int32(model[name]))}
				rec = CreatePartitions{Topic: name, Partitions: ps}
			}
			next, err := im.Apply(rec)
			_, exists := model[name]
			switch r := rec.(type) {
			case CreateTopic:
				if exists != (err != nil) {
					t.Fatalf("create %s: exists=%v err=%v", name, exists, err)
				}
				if err == nil {
					model[name] = len(r.Partitions)
				}
			case DeleteTopic:
				if exists != (err == nil) {
					t.Fatalf("delete %s: exists=%v err=%v", name, exists, err)
				}
				delete(model, name)
			case CreatePartitions:
				if exists != (err == nil) {
					t.Fatalf("add partitions %s: exists=%v err=%v", name, exists, err)
				}
				if err == nil {
					model[name]++
				}
			}
			if err == nil {
				im = next
			}
			if before.TopicCount() != beforeCount {
				t.Fatal("an old image changed")
			}
			if im.TopicCount() != len(model) {
				t.Fatalf("%d topics, model has %d", im.TopicCount(), len(model))
			}
			for n, c := range model {
				tp, ok := im.Topic(n)
				if !ok || len(tp.Partitions) != c {
					t.Fatalf("topic %s: ok=%v, want %d partitions", n, ok, c)
				}
				if byID, ok := im.TopicByID(tp.ID); !ok || byID != tp {
					t.Fatalf("topic %s not found by id", n)
				}
			}
		}
		b, err := encodeImage(im)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeImage(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Topics(), im.Topics()) || back.Version != im.Version {
			t.Fatal("image does not round-trip through its file format")
		}
	})
}

func TestFileStoreReload(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenFileStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	id := NewUUID()
	if _, err := s.Apply(
		RegisterBroker{Broker: Broker{NodeID: 3, Host: "127.0.0.1", Port: 9092}},
		CreateTopic{Name: "t", ID: id, Partitions: []Partition{onePartition(0)}, Configs: map[string]string{"retention.ms": "1000"}},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(DeleteTopic{Name: "nope"}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("err %v, want ErrUnknownTopic", err)
	}
	r, err := OpenFileStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	im := r.Image()
	if im.ClusterID != s.Image().ClusterID || im.ClusterID == "" {
		t.Fatalf("cluster id %q, want %q", im.ClusterID, s.Image().ClusterID)
	}
	tp, ok := im.Topic("t")
	if !ok || tp.ID != id || tp.Configs["retention.ms"] != "1000" {
		t.Fatalf("reloaded topic %+v", tp)
	}
	if b, ok := im.Broker(3); !ok || b.Port != 9092 {
		t.Fatalf("reloaded broker %+v", b)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); err == nil {
		t.Fatal("temporary file left behind")
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(dir, 3); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v, want ErrCorrupt", err)
	}
}

func TestNewUUID(t *testing.T) {
	for range 1000 {
		u := NewUUID()
		if u.IsZero() || strings.HasPrefix(u.String(), "-") || len(u.String()) != 22 {
			t.Fatalf("bad uuid %s", u)
		}
	}
}

// TestSetBrokerConfigs: the cluster default ("") and node ids are the only
// resources, an empty set removes the resource, a bad name changes nothing,
// and the configs survive a reload of the FileStore.
func TestSetBrokerConfigs(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		configs  map[string]string
		want     error
	}{
		{"cluster default", "", map[string]string{"log.retention.ms": "1000"}, nil},
		{"one broker", "3", map[string]string{"log.retention.bytes": "10"}, nil},
		{"not a number", "x", map[string]string{"log.retention.ms": "1"}, ErrInvalidBrokerResource},
		{"negative", "-1", map[string]string{"log.retention.ms": "1"}, ErrInvalidBrokerResource},
		{"not canonical", "03", map[string]string{"log.retention.ms": "1"}, ErrInvalidBrokerResource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := NewImage("c", 1)
			got, err := im.Apply(SetBrokerConfigs{Broker: tt.resource, Configs: tt.configs})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil {
				if got != im || im.BrokerConfigs(tt.resource) != nil {
					t.Fatal("a failed Apply changed the image")
				}
				return
			}
			if !reflect.DeepEqual(got.BrokerConfigs(tt.resource), tt.configs) {
				t.Fatalf("configs %v, want %v", got.BrokerConfigs(tt.resource), tt.configs)
			}
			if im.BrokerConfigs(tt.resource) != nil {
				t.Fatal("the old image changed")
			}
			cleared, err := got.Apply(SetBrokerConfigs{Broker: tt.resource})
			if err != nil || cleared.BrokerConfigs(tt.resource) != nil {
				t.Fatalf("empty set left %v (err %v)", cleared.BrokerConfigs(tt.resource), err)
			}
		})
	}

	dir := t.TempDir()
	s, err := OpenFileStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(
		SetBrokerConfigs{Broker: "", Configs: map[string]string{"log.retention.ms": "1000"}},
		SetBrokerConfigs{Broker: "3", Configs: map[string]string{"log.segment.bytes": "2048"}},
	); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFileStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Image().BrokerConfigs(""); got["log.retention.ms"] != "1000" {
		t.Fatalf("reloaded cluster default %v", got)
	}
	if got := r.Image().BrokerConfigs("3"); got["log.segment.bytes"] != "2048" {
		t.Fatalf("reloaded broker 3 %v", got)
	}
	if r.Image().Version != s.Image().Version {
		t.Fatalf("version %d, want %d", r.Image().Version, s.Image().Version)
	}
}
