package projection_test

import (
	"maps"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer/projection"
)

// TestTwoOwnersNeverDoubleApply runs two runners of the same projection
// version in different groups, so both own every partition at once (what
// a zombie that lost its session looks like): the stored-offset check in
// each apply transaction keeps every record applied exactly once.
func TestTwoOwnersNeverDoubleApply(t *testing.T) {
	eachDB(t, func(t *testing.T, d testDB) {
		e := newEnv(t)
		const topic, parts = "fence", 3
		e.createTopic(t, topic, parts)
		p := newBalances(topic, 1)
		p.duplicatesAllowed = true
		p.create(t, d.db)
		a, _ := start(t, e, d, p, func(c *projection.Config) { c.GroupID = "owner-a"; c.BatchSize = 7 })
		b, _ := start(t, e, d, p, func(c *projection.Config) { c.GroupID = "owner-b"; c.BatchSize = 11 })
		// Small rounds: both owners fetch the same new records at once.
		var all []kafka.Message
		for range 40 {
			all = append(all, e.produceMany(t, topic, parts, 30, 31)...)
		}
		pos := ends(parts, e, t, topic)
		if err := a.WaitFor(waitCtx(t), pos); err != nil {
			t.Fatal(err)
		}
		if err := b.WaitFor(waitCtx(t), pos); err != nil {
			t.Fatal(err)
		}
		if got, want := readModel(t, d.db, "balances_v1"), fold(all); !maps.Equal(got, want) {
			t.Fatalf("read model differs from the fold")
		}
		if n := appliedCount(t, d.db); n != int64(len(all)) {
			t.Fatalf("%d applies for %d records", n, len(all))
		}
	})
}
