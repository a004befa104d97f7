package main

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/weir-broker/weir/outbox"
	"github.com/weir-broker/weir/outbox/postgres"
	"github.com/weir-broker/weir/outbox/sqlite"
)

// outboxFlags are the flags shared by the outbox commands.
type outboxFlags struct {
	db     string
	config string
	set    []string
}

func addOutboxFlags(cmd *cobra.Command) *outboxFlags {
	f := &outboxFlags{}
	cmd.PersistentFlags().StringVar(&f.db, "db", os.Getenv("WEIR_OUTBOX_DB"),
		"outbox database: postgres://... or sqlite:PATH (env WEIR_OUTBOX_DB)")
	cmd.PersistentFlags().StringVar(&f.config, "config", "",
		"properties file of Debezium Outbox Event Router options (key=value lines)")
	cmd.PersistentFlags().StringArrayVar(&f.set, "set", nil,
		"a Debezium option, e.g. --set route.topic.replacement='${routedByValue}.events' (repeatable)")
	return f
}

// routing parses the Debezium options from --config and --set (later wins).
func (f *outboxFlags) routing() (*outbox.Routing, error) {
	opts := map[string]string{}
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return nil, fmt.Errorf("outbox config: %w", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, usageError{fmt.Errorf("outbox config %s: %q is not key=value", f.config, line)}
			}
			opts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for _, kv := range f.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageError{fmt.Errorf("--set %q: want key=value", kv)}
		}
		opts[k] = v
	}
	r, err := outbox.ParseOptions(opts)
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}

// outboxDB is an opened outbox database.
type outboxDB struct {
	kind   string // "postgres" or "sqlite"
	dsn    string
	pool   *pgxpool.Pool
	sqlDB  *sql.DB
	source interface {
		outbox.Source
		outbox.Admin
	}
	closeSrc func() error
}

func (d *outboxDB) Close() {
	if d.closeSrc != nil {
		_ = d.closeSrc()
	}
	if d.pool != nil {
		d.pool.Close()
	}
	if d.sqlDB != nil {
		_ = d.sqlDB.Close()
	}
}

// openOutboxDB opens the database named by url; with init it creates the
// table first.
func openOutboxDB(ctx context.Context, url string, r *outbox.Routing, init bool) (*outboxDB, error) {
	switch {
	case url == "":
		return nil, usageError{errors.New("--db is required")}
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("outbox: connect: %w", err)
		}
		d := &outboxDB{kind: "postgres", dsn: url, pool: pool}
		if init {
			if err := postgres.Init(ctx, pool, r); err != nil {
				d.Close()
				return nil, err
			}
			return d, nil
		}
		src, err := postgres.NewSource(pool, r)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.source, d.closeSrc = src, src.Close
		return d, nil
	case strings.HasPrefix(url, "sqlite:"):
		db, err := sqlite.Open(strings.TrimPrefix(url, "sqlite:"))
		if err != nil {
			return nil, err
		}
		d := &outboxDB{kind: "sqlite", dsn: url, sqlDB: db}
		if init {
			if err := sqlite.Init(ctx, db, r); err != nil {
				d.Close()
				return nil, err
			}
			return d, nil
		}
		src, err := sqlite.NewSource(db, r)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.source = src
		return d, nil
	}
	return nil, usageError{fmt.Errorf("--db %q: want postgres://... or sqlite:PATH", url)}
}

func newOutboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Transactional outbox: create the table, run the relay, manage parked rows",
		Long: `The transactional outbox (Debezium Outbox Event Router conventions): services write
events into an outbox table in their own transactions; the relay publishes them to
topic outbox.event.<aggregatetype> with key aggregateid, header id and the payload as
value, and deletes them once acknowledged. Delivery is at-least-once: deduplicate on
the id header.`,
	}
	of := addOutboxFlags(cmd)
	cf := addClientFlags(cmd)
	cmd.AddCommand(newOutboxInitCmd(of), newOutboxRelayCmd(of, cf), newOutboxParkedCmd(of),
		newOutboxFixCmd(of, "retry", "Unpark rows so they and their key's later rows are published"),
		newOutboxFixCmd(of, "discard", "Delete parked rows without publishing them"))
	return cmd
}

func newOutboxInitCmd(of *outboxFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the outbox table, indexes and trigger (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := of.routing()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			d, err := openOutboxDB(ctx, of.db, r, true)
			if err != nil {
				return err
			}
			d.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "outbox table %s ready (%s)\n", r.Table, d.kind)
			return nil
		},
	}
}

