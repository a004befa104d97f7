package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// outputFormat is the --format of a read command.
type outputFormat string

// The output formats. text and wide are aligned tables with upper-case
// headers (wide adds columns); json and yaml carry every field under stable
// names.
const (
	formatText outputFormat = "text"
	formatWide outputFormat = "wide"
	formatJSON outputFormat = "json"
	formatYAML outputFormat = "yaml"
)

// String implements pflag.Value.
func (f *outputFormat) String() string { return string(*f) }

// Set implements pflag.Value; an unknown name is a usage error.
func (f *outputFormat) Set(s string) error {
	switch v := outputFormat(strings.ToLower(s)); v {
	case formatText, formatWide, formatJSON, formatYAML:
		*f = v
		return nil
	}
	return fmt.Errorf("unknown format %q (want text, wide, json or yaml)", s)
}

// Type implements pflag.Value.
func (f *outputFormat) Type() string { return "format" }

// addFormatFlag registers --format on cmd with the given default.
func addFormatFlag(cmd *cobra.Command, def outputFormat) *outputFormat {
	f := def
	cmd.Flags().Var(&f, "format", "output format: text, wide, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(
		[]string{"text", "wide", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return &f
}

// table is an aligned text table with upper-case headers.
type table struct {
	header []string
	rows   [][]string
}

// newTable starts a table with the given column headers.
func newTable(header ...string) *table {
	h := make([]string, len(header))
	for i, s := range header {
		h[i] = strings.ToUpper(s)
	}
	return &table{header: h}
}

// newWideTable starts a table of the narrow columns, followed by the extra
// ones for the wide format. Rows may carry every column either way: row
// keeps as many cells as the table has columns.
func newWideTable(wide bool, narrow []string, extra ...string) *table {
	if wide {
		return newTable(append(slices.Clip(narrow), extra...)...)
	}
	return newTable(narrow...)
}

// row appends one row of the first cells, as many as the table has columns;
// values are formatted with %v.
func (t *table) row(cells ...any) {
	cells = cells[:min(len(cells), len(t.header))]
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, r)
}

// write prints the table with two spaces between columns.
func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// render writes v as JSON or YAML, or calls text for the table formats.
func render(w io.Writer, f outputFormat, v any, text func(w io.Writer, wide bool) error) error {
	switch f {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
		return nil
	case formatYAML:
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write yaml: %w", err)
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("write yaml: %w", err)
		}
		return nil
	}
	return text(w, f == formatWide)
}

// renderOutcomes prints the outcome of a command run on several objects,
// one row per object under column (its name, then OK or its error), and
// returns failed with every failure if any object failed. outcome gives an
// object's name and its error message ("" when it succeeded).
func renderOutcomes[T any](cmd *cobra.Command, f outputFormat, results []T, column string, outcome func(T) (name, errMsg string), failed error) error {
	err := render(cmd.OutOrStdout(), f, results, func(w io.Writer, _ bool) error {
		t := newTable(column, "status")
		for _, r := range results {
			name, status := outcome(r)
			if status == "" {
				status = "OK"
			}
			t.row(name, status)
		}
		return t.write(w)
	})
	if err != nil {
		return err
	}
	var msgs []string
	for _, r := range results {
		if name, msg := outcome(r); msg != "" {
			msgs = append(msgs, name+": "+msg)
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%w: %s", failed, strings.Join(msgs, "; "))
	}
	return nil
}

// joinInts formats a list of ids as 1,2,3.
func joinInts[T ~int | ~int32](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// describeEach describes each name in turn, failing with the first error
// (prefixed with verb), and renders the descriptions (renderDescriptions).
func describeEach[T any](w io.Writer, f outputFormat, verb string, names []string, describe func(string) (T, error), text func(io.Writer, T, bool) error) error {
	out := make([]T, 0, len(names))
	for _, n := range names {
		d, err := describe(n)
		if err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		out = append(out, d)
	}
	return renderDescriptions(w, f, out, text)
}

// renderDescriptions renders the descriptions of the named objects a
// describe command was given: one object as itself and several as a list in
// JSON/YAML, and in text each object's block, separated by a blank line.
func renderDescriptions[T any](w io.Writer, f outputFormat, out []T, text func(io.Writer, T, bool) error) error {
	var v any = out
	if len(out) == 1 {
		v = out[0]
	}
	return render(w, f, v, func(w io.Writer, wide bool) error {
		for i, d := range out {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err := text(w, d, wide); err != nil {
				return err
			}
		}
		return nil
	})
}
