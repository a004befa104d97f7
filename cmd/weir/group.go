package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
)

// newGroupCmd builds `weir group` and its verbs.
func newGroupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, reset the offsets of and delete consumer groups",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{errors.New("group: missing verb (see weir group --help)")}
		},
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(
		newGroupListCmd(cf),
		newGroupDescribeCmd(cf),
		newGroupResetOffsetsCmd(cf),
		newGroupDeleteCmd(cf),
	)
	return cmd
}

// completeGroups completes group ids from the brokers' ListGroups.
func completeGroups(cf *clientFlags) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		cl, err := cf.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cl.Close()
		ctx, cancel := cf.requestContext(cmd)
		defer cancel()
		resp, err := cl.ListGroups(ctx, &kafka.ListGroupsRequest{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var ids []string
		for _, g := range resp.Groups {
			if strings.HasPrefix(g.GroupID, prefix) {
				ids = append(ids, g.GroupID)
			}
		}
		slices.Sort(ids)
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// groupSummary is the JSON/YAML shape of one `group list` entry.
type groupSummary struct {
	Group        string `json:"group" yaml:"group"`
	ProtocolType string `json:"protocol_type" yaml:"protocol_type"`
	State        string `json:"state" yaml:"state"`
	Members      int    `json:"members" yaml:"members"`
	Coordinator  int    `json:"coordinator" yaml:"coordinator"`
}

func newGroupListCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state and member count",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				resp, err := cl.ListGroups(ctx, &kafka.ListGroupsRequest{})
				if err == nil {
					err = kafkaErr(resp.Error)
				}
				if err != nil {
					return fmt.Errorf("group list: %w", err)
				}
				list := []groupSummary{}
				var ids []string
				for _, g := range resp.Groups {
					list = append(list, groupSummary{Group: g.GroupID, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
					ids = append(ids, g.GroupID)
				}
				slices.SortFunc(list, func(a, b groupSummary) int { return strings.Compare(a.Group, b.Group) })
				if len(ids) > 0 {
					gs, err := describeGroups(ctx, cl, ids)
					if err != nil {
						return fmt.Errorf("group list: %w", err)
					}
					for _, g := range gs {
						if i := slices.IndexFunc(list, func(s groupSummary) bool { return s.Group == g.GroupID }); i >= 0 {
							list[i].State, list[i].Members = g.GroupState, len(g.Members)
						}
					}
				}
				return render(cmd.OutOrStdout(), *format, list, func(w io.Writer, wide bool) error {
					t := newWideTable(wide, []string{"group", "state", "members"}, "protocol-type", "coordinator")
					for _, s := range list {
						t.row(s.Group, s.State, s.Members, s.ProtocolType, s.Coordinator)
					}
					return t.write(w)
				})
			})
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

func newGroupDescribeCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:               "describe GROUP...",
		ValidArgsFunction: completeGroups(cf),
		Short:             "Show a group's state, members, assignments, committed offsets and lag",
		Args:              cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				return describeEach(cmd.OutOrStdout(), *format, "group describe", args, func(id string) (groupDescription, error) {
					return describeGroup(ctx, cl, id)
				}, writeGroupText)
			})
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// writeGroupText prints one group in the sectioned style of topic describe.
func writeGroupText(w io.Writer, d groupDescription, wide bool) error {
	fmt.Fprintf(w, "GROUP         %s\nSTATE         %s\nPROTOCOL      %s\nMEMBERS       %d\nTOTAL-LAG     %d\n",
		d.Group, d.State, dash(strings.Trim(d.ProtocolType+"/"+d.Protocol, "/")), len(d.Members), d.TotalLag)
	fmt.Fprintln(w, "\nMEMBERS\n=======")
	mt := newTable("client-id", "host", "assignments")
	if wide {
		mt = newTable("member-id", "instance-id", "client-id", "host", "assignments")
	}
	for _, m := range d.Members {
		var as []string
		for _, tp := range m.Assignments {
			as = append(as, tp.Topic+":"+joinInts(tp.Partitions))
		}
		a := strings.Join(as, " ")
		if m.AssignmentError != "" {
			a = "(" + m.AssignmentError + ")"
		}
		if wide {
			mt.row(m.MemberID, dash(m.InstanceID), m.ClientID, m.ClientHost, dash(a))
		} else {
			mt.row(m.ClientID, m.ClientHost, dash(a))
		}
	}
	if err := mt.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nOFFSETS\n=======")
	ot := newWideTable(wide, []string{"topic", "partition", "current-offset", "log-end-offset", "lag", "client-id"}, "member-id")
	for _, o := range d.Offsets {
		cur, end, lag := "-", "-", "-"
		if o.CommittedOffset >= 0 {
			cur = fmt.Sprint(o.CommittedOffset)
		}
		if o.LogEndOffset >= 0 {
			end = fmt.Sprint(o.LogEndOffset)
		}
		if o.Lag != nil {
			lag = fmt.Sprint(*o.Lag)
		}
		ot.row(o.Topic, o.Partition, cur, end, lag, dash(o.ClientID), dash(o.MemberID))
	}
	return ot.write(w)
}

// dash is s, or "-" when s is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resetFlags are the target options of reset-offsets; exactly one is set.
type resetFlags struct {
	earliest, latest bool
	offset, shift    int64
	datetime         string
}

