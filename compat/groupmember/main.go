// Command groupmember is one consumer-group member for Weir's client
// compatibility suite (package compat): it joins a group with franz-go or
// IBM sarama, processes every record it is given, commits after
// processing, and reports what it did as JSON lines on stdout, so the suite
// can run several members as processes, kill -9 one, and check the group's
// guarantees from the outside.
//
//	groupmember -client franz|sarama -brokers 127.0.0.1:9092 -group G -topic T -name m1 [-instance ID]
//
// Events, one JSON object per line:
//
//	{"m":"m1","ev":"assigned","gen":3,"ps":[0,1]}   partitions gained (franz: incremental)
//	{"m":"m1","ev":"revoked","gen":3,"ps":[0]}      partitions given up (or lost)
//	{"m":"m1","ev":"rec","p":0,"o":41}              record processed (before its commit)
//	{"m":"m1","ev":"commit","p":0,"o":42}           offset committed (next to read)
//
// franz-go runs the cooperative-sticky balancer (KIP-429) and blocks
// rebalances while a polled batch is processed and committed; sarama runs
// its eager range balancer. SIGTERM or SIGINT closes the member cleanly (a
// dynamic member leaves the group). It is a test tool, not part of the weir
// binary, and it talks to 127.0.0.1 brokers only as the suite directs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Group timing for every client: the broker's minimum session timeout, so
// a killed member is noticed as soon as Kafka's rules allow.
const (
	sessionTimeout    = 6 * time.Second
	heartbeatInterval = time.Second
	rebalanceTimeout  = 15 * time.Second
)

// config is the command line.
type config struct {
	client, brokers, group, topic, name, instance string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command-line error; the process exits 2.
var errUsage = errors.New("groupmember: usage")

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("groupmember", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.client, "client", "franz", "client library: franz or sarama")
	fs.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "bootstrap broker host:port")
	fs.StringVar(&c.group, "group", "", "consumer group id")
	fs.StringVar(&c.topic, "topic", "", "topic to consume")
	fs.StringVar(&c.name, "name", "", "member name, also its client id")
	fs.StringVar(&c.instance, "instance", "", "group.instance.id for static membership (KIP-345)")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	if c.group == "" || c.topic == "" || c.name == "" || fs.NArg() > 0 || (c.client != "franz" && c.client != "sarama") {
		fs.Usage()
		return c, fmt.Errorf("%w: -group, -topic and -name are required; -client is franz or sarama", errUsage)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &reporter{w: stdout, name: c.name}
	switch c.client {
	case "franz":
		err = runFranz(ctx, c, out)
	case "sarama":
		err = runSarama(ctx, c, out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "groupmember:", err)
		return 1
	}
	return 0
}

// reporter writes events; safe for concurrent use. Each event is one
// Write, so lines from one process never interleave.
type reporter struct {
	mu   sync.Mutex
	w    io.Writer
	name string
}

func (r *reporter) emit(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprint(r.w, line+"\n")
}

func (r *reporter) partitions(ev string, gen int32, ps []int32) {
	if len(ps) == 0 {
		return
	}
	ps = slices.Sorted(slices.Values(ps))
	b := []byte(fmt.Sprintf(`{"m":%q,"ev":%q,"gen":%d,"ps":[`, r.name, ev, gen))
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", p)
	}
	r.emit(string(b) + "]}")
}

func (r *reporter) record(p int32, o int64) {
	r.emit(fmt.Sprintf(`{"m":%q,"ev":"rec","p":%d,"o":%d}`, r.name, p, o))
}

func (r *reporter) commit(p int32, o int64) {
	r.emit(fmt.Sprintf(`{"m":%q,"ev":"commit","p":%d,"o":%d}`, r.name, p, o))
}
