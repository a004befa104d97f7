package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	meta "github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/spf13/cobra"
)

// errTopicFailed is returned when some topics of a create/delete/alter did
// not succeed; each was already reported in the output.
var errTopicFailed = errors.New("topic: operation failed")

// errUnknownTopic is returned when a named topic does not exist.
var errUnknownTopic = errors.New("topic: unknown topic")

// newTopicCmd builds `weir topic` and its verbs.
func newTopicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{errors.New("topic: missing verb (see weir topic --help)")}
		},
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(
		newTopicCreateCmd(cf),
		newTopicListCmd(cf),
		newTopicDescribeCmd(cf),
		newTopicDeleteCmd(cf),
		newTopicAlterConfigCmd(cf),
		newTopicAddPartitionsCmd(cf),
	)
	return cmd
}

// topicResult is the JSON/YAML shape of one topic's create, delete or alter
// outcome.
type topicResult struct {
	Topic string `json:"topic" yaml:"topic"`
	OK    bool   `json:"ok" yaml:"ok"`
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// renderResults prints per-topic outcomes and fails if any failed.
func renderResults(cmd *cobra.Command, f outputFormat, results []topicResult) error {
	return renderOutcomes(cmd, f, results, "topic", func(r topicResult) (string, string) { return r.Topic, r.Error }, errTopicFailed)
}

// resultsFrom maps kafka-go's per-topic error map onto results in the order
// the topics were named.
func resultsFrom(names []string, errs map[string]error) []topicResult {
	out := make([]topicResult, 0, len(names))
	for _, n := range names {
		r := topicResult{Topic: n, OK: true}
		if err := kafkaErr(errs[n]); err != nil {
			r.OK, r.Error = false, err.Error()
		}
		out = append(out, r)
	}
	return out
}

func newTopicCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		partitions, replicas int
		configs              []string
		format               *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Example: `  weir topic create orders -p 6 -r 3 -c retention.ms=86400000
  weir topic create a b c -c cleanup.policy=compact`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if partitions == 0 || partitions < -1 || replicas == 0 || replicas < -1 {
				return usageError{errors.New("topic create: -p and -r must be positive (or -1 for the broker default)")}
			}
			kvs, err := parseKeyValues("-c", configs)
			if err != nil {
				return err
			}
			cl, err := cf.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			req := &kafka.CreateTopicsRequest{}
			for _, name := range args {
				tc := kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: replicas}
				for _, kv := range kvs {
					tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: kv[0], ConfigValue: kv[1]})
				}
				req.Topics = append(req.Topics, tc)
			}
			ctx, cancel := cf.requestContext(cmd)
			defer cancel()
			resp, err := cl.CreateTopics(ctx, req)
			if err != nil {
				return fmt.Errorf("topic create: %w", err)
			}
			return renderResults(cmd, *format, resultsFrom(args, resp.Errors))
		},
	}
	cmd.Flags().IntVarP(&partitions, "partitions", "p", 1, "number of partitions (-1: broker default)")
	cmd.Flags().IntVarP(&replicas, "replicas", "r", -1, "replication factor (-1: broker default)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	format = addFormatFlag(cmd, formatText)
	return cmd
}

func newTopicDeleteCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:               "delete TOPIC...",
		Short:             "Delete topics",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeTopics(cf),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: args})
				if err != nil {
					return fmt.Errorf("topic delete: %w", err)
				}
				return renderResults(cmd, *format, resultsFrom(args, resp.Errors))
			})
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// topicSummary is the JSON/YAML shape of one `topic list` entry.
type topicSummary struct {
	Name       string `json:"name" yaml:"name"`
	Partitions int    `json:"partitions" yaml:"partitions"`
	Replicas   int    `json:"replicas" yaml:"replicas"`
	Internal   bool   `json:"internal" yaml:"internal"`
	Error      string `json:"error,omitempty" yaml:"error,omitempty"`
}

// metadata fetches cluster metadata for topics (nil: all topics).
func metadata(ctx context.Context, cl *adminClient, topics []string) (*kafka.MetadataResponse, error) {
	resp, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	slices.SortFunc(resp.Topics, func(a, b kafka.Topic) int { return strings.Compare(a.Name, b.Name) })
	return resp, nil
}

