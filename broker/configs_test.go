package broker

import (
	"reflect"
	"slices"
	"testing"

	"github.com/weir-broker/weir/broker/replica"
)

// TestTopicConfigDefaultsMatchPartitions checks that every default we
// describe is the value the partitions really use, and that every config the
// partitions accept is described.
func TestTopicConfigDefaultsMatchPartitions(t *testing.T) {
	def := replica.DefaultConfig()
	for _, d := range topicConfigDefs {
		t.Run(d.name, func(t *testing.T) {
			if !slices.Contains(replica.ConfigKeys(), d.name) {
				t.Fatalf("%s is described but the partitions do not accept it", d.name)
			}
			got, err := def.With(map[string]string{d.name: d.def})
			if err != nil {
				t.Fatalf("default %s=%s rejected: %v", d.name, d.def, err)
			}
			if !reflect.DeepEqual(got, def) {
				t.Fatalf("described default %s=%s differs from the partitions' default", d.name, d.def)
			}
		})
	}
	for _, k := range replica.ConfigKeys() {
		if _, ok := topicConfigDefFor(k); !ok {
			t.Errorf("partitions accept %s but DescribeConfigs does not list it", k)
		}
	}
}
