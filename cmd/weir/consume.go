package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newConsumeCmd is a placeholder until the command is built; it fails loudly.
func newConsumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "consume",
		Short:  "not built yet",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("consume: not implemented yet")
		},
	}
}
