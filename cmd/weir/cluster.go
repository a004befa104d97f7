package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newClusterCmd is a placeholder until the command is built; it fails loudly.
func newClusterCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "cluster",
		Short:  "not built yet",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("cluster: not implemented yet")
		},
	}
}
