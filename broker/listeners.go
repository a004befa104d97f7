package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/wire"
)

// DefaultListenerName is the name of the one listener that Config.Listen
// and Config.Advertise describe, as in Kafka's default
// listeners=PLAINTEXT://:9092.
const DefaultListenerName = "PLAINTEXT"

// ErrBadListener is wrapped by every error about a listener setting: a bad
// name, address, duplicate or advertised entry.
var ErrBadListener = errors.New("broker: bad listener")

// Listener is one named Kafka listener: the address it binds and the address
// it gives to clients (Kafka's listeners and advertised.listeners). Weir
// serves PLAINTEXT only: a name is just a name, it chooses no security
// protocol (no TLS, no SASL).
type Listener struct {
	// Name is upper-case letters, digits and underscores, unique among the
	// listeners, e.g. INTERNAL or EXTERNAL.
	Name string
	// Bind is the host:port to listen on. Port 0 picks a free port; an
	// empty host listens on every interface.
	Bind string
	// Advertise is the host:port given to clients that connect through
	// this listener (Metadata, FindCoordinator, DescribeCluster). Empty
	// means the bound address; a listener bound to 0.0.0.0 or :: needs one.
	// Port 0 means the bound port; an empty host means this machine's host
	// name.
	Advertise string
}

// BoundListener is a started listener: the address it is bound to and the
// address it advertises.
type BoundListener struct {
	// Name is the listener's name.
	Name string
	// Addr is the bound address (the port picked for port 0).
	Addr net.Addr
	// Advertised is the host:port clients on this listener are given.
	Advertised string
}

// reservedListenerNames are Kafka's security protocols other than
// PLAINTEXT: a Kafka listener with such a name and no security protocol map
// uses that protocol, which Weir does not serve.
var reservedListenerNames = []string{"SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// ParseListeners parses Kafka's listeners syntax,
// NAME://host:port[,NAME://host:port...], into listeners with Bind set. An
// IPv6 host is written in brackets: INTERNAL://[::1]:9092. It checks the
// syntax only; Config.Validate checks the list as a whole.
func ParseListeners(s string) ([]Listener, error) {
	entries, err := parseListenerList(s)
	if err != nil {
		return nil, err
	}
	out := make([]Listener, len(entries))
	for i, e := range entries {
		out[i] = Listener{Name: e.name, Bind: e.addr}
	}
	return out, nil
}

// WithAdvertised returns ls with the advertised addresses of s set, in
// Kafka's advertised.listeners syntax (NAME://host:port,...). Every name in s
// must be one of ls, at most once; a listener s does not name keeps its
// Advertise (empty: its bound address).
func WithAdvertised(ls []Listener, s string) ([]Listener, error) {
	entries, err := parseListenerList(s)
	if err != nil {
		return nil, err
	}
	out := append([]Listener(nil), ls...)
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.name] {
			return nil, fmt.Errorf("%w: advertised listener %s is listed twice", ErrBadListener, e.name)
		}
		seen[e.name] = true
		i := indexOfListener(out, e.name)
		if i < 0 {
			return nil, fmt.Errorf("%w: advertised listener %s matches no listener (have %s)", ErrBadListener, e.name, listenerNames(out))
		}
		out[i].Advertise = e.addr
	}
	return out, nil
}

// CheckSecurityProtocolMap checks Kafka's listener.security.protocol.map
// syntax (NAME:PROTOCOL,...) against ls. Weir needs no map; it accepts one
// so that Kafka settings can be reused, but only with PLAINTEXT values and
// names of ls.
func CheckSecurityProtocolMap(ls []Listener, s string) error {
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		name, proto, ok := strings.Cut(entry, ":")
		if !ok || name == "" || proto == "" {
			return fmt.Errorf("%w: security protocol map entry %q: want NAME:PLAINTEXT", ErrBadListener, entry)
		}
		if proto != "PLAINTEXT" {
			return fmt.Errorf("%w: security protocol map: listener %s is %s, but Weir serves PLAINTEXT only (no TLS or SASL)", ErrBadListener, name, proto)
		}
		if indexOfListener(ls, name) < 0 {
			return fmt.Errorf("%w: security protocol map names %s, which matches no listener (have %s)", ErrBadListener, name, listenerNames(ls))
		}
	}
	return nil
}

// listenerEntry is one NAME://host:port of a listener list.
type listenerEntry struct{ name, addr string }

func parseListenerList(s string) ([]listenerEntry, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty listener list: want NAME://host:port[,NAME://host:port...]", ErrBadListener)
	}
	var out []listenerEntry
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		name, addr, ok := strings.Cut(entry, "://")
		if !ok {
			return nil, fmt.Errorf("%w: %q: want NAME://host:port", ErrBadListener, entry)
		}
		if err := checkListenerName(name); err != nil {
			return nil, err
		}
		if _, _, err := splitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: %s: address %q: %v", ErrBadListener, name, addr, err)
		}
		out = append(out, listenerEntry{name: name, addr: addr})
	}
	return out, nil
}

