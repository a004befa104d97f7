// Command weir is the single Weir binary: the broker (`weir serve`), topic,
// group and cluster administration, produce/consume, benchmarks and storage
// tools. It holds no logic of its own beyond flag parsing and output
// formatting; the work is done by the packages it wires together.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// usageError marks an error caused by how the command was called; it exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode is an error that carries a specific process exit code without
// printing anything more (the command already reported).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "weir",
		Short:         "Weir: a Kafka-compatible log and messaging broker",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(
		newServeCmd(),
		newLogCmd(),
		newTopicCmd(),
		newGroupCmd(),
		newProduceCmd(),
		newConsumeCmd(),
		newClusterCmd(),
		newBenchCmd(),
		newOutboxCmd(),
		newTransactionsCmd(),
	)
	return root
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code:
// 0 ok, 1 error, 2 usage.
func run(args []string) int {
	return runIO(args, os.Stdin, os.Stdout, os.Stderr)
}

// runIO is run with explicit standard streams, so tests can drive the CLI
// in-process. Commands read and write through cmd.InOrStdin, OutOrStdout and
// ErrOrStderr.
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	if code, ok := errors.AsType[exitCode](err); ok {
		return int(code)
	}
	fmt.Fprintln(stderr, "weir:", err)
	if _, ok := errors.AsType[usageError](err); ok || isCobraUsage(err) {
		return 2
	}
	return 1
}