func newTopicListCmd(cf *clientFlags) *cobra.Command {
	var (
		internal bool
		format   *outputFormat
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				md, err := metadata(ctx, cl, nil)
				if err != nil {
					return fmt.Errorf("topic list: %w", err)
				}
				list := []topicSummary{}
				for _, t := range md.Topics {
					if t.Internal && !internal {
						continue
					}
					s := topicSummary{Name: t.Name, Partitions: len(t.Partitions), Internal: t.Internal}
					if len(t.Partitions) > 0 {
						s.Replicas = len(t.Partitions[0].Replicas)
					}
					if err := kafkaErr(t.Error); err != nil {
						s.Error = err.Error()
					}
					list = append(list, s)
				}
				return render(cmd.OutOrStdout(), *format, list, func(w io.Writer, wide bool) error {
					t := newWideTable(wide, []string{"name", "partitions", "replicas"}, "internal", "error")
					for _, s := range list {
						t.row(s.Name, s.Partitions, s.Replicas, s.Internal, s.Error)
					}
					return t.write(w)
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics")
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// completeTopics completes topic names from the brokers' metadata.
func completeTopics(cf *clientFlags) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		cl, err := cf.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cl.Close()
		ctx, cancel := cf.requestContext(cmd)
		defer cancel()
		md, err := metadata(ctx, cl, nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, t := range md.Topics {
			if strings.HasPrefix(t.Name, prefix) {
				names = append(names, t.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// partitionCount returns topic's partition count. With create it asks as
// Kafka's producers do: the broker creates an unknown topic if it has
// auto.create.topics.enable (else the answer is UNKNOWN_TOPIC_OR_PARTITION),
// and answers the request that creates it with LEADER_NOT_AVAILABLE, so it
// asks again while the error is retriable, until ctx ends.
func partitionCount(ctx context.Context, cl *adminClient, topic string, create bool) (int, error) {
	for {
		m, err := cl.transport.RoundTrip(ctx, cl.Addr, &meta.Request{TopicNames: []string{topic}, AllowAutoTopicCreation: create})
		if err != nil {
			return 0, fmt.Errorf("metadata: %w", err)
		}
		resp, ok := m.(*meta.Response)
		if !ok {
			return 0, fmt.Errorf("metadata: unexpected response %T", m)
		}
		i := slices.IndexFunc(resp.Topics, func(t meta.ResponseTopic) bool { return t.Name == topic })
		if i < 0 {
			return 0, fmt.Errorf("%w %q", errUnknownTopic, topic)
		}
		t := resp.Topics[i]
		err = kafkaErr(kafka.Error(t.ErrorCode))
		switch {
		case errors.Is(err, kafka.UnknownTopicOrPartition) && create:
			return 0, fmt.Errorf("%w %q (the broker does not create topics on first use: weir topic create %s)", errUnknownTopic, topic, topic)
		case errors.Is(err, kafka.UnknownTopicOrPartition):
			return 0, fmt.Errorf("%w %q", errUnknownTopic, topic)
		case err == nil && (len(t.Partitions) > 0 || !create):
			return len(t.Partitions), nil
		case err != nil && (!create || !kafka.Error(t.ErrorCode).Temporary()):
			return 0, fmt.Errorf("topic %q: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("topic %q: %w (last answer: %v)", topic, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newTopicAddPartitionsCmd(cf *clientFlags) *cobra.Command {
	var (
		num    int
		format *outputFormat
	)
	cmd := &cobra.Command{
		Use:               "add-partitions TOPIC... -n COUNT",
		Short:             "Add partitions to existing topics",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeTopics(cf),
		RunE: func(cmd *cobra.Command, args []string) error {
			if num < 1 {
				return usageError{errors.New("topic add-partitions: -n/--num must be at least 1")}
			}
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				req := &kafka.CreatePartitionsRequest{}
				for _, name := range args {
					n, err := partitionCount(ctx, cl, name, false)
					if err != nil {
						return fmt.Errorf("topic add-partitions: %w", err)
					}
					req.Topics = append(req.Topics, kafka.TopicPartitionsConfig{Name: name, Count: int32(n + num)})
				}
				resp, err := cl.CreatePartitions(ctx, req)
				if err != nil {
					return fmt.Errorf("topic add-partitions: %w", err)
				}
				return renderResults(cmd, *format, resultsFrom(args, resp.Errors))
			})
		},
	}
	cmd.Flags().IntVarP(&num, "num", "n", 0, "number of partitions to add")
	_ = cmd.MarkFlagRequired("num")
	format = addFormatFlag(cmd, formatText)
	return cmd
}

func newTopicAlterConfigCmd(cf *clientFlags) *cobra.Command {
	var (
		set, del []string
		format   *outputFormat
	)
	cmd := &cobra.Command{
		Use:               "alter-config TOPIC... [--set key=value]... [--delete key]...",
		Short:             "Set or delete topic configs (incrementally)",
		Example:           `  weir topic alter-config orders --set retention.ms=3600000 --delete cleanup.policy`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeTopics(cf),
		RunE: func(cmd *cobra.Command, args []string) error {
			kvs, err := parseKeyValues("--set", set)
			if err != nil {
				return err
			}
			if len(kvs) == 0 && len(del) == 0 {
				return usageError{errors.New("topic alter-config: nothing to change (use --set or --delete)")}
			}
			var ops []kafka.IncrementalAlterConfigsRequestConfig
			for _, kv := range kvs {
				ops = append(ops, kafka.IncrementalAlterConfigsRequestConfig{Name: kv[0], Value: kv[1], ConfigOperation: kafka.ConfigOperationSet})
			}
			for _, k := range del {
				ops = append(ops, kafka.IncrementalAlterConfigsRequestConfig{Name: k, ConfigOperation: kafka.ConfigOperationDelete})
			}
			req := &kafka.IncrementalAlterConfigsRequest{}
			for _, name := range args {
				req.Resources = append(req.Resources, kafka.IncrementalAlterConfigsRequestResource{
					ResourceType: kafka.ResourceTypeTopic, ResourceName: name, Configs: ops,
				})
			}
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				resp, err := cl.IncrementalAlterConfigs(ctx, req)
				if err != nil {
					return fmt.Errorf("topic alter-config: %w", err)
				}
				errs := make(map[string]error, len(resp.Resources))
				for _, r := range resp.Resources {
					errs[r.ResourceName] = r.Error
				}
				return renderResults(cmd, *format, resultsFrom(args, errs))
			})
		},
	}
	cmd.Flags().StringArrayVarP(&set, "set", "s", nil, "set config key=value (repeatable)")
	cmd.Flags().StringArrayVarP(&del, "delete", "d", nil, "delete config key, back to its default (repeatable)")
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// topicDescription is the JSON/YAML shape of `topic describe`.
type topicDescription struct {
	Name       string            `json:"name" yaml:"name"`
	Internal   bool              `json:"internal" yaml:"internal"`
	Partitions []partitionDetail `json:"partitions" yaml:"partitions"`
	Configs    []configEntry     `json:"configs" yaml:"configs"`
}

// partitionDetail is one partition in `topic describe`.
type partitionDetail struct {
	Partition      int   `json:"partition" yaml:"partition"`
	Leader         int   `json:"leader" yaml:"leader"`
	Replicas       []int `json:"replicas" yaml:"replicas"`
	ISR            []int `json:"isr" yaml:"isr"`
	LogStartOffset int64 `json:"log_start_offset" yaml:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark" yaml:"high_watermark"`
}

// configEntry is one topic config in `topic describe`.
type configEntry struct {
	Name      string `json:"name" yaml:"name"`
	Value     string `json:"value" yaml:"value"`
	Source    string `json:"source" yaml:"source"`
	ReadOnly  bool   `json:"read_only" yaml:"read_only"`
	Sensitive bool   `json:"sensitive" yaml:"sensitive"`
}

// configSourceNames are Kafka's DescribeConfigs source codes.
var configSourceNames = map[int8]string{
	0: "unknown", 1: "dynamic-topic", 2: "dynamic-broker", 3: "dynamic-default-broker",
	4: "static-broker", 5: "default", 6: "dynamic-broker-logger", 7: "client-metrics", 8: "group",
}

func newTopicDescribeCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:               "describe TOPIC...",
		Short:             "Show partitions, leaders, offsets and configs of topics",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeTopics(cf),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				return describeEach(cmd.OutOrStdout(), *format, "topic describe", args, func(name string) (topicDescription, error) {
					return describeTopic(ctx, cl, name)
				}, writeTopicText)
			})
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

func describeTopic(ctx context.Context, cl *adminClient, name string) (topicDescription, error) {
	d := topicDescription{Name: name, Partitions: []partitionDetail{}, Configs: []configEntry{}}
	md, err := metadata(ctx, cl, []string{name})
	if err != nil {
		return d, err
	}
	var topic *kafka.Topic
	for i := range md.Topics {
		if md.Topics[i].Name == name {
			topic = &md.Topics[i]
		}
	}
	if topic == nil || errors.Is(kafkaErr(topic.Error), kafka.UnknownTopicOrPartition) {
		return d, fmt.Errorf("%w %q", errUnknownTopic, name)
	}
	if err := kafkaErr(topic.Error); err != nil {
		return d, fmt.Errorf("topic %q: %w", name, err)
	}
	d.Internal = topic.Internal
	var ids []int
	for _, p := range topic.Partitions {
		ids = append(ids, p.ID)
	}
	offs, err := listOffsets(ctx, cl, name, ids)
	if err != nil {
		return d, err
	}
	for _, p := range topic.Partitions {
		pd := partitionDetail{Partition: p.ID, Leader: p.Leader.ID, Replicas: brokerIDs(p.Replicas), ISR: brokerIDs(p.Isr)}
		pd.LogStartOffset, pd.HighWatermark = offs[p.ID].start, offs[p.ID].end
		d.Partitions = append(d.Partitions, pd)
	}
	slices.SortFunc(d.Partitions, func(a, b partitionDetail) int { return a.Partition - b.Partition })
	cfgs, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: name}},
	})
	if err != nil {
		return d, fmt.Errorf("describe configs of %s: %w", name, err)
	}
	for _, r := range cfgs.Resources {
		if err := kafkaErr(r.Error); err != nil {
			return d, fmt.Errorf("describe configs of %s: %w", name, err)
		}
		for _, e := range r.ConfigEntries {
			src, ok := configSourceNames[e.ConfigSource]
			if !ok {
				src = strconv.Itoa(int(e.ConfigSource))
			}
			val := e.ConfigValue
			if e.IsSensitive {
				val = "(sensitive)"
			}
			d.Configs = append(d.Configs, configEntry{Name: e.ConfigName, Value: val, Source: src, ReadOnly: e.ReadOnly, Sensitive: e.IsSensitive})
		}
	}
	slices.SortFunc(d.Configs, func(a, b configEntry) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

func brokerIDs(bs []kafka.Broker) []int {
	ids := make([]int, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	return ids
}

// writeTopicText prints one topic in rpk's sectioned style.
func writeTopicText(w io.Writer, d topicDescription, wide bool) error {
	fmt.Fprintf(w, "SUMMARY\n=======\nNAME        %s\nPARTITIONS  %d\n", d.Name, len(d.Partitions))
	if len(d.Partitions) > 0 {
		fmt.Fprintf(w, "REPLICAS    %d\n", len(d.Partitions[0].Replicas))
	}
	fmt.Fprintln(w, "\nCONFIGS\n=======")
	ct := newTable("key", "value", "source")
	for _, c := range d.Configs {
		if !wide && c.Source == "default" {
			continue
		}
		ct.row(c.Name, c.Value, c.Source)
	}
	if err := ct.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nPARTITIONS\n==========")
	pt := newTable("partition", "leader", "replicas", "isr", "log-start-offset", "high-watermark")
	for _, p := range d.Partitions {
		pt.row(p.Partition, p.Leader, joinInts(p.Replicas), joinInts(p.ISR), p.LogStartOffset, p.HighWatermark)
	}
	return pt.write(w)
}
