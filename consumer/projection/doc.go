// Package projection runs CQRS read models (projections) fed by topics,
// exactly once, without broker transactions: each batch is applied by the
// projection's Apply in a database transaction that also stores the
// consumed offsets, so the read model and its position commit or roll back
// together. On assignment the Runner seeks each partition to the offset
// stored in the database, not to the group's committed offset (the group
// offsets are committed too, for lag tools, but never read).
//
// Ownership: the Runner consumes in a consumer group (package consumer), so
// a partition has one owner at a time. As a second line of defence against
// a zombie (a worker that lost its partition but has not noticed), the
// stored offset is read (FOR UPDATE on PostgreSQL) in every apply
// transaction and records below it are dropped: a record is never applied
// twice.
//
// Tables, created by CreateTables (prefix "weir_projection"):
//
//	weir_projection_offsets  (projection, version, topic, part) -> next_offset, updated_at
//	weir_projection_parked   (projection, version, topic, part, record_offset) -> record_key, record_value, error, parked_at
//	weir_projection_live     (projection, version, member) -> beat_at, busy_since
//	weir_projection_serving  (projection) -> version
//
// SQLite: open the database with _txlock=immediate (modernc.org/sqlite DSN
// parameter) and a busy_timeout, so apply transactions take the write lock
// when they begin; with deferred transactions a concurrent writer makes the
// transaction fail with SQLITE_BUSY and the batch is retried.
//
// Poison events: when Apply fails on a batch, the batch is applied again one
// record at a time; a record that fails ParkAfter times is parked (stored
// with its error, its offset consumed) and so is every later record of the
// same key in that partition, in order, while other keys flow. Parked lists
// them; Retry applies a key's parked records in order and removes them;
// Discard drops them.
//
// Schema evolution: Config.Upcasters rewrite old events (by their type and
// schema.version headers) before Apply, live and in a rebuild alike.
//
// Read-your-writes: WaitFor(ctx, pos) returns once the stored offsets are
// past the positions (the offsets of produced records). The offsets commit in
// the same transaction as the rows, so the rows are visible by then.
//
// Liveness: every Runner writes a heartbeat row each HeartbeatInterval unless
// an Apply call has been running for longer than StallAfter. A stale
// heartbeat means a stalled (or dead) runner; a fresh heartbeat with old
// progress (updated_at) means an idle one. See Health.
//
// Blue/green rebuild: run a Runner for the next Version of a projection
// (which writes to its own tables, named by its version) next to the one
// that serves. It builds from offset 0 in its own group. CutoverWhenCaughtUp
// waits until its stored offsets reach the high watermarks, then, in one
// transaction, makes it the serving version (weir_projection_serving).
// Readers call Serving to pick the tables to read; the old tables stay
// readable until the caller drops them, so no read fails across the switch.
package projection
