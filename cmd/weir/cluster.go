package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
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
	cmd.AddCommand(newClusterInfoCmd(cf))
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
			cl, err := cf.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := cf.requestContext(cmd)
			defer cancel()
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
		},
	}
	format = addFormatFlag(cmd, formatText)
	return cmd
}
