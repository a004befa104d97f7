// Package consumer is Weir's Go client library for services that consume
// topics in a consumer group: at-least-once processing done right.
//
// Two clients back it, chosen by the Config:
//
//   - segmentio/kafka-go (the default: Config.Rebalance Eager, read_uncommitted).
//     A Consumer joins the group with kafka-go's ConsumerGroup (the classic
//     protocol, eager rebalancing: every member stops, finishes its in-flight
//     work and commits before any partition moves). Each assigned partition
//     is read by a kafka-go partition Reader positioned at the group's
//     committed offset, or at the offset a Seek hook returns (projections
//     keep their offsets in their own database).
//   - franz-go's kgo, for what kafka-go cannot do: Config.Rebalance
//     CooperativeSticky (kafka-go has only eager assignors) and
//     Config.IsolationLevel kafka.ReadCommitted (kafka-go sends the level but
//     neither drops the records of aborted transactions nor skips control
//     records). It uses kgo's group client with the cooperative-sticky
//     balancer (the range balancer for an eager read_committed consumer),
//     manual commits and BlockRebalanceOnPoll: records are polled and handed
//     to the partition workers with the rebalance held, and the revoke
//     callback lets the workers of the revoked partitions finish every
//     record they were given (bounded by Config.ShutdownTimeout), commits
//     them, calls OnRevoked, and only then lets the rebalance go on; so the
//     next owner starts after the last record handled here, and the
//     partitions this member keeps are neither stopped nor re-read. Seek
//     maps to kgo's AdjustFetchOffsetsFn. Config.Dialer's ClientID and
//     Timeout are used; its TLS and SASL settings are not (yet).
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
//     are committed, then OnRevoked is called. In cooperative-sticky mode
//     this happens only to the partitions that leave this member.
//
// Lag reports, per partition, the records between the last committed offset
// and the high watermark, and the age of the oldest fetched record not yet
// handled.
//
// Isolation: with kafka.ReadCommitted (franz-go backend) the handlers see
// only the records of committed transactions, and a partition is read up to
// its last stable offset.
//
// The subpackages build on it: consumer/inbox (processed message ids and the
// saga barrier, written in the caller's database transaction) and
// consumer/projection (read models whose consumed offsets live in the same
// database transaction as the rows they produce).
package consumer
