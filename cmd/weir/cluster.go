package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newClusterCmd builds `weir cluster` and its verbs.
func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show cluster information",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("cluster: missing verb (see weir cluster --help)")}
		},
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(newClusterInfoCmd(cf), newClusterConfigCmd(cf))
	return cmd
}

// clusterInfo is the JSON/YAML shape of `cluster info`.
type clusterInfo struct {
	ClusterID    string       `json:"cluster_id" yaml:"cluster_id"`
	ControllerID int          `json:"controller_id" yaml:"controller_id"`
	Brokers      []brokerInfo `json:"brokers" yaml:"brokers"`
	Topics       int          `json:"topics" yaml:"topics"`
	Partitions   int          `json:"partitions" yaml:"partitions"`
}

// brokerInfo is one broker of `cluster info`.
type brokerInfo struct {
	ID         int    `json:"id" yaml:"id"`
	Host       string `json:"host" yaml:"host"`
	Port       int    `json:"port" yaml:"port"`
	Rack       string `json:"rack,omitempty" yaml:"rack,omitempty"`
	Controller bool   `json:"controller" yaml:"controller"`
}

func newClusterInfoCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:     "info",
		Aliases: []string{"metadata"},
		Short:   "Show the cluster id, controller and brokers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				md, err := metadata(ctx, cl, nil)
				if err != nil {
					return fmt.Errorf("cluster info: %w", err)
				}
				info := clusterInfo{ClusterID: md.ClusterID, ControllerID: md.Controller.ID, Brokers: []brokerInfo{}}
				for _, b := range md.Brokers {
					info.Brokers = append(info.Brokers, brokerInfo{ID: b.ID, Host: b.Host, Port: b.Port, Rack: b.Rack, Controller: b.ID == md.Controller.ID})
				}
				slices.SortFunc(info.Brokers, func(a, b brokerInfo) int { return a.ID - b.ID })
				for _, t := range md.Topics {
					info.Topics++
					info.Partitions += len(t.Partitions)
				}
				return render(cmd.OutOrStdout(), *format, info, func(w io.Writer, wide bool) error {
					fmt.Fprintf(w, "CLUSTER\n=======\nID          %s\nCONTROLLER  %d\nTOPICS      %d\nPARTITIONS  %d\n\nBROKERS\n=======\n",
						info.ClusterID, info.ControllerID, info.Topics, info.Partitions)
					t := newTable("id", "host", "port")
					if wide {
						t = newTable("id", "host", "port", "rack", "controller")
					}
					for _, b := range info.Brokers {
						id := fmt.Sprint(b.ID)
						if b.Controller {
							id += "*"
						}
						if wide {
							t.row(b.ID, b.Host, b.Port, b.Rack, b.Controller)
						} else {
							t.row(id, b.Host, b.Port)
						}
					}
					return t.write(w)
				})
			})
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// errConfigFailed is returned when some brokers refused a config change.
var errConfigFailed = errors.New("cluster config: operation failed")

// newClusterConfigCmd builds `weir cluster config` (Kafka's dynamic broker
// configs: kafka-configs --entity-type brokers).
func newClusterConfigCmd(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change dynamic broker configs (per broker or cluster-wide default)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("cluster config: missing verb (see weir cluster config --help)")}
		},
	}
	cmd.AddCommand(newClusterConfigDescribeCmd(cf), newClusterConfigAlterCmd(cf, true), newClusterConfigAlterCmd(cf, false))
	return cmd
}

// configTarget is one BROKER config resource and where to send its
// requests: a broker's own configs go to that broker, the cluster-wide
// default ("") to any.
type configTarget struct {
	resource string
	addr     string // "" for any broker
}

// label names the target in output.
func (t configTarget) label() string {
	if t.resource == "" {
		return "cluster default"
	}
	return "broker " + t.resource
}

// configTargetFlags are --broker and --default.
type configTargetFlags struct {
	cmd         *cobra.Command
	broker      int32
	clusterWide bool
}

func addConfigTargetFlags(cmd *cobra.Command) *configTargetFlags {
	f := &configTargetFlags{cmd: cmd}
	cmd.Flags().Int32Var(&f.broker, "broker", -1, "node id of one broker (default: every broker)")
	cmd.Flags().BoolVar(&f.clusterWide, "default", false, "the cluster-wide default instead of per-broker values")
	cmd.MarkFlagsMutuallyExclusive("broker", "default")
	return f
}

// targets resolves the flags against the cluster's brokers.
func (f *configTargetFlags) targets(ctx context.Context, cf *clientFlags) ([]configTarget, error) {
	if f.clusterWide {
		return []configTarget{{}}, nil
	}
	cl, err := cf.client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	md, err := metadata(ctx, cl, nil)
	if err != nil {
		return nil, err
	}
	var out []configTarget
	for _, b := range md.Brokers {
		if f.cmd.Flags().Changed("broker") && int32(b.ID) != f.broker {
			continue
		}
		out = append(out, configTarget{resource: strconv.Itoa(b.ID), addr: net.JoinHostPort(b.Host, strconv.Itoa(b.Port))})
	}
	if len(out) == 0 {
		return nil, usageError{fmt.Errorf("cluster config: broker %d is not in the cluster", f.broker)}
	}
	slices.SortFunc(out, func(a, b configTarget) int {
		n, _ := strconv.Atoi(a.resource)
		m, _ := strconv.Atoi(b.resource)
		return n - m
	})
	return out, nil
}

// send sends req to the target's broker, or to any for the cluster default.
func (t configTarget) send(ctx context.Context, cf *clientFlags, req kmsg.Request) (kmsg.Response, error) {
	if t.addr == "" {
		return kmsgRoundTrip(ctx, cf, req)
	}
	return kmsgRoundTripTo(ctx, t.addr, req)
}

