// Command kfakeserve runs franz-go's fake Kafka cluster (pkg/kfake) on a
// loopback port, in memory or persisted to a data directory, so `weir bench`
// and the CLI can be compared against a reference broker driven by the same
// client. With -noop it instead runs an ack-only server that answers produce
// requests without storing anything: the ceiling a client can reach on this
// machine. With -noop -store DIR that server stores what it acknowledges,
// doing only the work every storing broker must (read, CRC check, write,
// page cache window; storefloor.go): the floor under any broker's produce
// cost, against which Weir's own overhead shows.
//
// It is a development and benchmarking tool, not part of the weir binary.
//
//	go run ./internal/kfakeserve -port 9093 -partitions 6
//	go run ./internal/kfakeserve -port 9094 -noop
//	go run ./internal/kfakeserve -port 9095 -noop -store /tmp/floor
//
// To compare brokers, run `weir serve`, kfake and the no-op server side by
// side and alternate the same `weir bench` run between them, taking the
// median of several rounds; the no-op figure is the client's own ceiling:
//
//	weir bench produce -b 127.0.0.1:9092 -t p100 -p 6 -s 100 -n 2000000 --format json
//	weir bench produce -b 127.0.0.1:9093 -t p100 -p 6 -s 100 -n 2000000 --format json
//	weir bench produce -b 127.0.0.1:9094 -t p100 -p 6 -s 100 -n 2000000 --format json
//	weir bench e2e -b 127.0.0.1:9092 -t e2e -p 6 -s 100 --rate 10000 -n 30000
//
// The ports also serve the CLI's tests through WEIR_TEST_BROKER when the
// broker under development cannot run yet.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the command line selects.
type config struct {
	port       int
	brokers    int
	partitions int
	dataDir    string
	syncWrites bool
	autoCreate bool
	noop       bool
	storeDir   string
	seedTopics []string
}

// errUsage marks a command-line error; the process exits 2.
var errUsage = errors.New("kfakeserve: usage")

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("kfakeserve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.port, "port", 9093, "TCP port on 127.0.0.1 for the first broker (0 picks a free one)")
	fs.IntVar(&c.brokers, "brokers", 1, "number of kfake brokers (consecutive ports)")
	fs.IntVar(&c.partitions, "partitions", 1, "partitions of auto-created and seeded topics")
	fs.StringVar(&c.dataDir, "data-dir", "", "persist kfake's state and segments in this directory (default: in memory)")
	fs.BoolVar(&c.syncWrites, "sync", false, "fsync every produced batch (with -data-dir)")
	fs.BoolVar(&c.autoCreate, "auto-create", true, "create unknown topics on metadata requests")
	fs.BoolVar(&c.noop, "noop", false, "run the ack-only server instead of kfake")
	fs.StringVar(&c.storeDir, "store", "", "with -noop: store what is acknowledged in this directory, doing only the work any storing broker must (the store floor)")
	fs.Func("topic", "seed a topic at start (repeatable)", func(s string) error {
		c.seedTopics = append(c.seedTopics, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if c.storeDir != "" && !c.noop {
		return c, fmt.Errorf("%w: -store needs -noop", errUsage)
	}
	if c.brokers < 1 || c.partitions < 1 || c.port < 0 || c.port > 65535 {
		return c, fmt.Errorf("%w: -brokers and -partitions must be >= 1 and -port in 0..65535", errUsage)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.noop {
		err = serveNoop(ctx, c, stdout, logger)
	} else {
		err = serveKfake(ctx, c, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kfakeserve:", err)
		return 1
	}
	return 0
}

func serveKfake(ctx context.Context, c config, stdout io.Writer) error {
	ports := make([]int, c.brokers)
	for i := range ports {
		if c.port != 0 {
			ports[i] = c.port + i
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(c.brokers),
		kfake.Ports(ports...),
		kfake.DefaultNumPartitions(c.partitions),
	}
	if c.autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if c.dataDir != "" {
		opts = append(opts, kfake.DataDir(c.dataDir))
	}
	if c.syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if len(c.seedTopics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(c.partitions), c.seedTopics...))
	}
	cl, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cl.Close()
	for _, a := range cl.ListenAddrs() {
		fmt.Fprintln(stdout, "kfake listening on", a)
	}
	<-ctx.Done()
	return nil
}

// listen opens the loopback listener for the no-op server.
func listen(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}
