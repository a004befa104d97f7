package broker

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseListeners(t *testing.T) {
	tests := []struct {
		in      string
		want    []Listener
		wantErr string
	}{
		{"PLAINTEXT://127.0.0.1:9092", []Listener{{Name: "PLAINTEXT", Bind: "127.0.0.1:9092"}}, ""},
		{"INTERNAL://127.0.0.1:9092,EXTERNAL://0.0.0.0:19092", []Listener{{Name: "INTERNAL", Bind: "127.0.0.1:9092"}, {Name: "EXTERNAL", Bind: "0.0.0.0:19092"}}, ""},
		{" A_1://:0 , B2://[::1]:9093 ", []Listener{{Name: "A_1", Bind: ":0"}, {Name: "B2", Bind: "[::1]:9093"}}, ""},
		{"", nil, "empty listener list"},
		{"127.0.0.1:9092", nil, "want NAME://host:port"},
		{"internal://127.0.0.1:9092", nil, "upper-case letters"},
		{"IN-TERNAL://127.0.0.1:9092", nil, "upper-case letters"},
		{"://127.0.0.1:9092", nil, "empty listener name"},
		{"INTERNAL://127.0.0.1", nil, `address "127.0.0.1"`},
		{"INTERNAL://127.0.0.1:99999", nil, "bad port"},
		{"INTERNAL://127.0.0.1:9092,", nil, "want NAME://host:port"},
		{"SSL://127.0.0.1:9093", nil, "PLAINTEXT only"},
		{"SASL_SSL://127.0.0.1:9093", nil, "PLAINTEXT only"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseListeners(tt.in)
			checkListenerErr(t, err, tt.wantErr)
			if tt.wantErr == "" && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWithAdvertised(t *testing.T) {
	ls := []Listener{{Name: "INTERNAL", Bind: "127.0.0.1:9092"}, {Name: "EXTERNAL", Bind: "0.0.0.0:19092"}}
	tests := []struct {
		in      string
		want    []string // Advertise of each listener
		wantErr string
	}{
		{"EXTERNAL://kafka.example.com:19092", []string{"", "kafka.example.com:19092"}, ""},
		{"INTERNAL://weir:9092,EXTERNAL://localhost:19092", []string{"weir:9092", "localhost:19092"}, ""},
		{"OTHER://weir:9092", nil, "matches no listener (have INTERNAL, EXTERNAL)"},
		{"EXTERNAL://a:1,EXTERNAL://b:2", nil, "listed twice"},
		{"EXTERNAL://no-port", nil, "address"},
		{"", nil, "empty listener list"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := WithAdvertised(ls, tt.in)
			checkListenerErr(t, err, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			for i, l := range got {
				if l.Advertise != tt.want[i] {
					t.Errorf("%s advertises %q, want %q", l.Name, l.Advertise, tt.want[i])
				}
			}
			if ls[1].Advertise != "" {
				t.Fatal("WithAdvertised changed its input")
			}
		})
	}
}

func TestCheckSecurityProtocolMap(t *testing.T) {
	ls := []Listener{{Name: "INTERNAL", Bind: "127.0.0.1:9092"}, {Name: "EXTERNAL", Bind: "127.0.0.1:9093"}}
	tests := []struct{ in, wantErr string }{
		{"INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT", ""},
		{"EXTERNAL:PLAINTEXT", ""},
		{"EXTERNAL:SSL", "PLAINTEXT only"},
		{"EXTERNAL:SASL_PLAINTEXT", "PLAINTEXT only"},
		{"OTHER:PLAINTEXT", "matches no listener"},
		{"EXTERNAL", "want NAME:PLAINTEXT"},
		{"", "want NAME:PLAINTEXT"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			checkListenerErr(t, CheckSecurityProtocolMap(ls, tt.in), tt.wantErr)
		})
	}
}

func TestConfigValidateListeners(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"shorthand", func(c *Config) {}, ""},
		{"shorthand on all interfaces", func(c *Config) { c.Listen = "0.0.0.0:9092" }, ""},
		{"two", func(c *Config) {
			c.Listeners = []Listener{{Name: "INTERNAL", Bind: "127.0.0.1:9092"}, {Name: "EXTERNAL", Bind: "0.0.0.0:19092", Advertise: "kafka.example.com:19092"}}
		}, ""},
		{"listen ignored", func(c *Config) { c.Listen = ""; c.Listeners = []Listener{{Name: "A", Bind: ":0"}} }, ""},
		{"two on port 0", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Bind: "127.0.0.1:0"}, {Name: "B", Bind: "127.0.0.1:0"}}
		}, ""},
		{"advertise with listeners", func(c *Config) { c.Advertise = "x:1"; c.Listeners = []Listener{{Name: "A", Bind: ":0"}} }, "set each listener's Advertise"},
		{"duplicate name", func(c *Config) { c.Listeners = []Listener{{Name: "A", Bind: ":1"}, {Name: "A", Bind: ":2"}} }, "listed twice"},
		{"duplicate bind", func(c *Config) {
			c.Listeners = []Listener{{Name: "A", Bind: "127.0.0.1:9092"}, {Name: "B", Bind: "127.0.0.1:9092"}}
		}, "both bind 127.0.0.1:9092"},
		{"bad name", func(c *Config) { c.Listeners = []Listener{{Name: "a", Bind: ":1"}} }, "upper-case"},
		{"reserved name", func(c *Config) { c.Listeners = []Listener{{Name: "SSL", Bind: ":1"}} }, "PLAINTEXT only"},
		{"bad bind", func(c *Config) { c.Listeners = []Listener{{Name: "A", Bind: "nowhere"}} }, `address "nowhere"`},
		{"bad advertise", func(c *Config) { c.Listeners = []Listener{{Name: "A", Bind: ":1", Advertise: "x"}} }, `advertised address "x"`},
		{"0.0.0.0 not advertised", func(c *Config) { c.Listeners = []Listener{{Name: "A", Bind: "0.0.0.0:9092"}} }, "give it an advertised address"},
		{":: not advertised", func(c *Config) { c.Listeners = []Listener{{Name: "A", Bind: "[::]:9092"}} }, "give it an advertised address"},
		{"advertise 0.0.0.0", func(c *Config) { c.Listeners = []Listener{{Name: "A", Bind: ":1", Advertise: "0.0.0.0:1"}} }, "not routable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			checkListenerErr(t, cfg.Validate(), tt.wantErr)
		})
	}
}

func checkListenerErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want it to mention %q", err, want)
	}
	if !errors.Is(err, ErrBadListener) {
		t.Fatalf("err %v does not wrap ErrBadListener", err)
	}
}

// TestListenersAdvertisePerConnection: a client is given the advertised
// address of the listener it connected to, in Metadata, FindCoordinator and
// DescribeCluster (Kafka answers with the endpoints of the connection's
// listener name).
func TestListenersAdvertisePerConnection(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.Listeners = []Listener{
			{Name: "INTERNAL", Bind: "127.0.0.1:0"},
			{Name: "EXTERNAL", Bind: "127.0.0.2:0", Advertise: "kafka.example.com:19092"},
		}
	})
	ls := s.Listeners()
	if len(ls) != 2 || ls[0].Name != "INTERNAL" || ls[1].Name != "EXTERNAL" {
		t.Fatalf("listeners %+v", ls)
	}
	if s.Addr().String() != ls[0].Addr.String() || s.Advertised() != ls[0].Addr.String() || ls[0].Advertised != ls[0].Addr.String() {
		t.Fatalf("first listener: Addr %v, Advertised %s, listeners %+v", s.Addr(), s.Advertised(), ls)
	}
	if ls[1].Advertised != "kafka.example.com:19092" || !strings.HasPrefix(ls[1].Addr.String(), "127.0.0.2:") {
		t.Fatalf("second listener %+v", ls[1])
	}
	for _, l := range ls {
		t.Run(l.Name, func(t *testing.T) {
			c := dialAddr(t, l.Addr.String())
			host, port, err := splitHostPort(l.Advertised)
			if err != nil {
				t.Fatal(err)
			}
			check := func(api, gotHost string, gotPort int32) {
				t.Helper()
				if gotHost != host || gotPort != port {
					t.Errorf("%s on %s: %s:%d, want %s", api, l.Name, gotHost, gotPort, l.Advertised)
				}
			}

			meta := kmsg.NewPtrMetadataRequest()
			meta.Version = 11
			mresp := c.roundTrip(meta, 1).(*kmsg.MetadataResponse)
			if len(mresp.Brokers) != 1 {
				t.Fatalf("metadata brokers %+v", mresp.Brokers)
			}
			check("Metadata", mresp.Brokers[0].Host, mresp.Brokers[0].Port)

			for _, v := range []int16{3, 4} {
				fc := kmsg.NewPtrFindCoordinatorRequest()
				fc.Version = v
				fc.CoordinatorKey = "g"
				fc.CoordinatorKeys = []string{"g"}
				fresp := c.roundTrip(fc, 2).(*kmsg.FindCoordinatorResponse)
				if v < 4 {
					check("FindCoordinator v3", fresp.Host, fresp.Port)
					continue
				}
				if len(fresp.Coordinators) != 1 || fresp.Coordinators[0].ErrorCode != 0 {
					t.Fatalf("find coordinator %+v", fresp.Coordinators)
				}
				check("FindCoordinator v4", fresp.Coordinators[0].Host, fresp.Coordinators[0].Port)
			}

			dc := kmsg.NewPtrDescribeClusterRequest()
			dc.Version = 1
			dc.EndpointType = 1
			dresp := c.roundTrip(dc, 3).(*kmsg.DescribeClusterResponse)
			if len(dresp.Brokers) != 1 {
				t.Fatalf("describe cluster brokers %+v", dresp.Brokers)
			}
			check("DescribeCluster", dresp.Brokers[0].Host, dresp.Brokers[0].Port)
		})
	}
}

// TestListenersBindFailure: when one listener cannot bind, Start fails
// naming it and leaves no listener open.
func TestListenersBindFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Listeners = []Listener{{Name: "INTERNAL", Bind: freeAddr}, {Name: "EXTERNAL", Bind: taken.Addr().String()}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded with a taken port")
	}
	if !strings.Contains(err.Error(), "listener EXTERNAL") {
		t.Fatalf("error %v does not name the listener", err)
	}
	again, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the first listener's port is still held: %v", err)
	}
	again.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// dialAddr is dialRaw to a given address.
func dialAddr(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc}
}
