package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newProduceCmd is a placeholder until the command is built; it fails loudly.
func newProduceCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "produce",
		Short:  "not built yet",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("produce: not implemented yet")
		},
	}
}
