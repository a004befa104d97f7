// Package consumer is Weir's Go client library for services that consume
// topics in a consumer group: at-least-once processing done right.
//
// It is built on segmentio/kafka-go alone; franz-go was not needed: kafka-go's
// ConsumerGroup exposes generations (the rebalance hooks, commits with the
// generation id) and its partition Reader starts at any offset.
//
// A Consumer joins a group with segmentio/kafka-go's ConsumerGroup (the
// classic protocol, eager rebalancing: kafka-go has no cooperative-sticky
// assignor, so every member stops, finishes its in-flight work and commits
// before any partition moves, which is what keeps a record from being
// processed by two members at once). Each assigned partition is read by a
// kafka-go partition Reader positioned at the group's committed offset, or
// at the offset a Seek hook returns (projections keep their offsets in
// their own database).
//
// Processing:
//
//   - Handler is called once per record. Records of one partition are spread
//     over Config.Concurrency workers by key hash, so the records of a key are
//     handled one at a time in offset order while keys run in parallel.
//   - BatchHandler is called with the records fetched together from one
//     partition, in offset order, one batch at a time per partition.
//   - A failed call is retried with exponential backoff and jitter
//     (Config.Backoff). After Config.MaxAttempts attempts the records go to
//     Config.DeadLetterTopic with the error in headers (see the Header*
//     constants); without a dead-letter topic Run stops with a *HandlerError
//     and the record's offset is not committed.
//   - An offset is committed only when the record and every record before it
//     in its partition has been handled (or dead-lettered).
//   - When Run's context is cancelled, or the group rebalances, fetching stops,
//     in-flight calls finish (bounded by Config.ShutdownTimeout), the offsets
//     are committed, then OnRevoked is called.
//
// Lag reports, per partition, the records between the last committed offset
// and the high watermark, and the age of the oldest fetched record not yet
// handled.
//
// Isolation: Config.IsolationLevel is passed to the fetch requests as is.
// Weir has no transactions yet, so read_committed reads the same records as
// read_uncommitted until it does.
//
// The subpackages build on it: consumer/inbox (processed message ids and the
// saga barrier, written in the caller's database transaction) and
// consumer/projection (read models whose consumed offsets live in the same
// database transaction as the rows they produce).
package consumer
