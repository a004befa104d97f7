package broker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/broker/metadata"
)

// TestErrorMessage: response messages keep what went wrong and drop kerr's
// generic description of the code.
func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"bare code", kerr.InvalidRequest, "INVALID_REQUEST"},
		{"code with detail", kafkaError(kerr.InvalidRequest, "Cannot update these configs dynamically: [log.dirs]"), "Cannot update these configs dynamically: [log.dirs]"},
		{"wrapped again", fmt.Errorf("broker: alter %s: %w", "1", kafkaError(kerr.InvalidRequest, "bad value")), "broker: alter 1: bad value"},
		{"sentinel, no kerr", fmt.Errorf("%w: topic 'x' already exists", metadata.ErrTopicExists), fmt.Sprintf("%v: topic 'x' already exists", metadata.ErrTopicExists)},
		{"plain error", errors.New("boom"), "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorMessage(tc.err); got != tc.want {
				t.Fatalf("errorMessage = %q, want %q", got, tc.want)
			}
		})
	}
}