// spec turns the flags into a resetSpec; set tells which flags were given.
func (f *resetFlags) spec(set func(string) bool, now time.Time) (resetSpec, error) {
	var specs []resetSpec
	if f.earliest {
		specs = append(specs, resetSpec{kind: resetEarliest})
	}
	if f.latest {
		specs = append(specs, resetSpec{kind: resetLatest})
	}
	if set("to-offset") {
		if f.offset < 0 {
			return resetSpec{}, errors.New("--to-offset must not be negative")
		}
		specs = append(specs, resetSpec{kind: resetOffset, n: f.offset})
	}
	if set("shift-by") {
		specs = append(specs, resetSpec{kind: resetShift, n: f.shift})
	}
	if set("to-datetime") {
		st, err := parseStart("@"+f.datetime, now)
		if err != nil || st.kind != "time" {
			return resetSpec{}, fmt.Errorf("--to-datetime %q: want RFC 3339, unix milliseconds or a negative duration", f.datetime)
		}
		specs = append(specs, resetSpec{kind: resetDatetime, at: st.at})
	}
	if len(specs) != 1 {
		return resetSpec{}, errors.New("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
	}
	return specs[0], nil
}

func newGroupResetOffsetsCmd(cf *clientFlags) *cobra.Command {
	var (
		rf         resetFlags
		topics     []string
		partitions []int
		execute    bool
		format     *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC (--to-earliest|--to-latest|--to-offset N|--to-datetime T|--shift-by N) [--execute]",
		Short: "Plan, or with --execute commit, new offsets for an inactive group",
		Long: `Compute new committed offsets for a group and print the plan. Nothing
changes unless --execute is given. Targets beyond a partition's log are
clamped to its log start offset or high watermark. As with Kafka's tool, the
group must have no active members: stop its consumers first.

--to-datetime takes RFC 3339, unix milliseconds, or a negative duration
relative to now (-1h): the first offset at or after that time, or the end.`,
		Example: `  weir group reset-offsets billing --topic orders --to-earliest
  weir group reset-offsets billing --topic orders --to-datetime -2h --execute
  weir group reset-offsets billing --topic orders -p 0 --shift-by -100 --execute`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeGroups(cf),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := rf.spec(cmd.Flags().Changed, time.Now())
			if err != nil {
				return usageError{fmt.Errorf("group reset-offsets: %w", err)}
			}
			if len(topics) == 0 {
				return usageError{errors.New("group reset-offsets: --topic is required")}
			}
			group := args[0]
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				gs, err := describeGroups(ctx, cl, []string{group})
				if err != nil {
					return fmt.Errorf("group reset-offsets: %w", err)
				}
				for _, g := range gs {
					if err := kafkaErr(kafka.Error(g.ErrorCode)); err != nil {
						return fmt.Errorf("group reset-offsets: group %q: %w", group, err)
					}
					if len(g.Members) > 0 || (g.GroupState != "Empty" && g.GroupState != "Dead" && g.GroupState != "") {
						return fmt.Errorf("group reset-offsets: %w: %q is %s with %d members; offsets can only be reset while it has none",
							errGroupActive, group, g.GroupState, len(g.Members))
					}
				}
				rows, err := planReset(ctx, cl, group, topics, partitions, spec)
				if err != nil {
					return fmt.Errorf("group reset-offsets: %w", err)
				}
				if execute {
					if err := commitPlan(ctx, cl, group, rows); err != nil {
						return fmt.Errorf("group reset-offsets: %w", err)
					}
				}
				err = render(cmd.OutOrStdout(), *format, rows, func(w io.Writer, _ bool) error {
					t := newTable("group", "topic", "partition", "current-offset", "new-offset")
					for _, r := range rows {
						cur := "-"
						if r.CurrentOffset >= 0 {
							cur = fmt.Sprint(r.CurrentOffset)
						}
						t.row(r.Group, r.Topic, r.Partition, cur, r.NewOffset)
					}
					return t.write(w)
				})
				if err == nil && !execute {
					fmt.Fprintln(cmd.ErrOrStderr(), "dry run: no offsets changed; add --execute to commit them")
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&topics, "topic", "t", nil, "topic whose offsets to reset (repeatable)")
	f.IntSliceVarP(&partitions, "partition", "p", nil, "only these partitions (default: all)")
	f.BoolVar(&rf.earliest, "to-earliest", false, "reset to the log start offset")
	f.BoolVar(&rf.latest, "to-latest", false, "reset to the high watermark")
	f.Int64Var(&rf.offset, "to-offset", 0, "reset to this offset")
	f.StringVar(&rf.datetime, "to-datetime", "", "reset to the first offset at or after this time")
	f.Int64Var(&rf.shift, "shift-by", 0, "move the committed offset by N (negative: back)")
	f.BoolVar(&execute, "execute", false, "commit the plan (default: print it only)")
	format = addFormatFlag(cmd, formatText)
	return cmd
}

// groupResult is the JSON/YAML shape of one group's delete outcome.
type groupResult struct {
	Group string `json:"group" yaml:"group"`
	OK    bool   `json:"ok" yaml:"ok"`
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

func newGroupDeleteCmd(cf *clientFlags) *cobra.Command {
	var format *outputFormat
	cmd := &cobra.Command{
		Use:               "delete GROUP...",
		ValidArgsFunction: completeGroups(cf),
		Short:             "Delete inactive groups and their committed offsets",
		Args:              cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.admin(cmd, func(ctx context.Context, cl *adminClient) error {
				var results []groupResult
				for _, id := range args {
					// One request per group: kafka-go sends a request to the
					// coordinator of its first group only.
					resp, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{id}})
					if err == nil {
						err = kafkaErr(resp.Errors[id])
					}
					r := groupResult{Group: id, OK: err == nil}
					if err != nil {
						r.Error = err.Error()
					}
					results = append(results, r)
				}
				return renderOutcomes(cmd, *format, results, "group", func(r groupResult) (string, string) { return r.Group, r.Error }, errGroupFailed)
			})
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}
