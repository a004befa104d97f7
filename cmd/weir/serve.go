package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/weir-broker/weir/broker"
)

// serveFlags are the settings of `weir serve`. Each flag can also come from
// the environment (WEIR_<NAME>, e.g. WEIR_DATA_DIR) or a YAML file (--config,
// keys named like the flags); flags win over the environment, which wins
// over the file, which wins over the defaults.
type serveFlags struct {
	config            string
	dataDir           string
	listen            string
	advertise         string
	listeners         string
	advertised        string
	securityMap       string
	listenSet         bool // --listen came from a flag, the environment or the file
	httpListen        string
	nodeID            int32
	autoCreate        bool
	defaultPartitions int32
	logFormat         string
	logLevel          string
	fsync             string
	fsyncInterval     time.Duration
	pageCacheWindow   int64
	maxRequestBytes   int32
	maxConnections    int
	fetchSessionSlots int
	shutdownTimeout   time.Duration
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Weir broker",
		Long: `Run a Weir broker: Kafka listeners, an HTTP listener for /metrics, /healthz
and /readyz, and the partitions in the data directory.

Every flag can also be set in the environment as WEIR_<FLAG> (WEIR_DATA_DIR,
WEIR_LISTEN, ...) or in a YAML file given with --config (keys named like the
flags). Precedence: flags, then environment, then file, then defaults.

Named listeners work as in Kafka: --listeners INTERNAL://0.0.0.0:9092,
EXTERNAL://0.0.0.0:19092 binds two listeners, and --advertised-listeners
INTERNAL://weir:9092,EXTERNAL://localhost:19092 says which address each gives
to its clients (Metadata, FindCoordinator, DescribeCluster answer with the
advertised address of the listener the request came in on). A listener bound
to 0.0.0.0 or :: needs an advertised address; one without an entry advertises
its bound address. --listen host:port (with --advertise) is the shorthand for
one listener named PLAINTEXT. Every listener speaks PLAINTEXT (no TLS, no SASL):
a listener name is just a name.

SIGTERM or SIGINT stops accepting connections, lets in-flight requests
finish, flushes and closes every partition, and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := layerSettings(cmd.Flags(), os.LookupEnv); err != nil {
				return usageError{err}
			}
			f.listenSet = cmd.Flags().Changed("listen")
			return runServe(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML file with settings (keys named like the flags)")
	fl.StringVar(&f.dataDir, "data-dir", "./weir-data", "directory of the partitions and the cluster metadata")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9092", "Kafka listener address, host:port")
	fl.StringVar(&f.advertise, "advertise", "", "host:port given to clients in Metadata (default: the bound listener address)")
	fl.StringVar(&f.listeners, "listeners", "", "named Kafka listeners, NAME://host:port[,NAME://host:port...], instead of --listen (PLAINTEXT only: a name is just a name)")
	fl.StringVar(&f.advertised, "advertised-listeners", "", "address each listener gives to its clients, NAME://host:port[,...] (default: its bound address)")
	fl.StringVar(&f.securityMap, "listener-security-protocol-map", "", "accepted for Kafka compatibility: NAME:PLAINTEXT[,...]; Weir serves PLAINTEXT only")
	fl.StringVar(&f.httpListen, "http-listen", "127.0.0.1:9644", "HTTP listener for /metrics, /healthz and /readyz (empty: none)")
	fl.Int32Var(&f.nodeID, "node-id", 1, "this broker's node id")
	fl.BoolVar(&f.autoCreate, "auto-create-topics", true, "create unknown topics on first use (auto.create.topics.enable)")
	fl.Int32Var(&f.defaultPartitions, "default-partitions", 1, "partitions of auto-created topics (num.partitions)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.fsync, "fsync", "never", "when appends are fsynced: never (replication is the durability), always (before acknowledging), or interval")
	fl.DurationVar(&f.fsyncInterval, "fsync-interval", time.Second, "with --fsync interval: the longest time between fsyncs")
	fl.Int64Var(&f.pageCacheWindow, "page-cache-window", broker.DefaultPageCacheWindow, "bytes of each partition's newest data kept in the page cache; older data is written back and dropped, and read past the cache (0: leave the cache to the kernel)")
	fl.Int32Var(&f.maxRequestBytes, "max-request-bytes", 100<<20, "largest request accepted (socket.request.max.bytes)")
	fl.IntVar(&f.maxConnections, "max-connections", broker.DefaultMaxConnections, "open client connections at most; at the limit new ones wait to be accepted (max.connections)")
	fl.IntVar(&f.fetchSessionSlots, "fetch-session-slots", broker.DefaultFetchSessionSlots, "incremental fetch sessions (KIP-227) kept at once; 0 declines them and consumers fetch without (max.incremental.fetch.session.cache.slots)")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for in-flight requests")
	return cmd
}

// layerSettings fills every flag not given on the command line from the
// environment, then from the --config file.
func layerSettings(fl *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	envName := func(flag string) string {
		return "WEIR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	}
	var envErr error
	fl.VisitAll(func(p *pflag.Flag) {
		if p.Changed || envErr != nil {
			return
		}
		if v, ok := lookupEnv(envName(p.Name)); ok {
			if err := fl.Set(p.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %w", envName(p.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	path, _ := fl.GetString("config")
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(b, &file); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := fl.Lookup(k)
		if p == nil || k == "config" {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		if p.Changed {
			continue
		}
		if _, ok := lookupEnv(envName(k)); ok {
			continue
		}
		v := fmt.Sprint(file[k])
		if file[k] == nil {
			v = ""
		}
		if err := fl.Set(k, v); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
	}
	return nil
}

// brokerConfig checks the settings and turns them into a broker.Config.
func (f serveFlags) brokerConfig(logger *slog.Logger) (broker.Config, error) {
	cfg := broker.DefaultConfig()
	cfg.DataDir = f.dataDir
	cfg.Listen = f.listen
	cfg.Advertise = f.advertise
	ls, err := f.namedListeners()
	if err != nil {
		return cfg, err
	}
	cfg.Listeners = ls
	cfg.HTTPListen = f.httpListen
	cfg.NodeID = f.nodeID
	cfg.AutoCreateTopics = f.autoCreate
	cfg.DefaultPartitions = f.defaultPartitions
	cfg.Fsync = f.fsync
	cfg.FsyncInterval = f.fsyncInterval
	cfg.PageCacheWindow = f.pageCacheWindow
	cfg.MaxRequestBytes = f.maxRequestBytes
	cfg.MaxConnections = f.maxConnections
	cfg.FetchSessionSlots = f.fetchSessionSlots
	cfg.ShutdownTimeout = f.shutdownTimeout
	cfg.Logger = logger
	return cfg, cfg.Validate()
}

// namedListeners turns --listeners, --advertised-listeners and
// --listener-security-protocol-map into broker listeners; nil means the one
// listener of --listen and --advertise.
func (f serveFlags) namedListeners() ([]broker.Listener, error) {
	switch {
	case f.listeners != "" && f.listenSet:
		return nil, errors.New("--listen and --listeners are both set: use one (--listen host:port is the shorthand for --listeners PLAINTEXT://host:port)")
	case f.listeners != "" && f.advertise != "":
		return nil, errors.New("--advertise and --listeners are both set: give the addresses with --advertised-listeners NAME://host:port")
	case f.advertised != "" && f.advertise != "":
		return nil, errors.New("--advertise and --advertised-listeners are both set: use one")
	}
	if f.listeners == "" && f.advertised == "" && f.securityMap == "" {
		return nil, nil
	}
	ls := []broker.Listener{{Name: broker.DefaultListenerName, Bind: f.listen}}
	if f.listeners != "" {
		var err error
		if ls, err = broker.ParseListeners(f.listeners); err != nil {
			return nil, fmt.Errorf("--listeners: %w", err)
		}
	}
	if f.advertised != "" {
		var err error
		if ls, err = broker.WithAdvertised(ls, f.advertised); err != nil {
			return nil, fmt.Errorf("--advertised-listeners: %w", err)
		}
	}
	if f.securityMap != "" {
		if err := broker.CheckSecurityProtocolMap(ls, f.securityMap); err != nil {
			return nil, fmt.Errorf("--listener-security-protocol-map: %w", err)
		}
	}
	if f.listeners == "" && f.advertised == "" {
		return nil, nil // only a map, which changes nothing: keep --listen as it is
	}
	return ls, nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func runServe(ctx context.Context, f serveFlags, stdout, stderr io.Writer) error {
	logger, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return usageError{err}
	}
	cfg, err := f.brokerConfig(logger)
	if err != nil {
		return usageError{err}
	}
	srv, err := broker.New(cfg)
	if err != nil {
		return usageError{err}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		if errors.Is(err, broker.ErrDataDirLocked) {
			return fmt.Errorf("%w (is another weir serve running on it?)", err)
		}
		return err
	}
	printBanner(stdout, srv, cfg)
	<-ctx.Done()
	logger.Info("shutting down: finishing in-flight requests, closing partitions")
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("shutdown complete")
	return nil
}

func printBanner(w io.Writer, srv *broker.Server, cfg broker.Config) {
	addr := srv.Advertised()
	fmt.Fprintf(w, "Weir broker %d is serving Kafka clients.\n", cfg.NodeID)
	for _, l := range srv.Listeners() {
		fmt.Fprintf(w, "  listener %-9s  %s -> advertised as %s\n", l.Name+":", l.Addr, l.Advertised)
	}
	fmt.Fprintf(w, "  bootstrap address: %s\n", addr)
	if h := srv.HTTPAddr(); h != nil {
		fmt.Fprintf(w, "  metrics:           http://%s/metrics  (health: /healthz, /readyz)\n", h)
	}
	fmt.Fprintf(w, "  data directory:    %s\n", cfg.DataDir)
	fmt.Fprintf(w, "Try it:\n")
	fmt.Fprintf(w, "  echo hello | weir produce demo -b %s\n", addr)
	fmt.Fprintf(w, "  weir consume demo -b %s -o start --exit-at-end\n", addr)
	fmt.Fprintf(w, "  (or any Kafka client: kcat -b %s -t demo -C -e)\n", addr)
}
