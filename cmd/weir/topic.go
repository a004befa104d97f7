package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newTopicCmd is a placeholder until the command is built; it fails loudly.
func newTopicCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "topic",
		Short:  "not built yet",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("topic: not implemented yet")
		},
	}
}