// resourceErr turns a resource's error code and message into an error.
func resourceErr(code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	if msg != nil && *msg != "" {
		return fmt.Errorf("%s", *msg)
	}
	return err
}

// brokerConfigsDescription is the JSON/YAML shape of `cluster config
// describe`, one per broker (or the cluster-wide default).
type brokerConfigsDescription struct {
	Broker  *int          `json:"broker" yaml:"broker"` // null: the cluster-wide default
	Configs []configEntry `json:"configs" yaml:"configs"`
}

func newClusterConfigDescribeCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:   "describe [--broker ID | --default]",
		Short: "Show broker configs with their values and sources",
		Example: `  weir cluster config describe
  weir cluster config describe --default --format json`,
		Args: cobra.NoArgs,
	}
	tf := addConfigTargetFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := cf.requestContext(cmd)
		defer cancel()
		targets, err := tf.targets(ctx, cf)
		if err != nil {
			return err
		}
		var out []brokerConfigsDescription
		for _, t := range targets {
			d, err := describeBrokerConfigs(ctx, cf, t)
			if err != nil {
				return fmt.Errorf("cluster config describe: %s: %w", t.label(), err)
			}
			out = append(out, d)
		}
		return renderDescriptions(cmd.OutOrStdout(), *format, out, writeBrokerConfigsText)
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

func describeBrokerConfigs(ctx context.Context, cf *clientFlags, t configTarget) (brokerConfigsDescription, error) {
	d := brokerConfigsDescription{Configs: []configEntry{}}
	if t.resource != "" {
		id, _ := strconv.Atoi(t.resource)
		d.Broker = &id
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, t.resource
	req.Resources = append(req.Resources, rr)
	resp, err := t.send(ctx, cf, req)
	if err != nil {
		return d, err
	}
	for _, r := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		if err := resourceErr(r.ErrorCode, r.ErrorMessage); err != nil {
			return d, err
		}
		for _, c := range r.Configs {
			src, ok := configSourceNames[int8(c.Source)]
			if !ok {
				src = strconv.Itoa(int(c.Source))
			}
			val := ""
			if c.Value != nil {
				val = *c.Value
			}
			if c.IsSensitive {
				val = "(sensitive)"
			}
			d.Configs = append(d.Configs, configEntry{Name: c.Name, Value: val, Source: src, ReadOnly: c.ReadOnly, Sensitive: c.IsSensitive})
		}
	}
	slices.SortFunc(d.Configs, func(a, b configEntry) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

// writeBrokerConfigsText prints one broker's configs; without --wide the
// ones at Kafka's default are left out.
func writeBrokerConfigsText(w io.Writer, d brokerConfigsDescription, wide bool) error {
	title := "CLUSTER DEFAULT"
	if d.Broker != nil {
		title = fmt.Sprintf("BROKER %d", *d.Broker)
	}
	fmt.Fprintf(w, "%s\n%s\n", title, strings.Repeat("=", len(title)))
	t := newWideTable(wide, []string{"key", "value", "source"}, "read-only")
	for _, c := range d.Configs {
		if wide || c.Source != "default" {
			t.row(c.Name, c.Value, c.Source, c.ReadOnly)
		}
	}
	return t.write(w)
}

// configResult is one broker's outcome of `cluster config set/delete`.
type configResult struct {
	Resource string `json:"resource" yaml:"resource"`
	OK       bool   `json:"ok" yaml:"ok"`
	Error    string `json:"error,omitempty" yaml:"error,omitempty"`
}

// newClusterConfigAlterCmd builds `cluster config set` (set) or `cluster
// config delete`: IncrementalAlterConfigs on each target.
func newClusterConfigAlterCmd(cf *clientFlags, set bool) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:   "delete KEY...",
		Short: "Delete dynamic broker configs (back to the cluster default, the static setting or Kafka's default)",
		Example: `  weir cluster config delete log.retention.ms
  weir cluster config delete log.retention.ms --default`,
		Args: cobra.MinimumNArgs(1),
	}
	if set {
		cmd.Use = "set KEY=VALUE..."
		cmd.Short = "Set dynamic broker configs (per broker, or the cluster-wide default with --default)"
		cmd.Example = `  weir cluster config set log.retention.ms=86400000
  weir cluster config set log.retention.bytes=1073741824 --default`
	}
	tf := addConfigTargetFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var ops []kmsg.IncrementalAlterConfigsRequestResourceConfig
		if set {
			kvs, err := parseKeyValues("set", args)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				op := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				op.Name, op.Value, op.Op = kv[0], kmsg.StringPtr(kv[1]), kmsg.IncrementalAlterConfigOpSet
				ops = append(ops, op)
			}
		} else {
			for _, k := range args {
				op := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				op.Name, op.Op = k, kmsg.IncrementalAlterConfigOpDelete
				ops = append(ops, op)
			}
		}
		ctx, cancel := cf.requestContext(cmd)
		defer cancel()
		targets, err := tf.targets(ctx, cf)
		if err != nil {
			return err
		}
		var results []configResult
		for _, t := range targets {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.Version = 1
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeBroker, t.resource, ops
			req.Resources = append(req.Resources, rr)
			resp, err := t.send(ctx, cf, req)
			if err == nil {
				for _, r := range resp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
					err = errors.Join(err, resourceErr(r.ErrorCode, r.ErrorMessage))
				}
			}
			r := configResult{Resource: t.label(), OK: err == nil}
			if err != nil {
				r.Error = err.Error()
			}
			results = append(results, r)
		}
		return renderOutcomes(cmd, *format, results, "resource", func(r configResult) (string, string) { return r.Resource, r.Error }, errConfigFailed)
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}
