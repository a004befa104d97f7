package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newTransactionsCmd builds `weir transactions list|describe`. kafka-go has
// no ListTransactions or DescribeTransactions (its protocol table stops at
// key 51), so these two requests are encoded with kmsg and sent over a
// plain connection to the first reachable broker, which on one node is the
// transaction coordinator of every id.
func newTransactionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "transactions",
		Aliases: []string{"txn"},
		Short:   "List and describe transactional producers (KIP-664)",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{errors.New("transactions: missing verb (see weir transactions --help)")}
		},
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(newTransactionsListCmd(cf), newTransactionsDescribeCmd(cf))
	return cmd
}

// txnSummary is one `transactions list` entry.
type txnSummary struct {
	TransactionalID string `json:"transactional_id" yaml:"transactional_id"`
	ProducerID      int64  `json:"producer_id" yaml:"producer_id"`
	State           string `json:"state" yaml:"state"`
}

func newTransactionsListCmd(cf *clientFlags) *cobra.Command {
	var (
		format *outputFormat
		states []string
		pids   []int64
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids with their producer id and state",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := cf.requestContext(cmd)
			defer cancel()
			req := kmsg.NewPtrListTransactionsRequest()
			req.StateFilters, req.ProducerIDFilters = states, pids
			resp, err := kmsgRoundTrip(ctx, cf, req)
			if err != nil {
				return fmt.Errorf("transactions list: %w", err)
			}
			lr := resp.(*kmsg.ListTransactionsResponse)
			if err := kerr.ErrorForCode(lr.ErrorCode); err != nil {
				return fmt.Errorf("transactions list: %w", err)
			}
			if len(lr.UnknownStateFilters) > 0 {
				return usageError{fmt.Errorf("transactions list: unknown state %s", strings.Join(lr.UnknownStateFilters, ", "))}
			}
			list := []txnSummary{}
			for _, s := range lr.TransactionStates {
				list = append(list, txnSummary{TransactionalID: s.TransactionalID, ProducerID: s.ProducerID, State: s.TransactionState})
			}
			return render(cmd.OutOrStdout(), *format, list, func(w io.Writer, _ bool) error {
				t := newTable("transactional-id", "producer-id", "state")
				for _, s := range list {
					t.row(s.TransactionalID, s.ProducerID, s.State)
				}
				return t.write(w)
			})
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort)")
	cmd.Flags().Int64SliceVar(&pids, "producer-id", nil, "only these producer ids")
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// txnDescription is one `transactions describe` entry.
type txnDescription struct {
	TransactionalID string   `json:"transactional_id" yaml:"transactional_id"`
	Error           string   `json:"error,omitempty" yaml:"error,omitempty"`
	State           string   `json:"state" yaml:"state"`
	ProducerID      int64    `json:"producer_id" yaml:"producer_id"`
	ProducerEpoch   int16    `json:"producer_epoch" yaml:"producer_epoch"`
	TimeoutMs       int32    `json:"timeout_ms" yaml:"timeout_ms"`
	Started         string   `json:"started,omitempty" yaml:"started,omitempty"`
	Partitions      []string `json:"partitions" yaml:"partitions"`
}

func newTransactionsDescribeCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show a transactional id's state, producer id and epoch, timeout and partitions",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := cf.requestContext(cmd)
			defer cancel()
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = args
			resp, err := kmsgRoundTrip(ctx, cf, req)
			if err != nil {
				return fmt.Errorf("transactions describe: %w", err)
			}
			out := []txnDescription{}
			failed := false
			for _, s := range resp.(*kmsg.DescribeTransactionsResponse).TransactionStates {
				d := txnDescription{TransactionalID: s.TransactionalID, State: s.State, ProducerID: s.ProducerID,
					ProducerEpoch: s.ProducerEpoch, TimeoutMs: s.TimeoutMillis, Partitions: []string{}}
				if err := kerr.ErrorForCode(s.ErrorCode); err != nil {
					d.Error, failed = err.Error(), true
				}
				if s.StartTimestamp >= 0 {
					d.Started = time.UnixMilli(s.StartTimestamp).UTC().Format(time.RFC3339Nano)
				}
				for _, t := range s.Topics {
					for _, p := range t.Partitions {
						d.Partitions = append(d.Partitions, t.Topic+"-"+strconv.Itoa(int(p)))
					}
				}
				out = append(out, d)
			}
			err = render(cmd.OutOrStdout(), *format, out, func(w io.Writer, _ bool) error {
				t := newTable("transactional-id", "state", "producer-id", "epoch", "timeout-ms", "started", "partitions")
				for _, d := range out {
					state := d.State
					if d.Error != "" {
						state = d.Error
					}
					t.row(d.TransactionalID, state, d.ProducerID, d.ProducerEpoch, d.TimeoutMs, orDash(d.Started), orDash(strings.Join(d.Partitions, ",")))
				}
				return t.write(w)
			})
			if err == nil && failed {
				return exitCode(1)
			}
			return err
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// kmsgRoundTrip sends req (at its highest version Weir serves: 0 for the
// two admin requests used here) to the first broker that accepts a
// connection and returns the decoded response.
func kmsgRoundTrip(ctx context.Context, cf *clientFlags, req kmsg.Request) (kmsg.Response, error) {
	addrs, err := cf.addrs()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, addr := range addrs {
		resp, err := kmsgRoundTripTo(ctx, addr, req)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, errors.Join(errs...)
}

// kmsgRoundTripTo frames one request (Kafka's size-prefixed request
// header and body), reads the one response and decodes it.
func kmsgRoundTripTo(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	const corr = 1
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("weir-cli")).AppendRequest(nil, req, corr)
	if _, err := conn.Write(frame); err != nil {
		return nil, fmt.Errorf("write %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	r := bufio.NewReader(conn)
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("%s response of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("%s response for correlation id %d", kmsg.NameForKey(req.Key()), got)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() {
		// The flexible response header ends with its tagged fields: none.
		if len(body) == 0 || body[0] != 0 {
			return nil, fmt.Errorf("%s response: unexpected header tags", kmsg.NameForKey(req.Key()))
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}