func newOutboxRelayCmd(of *outboxFlags, cf *clientFlags) *cobra.Command {
	var (
		batch, parallelism, parkAfter int
		poll, lease, retain           time.Duration
		metricsListen, transactions   string
		transactionalID, posTopic     string
	)
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Publish outbox rows to the brokers until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := of.routing()
			if err != nil {
				return err
			}
			addrs, err := cf.addrs()
			if err != nil {
				return err
			}
			if !slices.Contains([]string{"auto", "on", "off"}, transactions) {
				return usageError{fmt.Errorf("--transactions %q: want auto, on or off", transactions)}
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			d, err := openOutboxDB(ctx, of.db, r, false)
			if err != nil {
				return err
			}
			defer d.Close()
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			reg := prometheus.NewRegistry()
			cfg := outbox.Config{
				Source: d.source, Routing: r, BatchSize: batch, Parallelism: parallelism,
				ParkAfter: parkAfter, PollInterval: poll, Logger: logger, Registerer: reg, Retain: retain,
			}
			useTx := false
			switch transactions {
			case "on":
				useTx = true
			case "off":
			case "auto":
				if useTx, err = outbox.SupportsTransactions(ctx, addrs, cf.timeout); err != nil {
					return err
				}
			}
			if useTx {
				id := cmp.Or(transactionalID, "weir-outbox/"+r.Table)
				topic := cmp.Or(posTopic, "weir-outbox-position."+r.Table)
				cfg.Publisher = outbox.NewFranzTxPublisher(addrs, id, topic, r.Table, cf.timeout)
				logger.Info("outbox relay: exactly-once (broker transactions)", "transactional_id", id, "position_topic", topic)
			} else {
				cfg.Publisher = outbox.NewKafkaPublisher(addrs, cf.timeout)
				logger.Info("outbox relay: at-least-once (dedup by header id)")
			}
			defer cfg.Publisher.Close()
			if d.kind == "postgres" {
				lock := postgres.NewLock(d.dsn, postgres.LockKey(r.Table), lease)
				lock.Logger = logger
				cfg.Fence = lock
			}
			if metricsListen != "" {
				ln, err := net.Listen("tcp", metricsListen)
				if err != nil {
					return fmt.Errorf("outbox relay: metrics listener: %w", err)
				}
				srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
				go func() { _ = srv.Serve(ln) }()
				defer srv.Close()
				logger.Info("outbox relay: metrics", "addr", ln.Addr().String())
			}
			relay, err := outbox.NewRelay(cfg)
			if err != nil {
				return err
			}
			return relay.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&batch, "batch", 1000, "most rows fetched per round")
	fl.IntVar(&parallelism, "parallelism", 32, "most keys published at once (one in flight per key)")
	fl.IntVar(&parkAfter, "park-after", 5, "park a row after this many broker rejections")
	fl.DurationVar(&poll, "poll", time.Second, "poll interval when no notification arrives")
	fl.DurationVar(&lease, "lease", 5*time.Second, "PostgreSQL: a stalled leader loses its advisory lock after this")
	fl.DurationVar(&retain, "retain", 0, "keep published rows this long, deleted in batches (0: delete on publish)")
	fl.StringVar(&transactions, "transactions", "auto",
		"exactly-once publish in broker transactions: auto (when the broker lists EndTxn), on, off (at-least-once)")
	fl.StringVar(&transactionalID, "transactional-id", "", "transactional id (default weir-outbox/<table>)")
	fl.StringVar(&posTopic, "position-topic", "", "compacted topic holding the relay position (default weir-outbox-position.<table>)")
	fl.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)")
	return cmd
}

// parkedView is one parked row as printed.
type parkedView struct {
	ID            string    `json:"id" yaml:"id"`
	AggregateType string    `json:"aggregatetype" yaml:"aggregatetype"`
	AggregateID   string    `json:"aggregateid" yaml:"aggregateid"`
	Type          string    `json:"type" yaml:"type"`
	Attempts      int       `json:"attempts" yaml:"attempts"`
	ParkedAt      time.Time `json:"parked_at" yaml:"parked_at"`
	Bytes         int       `json:"bytes" yaml:"bytes"`
	LastError     string    `json:"last_error" yaml:"last_error"`
}

func newOutboxParkedCmd(of *outboxFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List parked rows (their keys' later rows wait behind them)",
		Args:  cobra.NoArgs,
	}
	format := addFormatFlag(cmd, formatText)
	cmd.Flags().IntVar(&limit, "limit", 100, "most rows listed")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r, err := of.routing()
		if err != nil {
			return err
		}
		ctx, stop := signalContext(cmd)
		defer stop()
		d, err := openOutboxDB(ctx, of.db, r, false)
		if err != nil {
			return err
		}
		defer d.Close()
		rows, err := d.source.Parked(ctx, limit)
		if err != nil {
			return err
		}
		views := make([]parkedView, len(rows))
		for i, p := range rows {
			views[i] = parkedView{p.ID, p.AggregateType, p.AggregateID, p.Type, p.Attempts, p.ParkedAt.UTC(), len(p.Payload), p.LastError}
		}
		return render(cmd.OutOrStdout(), *format, views, func(w io.Writer, wide bool) error {
			t := newWideTable(wide, []string{"id", "aggregatetype", "aggregateid", "type", "attempts", "bytes", "parked"}, "last error")
			for _, v := range views {
				t.row(v.ID, v.AggregateType, v.AggregateID, v.Type, v.Attempts, v.Bytes, v.ParkedAt.Format(time.RFC3339), v.LastError)
			}
			return t.write(w)
		})
	}
	return cmd
}

func newOutboxFixCmd(of *outboxFlags, op, short string) *cobra.Command {
	return &cobra.Command{
		Use:   op + " ID...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			r, err := of.routing()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			d, err := openOutboxDB(ctx, of.db, r, false)
			if err != nil {
				return err
			}
			defer d.Close()
			var n int64
			if op == "retry" {
				n, err = d.source.Retry(ctx, ids...)
			} else {
				n, err = d.source.Discard(ctx, ids...)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d of %d rows\n", op, n, len(ids))
			if n < int64(len(ids)) {
				return exitCode(1)
			}
			return nil
		},
	}
}
