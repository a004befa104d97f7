package compat

import (
	"testing"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// durableMessages is how many acknowledged messages the restart tests
// produce before stopping the broker.
const durableMessages = 100_000

// TestRestart checks that every acknowledged message survives a restart:
// after SIGTERM (clean shutdown, exit status 0) at the default fsync policy,
// and after kill -9 with --fsync always. After the restart the log must also
// continue at the right offsets.
//
// kill -9 ends the process but not the machine, so the page cache survives
// it: this case checks that an acknowledged append has left the process
// (no user-space buffering before the acknowledgement) and that recovery
// without the clean-shutdown marker keeps every acknowledged batch. It cannot
// tell an fsync from none; log's crashable-FS tests do that.
func TestRestart(t *testing.T) {
	tests := []struct {
		name string
		args []string
		stop func(*weirtest.Broker) error
	}{
		{"SIGTERM", nil, (*weirtest.Broker).Stop},
		{"kill -9 with fsync always", []string{"--fsync", "always"}, (*weirtest.Broker).Kill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBroker(t, weirtest.WithArgs(tt.args...))
			requireProcess(t, b)
			const client = "restart"
			topic := topicName("restart")
			createTopic(t, b.Addr(), topic, partitions)
			all := messagesFor(client, durableMessages+300)
			produceKgo(t, b.Addr(), topic, all[:durableMessages])

			if err := tt.stop(b); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if err := b.Restart(); err != nil {
				t.Fatalf("restart after %s: %v", tt.name, err)
			}
			checkEndOffsets(t, b.Addr(), topic, durableMessages)
			verify(t, "kgo after restart", consumeKgo(t, b.Addr(), topic, partitions, durableMessages), all[:durableMessages])

			produceKgo(t, b.Addr(), topic, all[durableMessages:])
			checkEndOffsets(t, b.Addr(), topic, len(all))
			verify(t, "kgo after restart and more produce", consumeKgo(t, b.Addr(), topic, partitions, len(all)), all)
		})
	}
}