// checkListenerName checks Kafka's listener name rules, and that the name
// would not make a Kafka user expect TLS or SASL.
func checkListenerName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty listener name", ErrBadListener)
	}
	for _, r := range name {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return fmt.Errorf("%w: listener name %q: want upper-case letters, digits and underscores", ErrBadListener, name)
		}
	}
	for _, p := range reservedListenerNames {
		if name == p {
			return fmt.Errorf("%w: listener name %s is a Kafka security protocol, but Weir serves PLAINTEXT only (no TLS or SASL): choose another name", ErrBadListener, name)
		}
	}
	return nil
}

// validateListeners checks a whole list of named listeners.
func validateListeners(ls []Listener) error {
	names := make(map[string]bool, len(ls))
	binds := make(map[string]string, len(ls))
	for _, l := range ls {
		if err := checkListenerName(l.Name); err != nil {
			return err
		}
		if names[l.Name] {
			return fmt.Errorf("%w: listener %s is listed twice", ErrBadListener, l.Name)
		}
		names[l.Name] = true
		host, port, err := splitHostPort(l.Bind)
		if err != nil {
			return fmt.Errorf("%w: %s: address %q: %v", ErrBadListener, l.Name, l.Bind, err)
		}
		if port != 0 {
			if other, ok := binds[l.Bind]; ok {
				return fmt.Errorf("%w: listeners %s and %s both bind %s", ErrBadListener, other, l.Name, l.Bind)
			}
			binds[l.Bind] = l.Name
		}
		if l.Advertise == "" {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				return fmt.Errorf("%w: listener %s binds %s, which clients cannot connect to: give it an advertised address", ErrBadListener, l.Name, l.Bind)
			}
			continue
		}
		ahost, _, err := splitHostPort(l.Advertise)
		if err != nil {
			return fmt.Errorf("%w: %s: advertised address %q: %v", ErrBadListener, l.Name, l.Advertise, err)
		}
		if ip := net.ParseIP(ahost); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("%w: %s: advertised address %s is not routable: give the address clients use", ErrBadListener, l.Name, l.Advertise)
		}
	}
	return nil
}

// listeners returns the configured listeners: Listeners, or the one
// PLAINTEXT listener of Listen and Advertise.
func (c Config) listeners() []Listener {
	if len(c.Listeners) > 0 {
		return c.Listeners
	}
	return []Listener{{Name: DefaultListenerName, Bind: c.Listen, Advertise: c.Advertise}}
}

func indexOfListener(ls []Listener, name string) int {
	for i, l := range ls {
		if l.Name == name {
			return i
		}
	}
	return -1
}

func listenerNames(ls []Listener) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, ", ")
}

// boundListener is a listener the server has bound.
type boundListener struct {
	name string
	ln   net.Listener
	host string // advertised
	port int32  // advertised
}

// advertisedAddr resolves what a listener bound to bound advertises: its
// Advertise, else the bound address; an empty or unspecified host becomes
// this machine's host name and port 0 the bound port.
func advertisedAddr(l Listener, bound net.Addr) (string, int32, error) {
	hp := l.Advertise
	if hp == "" {
		hp = bound.String()
	}
	host, port, err := splitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("broker: listener %s: advertised address %q: %w", l.Name, hp, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		// Clients cannot connect to 0.0.0.0: advertise the host name.
		if host, err = os.Hostname(); err != nil {
			return "", 0, fmt.Errorf("broker: listener %s listens on all interfaces and there is no host name to advertise (set its advertised address): %w", l.Name, err)
		}
	}
	if port == 0 {
		_, port, _ = splitHostPort(bound.String())
	}
	return host, port, nil
}

// register records this broker in the metadata with the first listener's
// advertised address; the other listeners' addresses are kept by the server
// (one node: the image has one address per broker).
func (s *Server) register(first *boundListener) error {
	b := metadata.Broker{NodeID: s.cfg.NodeID, Host: first.host, Port: first.port}
	if _, err := s.meta.Apply(metadata.RegisterBroker{Broker: b}); err != nil {
		return fmt.Errorf("broker: register: %w", err)
	}
	return nil
}

// endpoint returns the host and port a client that sent r is given for
// broker b: for this node, the advertised address of the listener r arrived
// on (Kafka answers with the endpoints of the connection's listener), else
// the address b registered.
func (s *Server) endpoint(r *wire.Request, b metadata.Broker) (string, int32) {
	if b.NodeID == s.cfg.NodeID {
		for _, l := range s.bound {
			if l.name == r.Listener {
				return l.host, l.port
			}
		}
	}
	return b.Host, b.Port
}

// Listeners returns the started listeners in configuration order, nil before
// Start.
func (s *Server) Listeners() []BoundListener {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []BoundListener
	for _, l := range s.bound {
		out = append(out, BoundListener{Name: l.name, Addr: l.ln.Addr(), Advertised: net.JoinHostPort(l.host, strconv.Itoa(int(l.port)))})
	}
	return out
}
