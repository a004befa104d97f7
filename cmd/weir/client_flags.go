package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
)

// envBrokers names the environment variable that sets the default for
// -b/--brokers.
const envBrokers = "WEIR_BROKERS"

// defaultBrokers is used when neither -b nor WEIR_BROKERS is given.
const defaultBrokers = "127.0.0.1:9092"

// errNoBrokers is returned when -b/--brokers lists no address.
var errNoBrokers = errors.New("weir: no broker addresses (-b or " + envBrokers + ")")

// clientFlags are the connection flags shared by every client command.
type clientFlags struct {
	brokers []string
	timeout time.Duration
}

// addClientFlags registers -b/--brokers and --timeout on cmd (persistent, so
// subcommands inherit them) and returns where they land.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	def := os.Getenv(envBrokers)
	if def == "" {
		def = defaultBrokers
	}
	cmd.PersistentFlags().StringSliceVarP(&f.brokers, "brokers", "b", strings.Split(def, ","),
		"comma-separated broker host:port list (env "+envBrokers+")")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 10*time.Second,
		"time limit for each admin request and for connecting")
	return f
}

// addrs returns the broker list without blanks.
func (f *clientFlags) addrs() ([]string, error) {
	var out []string
	for _, b := range f.brokers {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return nil, usageError{fmt.Errorf("broker address %q: %w", b, err)}
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, usageError{errNoBrokers}
	}
	return out, nil
}

// transport builds a kafka-go transport for one command run; the caller
// closes it with CloseIdleConnections.
func (f *clientFlags) transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    "weir",
		DialTimeout: f.timeout,
		MetadataTTL: time.Second,
	}
}

// adminClient is a kafka-go client for admin requests plus what it needs
// closed after use.
type adminClient struct {
	*kafka.Client
	transport *kafka.Transport
}

// Close releases the client's connections and background goroutines.
func (c *adminClient) Close() { c.transport.CloseIdleConnections() }

// client returns an admin client bound to the brokers.
func (f *clientFlags) client() (*adminClient, error) {
	addrs, err := f.addrs()
	if err != nil {
		return nil, err
	}
	t := f.transport()
	return &adminClient{
		Client:    &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: f.timeout, Transport: t},
		transport: t,
	}, nil
}

// requestContext bounds one admin round of a command by --timeout and by
// Ctrl-C.
func (f *clientFlags) requestContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx, stop := signalContext(cmd)
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return ctx, func() { cancel(); stop() }
}

// admin runs do with an admin client and a request context
// (requestContext), releasing both after: the frame of the admin commands.
func (f *clientFlags) admin(cmd *cobra.Command, do func(ctx context.Context, cl *adminClient) error) error {
	cl, err := f.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := f.requestContext(cmd)
	defer cancel()
	return do(ctx, cl)
}

// signalContext is the command's context, cancelled on SIGINT or SIGTERM.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// kafkaErr turns a kafka-go result error into nil for success; kafka-go
// reports some successes as a zero kafka.Error.
func kafkaErr(err error) error {
	if err == nil {
		return nil
	}
	if ke, ok := errors.AsType[kafka.Error](err); ok && ke == 0 {
		return nil
	}
	return err
}

// parseKeyValues parses repeated k=v flags, keeping order.
func parseKeyValues(flag string, kvs []string) ([][2]string, error) {
	out := make([][2]string, 0, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("%s %q: want key=value", flag, kv)}
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
