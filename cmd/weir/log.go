package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newLogCmd is a placeholder until the command is built; it fails loudly.
func newLogCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "log",
		Short:  "not built yet",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("log: not implemented yet")
		},
	}
}
