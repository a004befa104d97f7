// Package log is Weir's storage engine: one Partition per topic partition, a
// directory of segments in Kafka's own file layout, with one writer and
// lock-free readers.
//
// # Files
//
// A partition directory holds, for each segment, three files named by the
// segment's base offset in 20 digits, plus checkpoints:
//
//	00000000000000000000.log        record batches, byte for byte as produced
//	00000000000000000000.index      sparse offset index
//	00000000000000000000.timeindex  sparse time index
//	00000000000000001234.snapshot   idempotent producer state after offset 1233
//	recovery-point-offset-checkpoint  offsets below it are fsynced
//	log-start-offset-checkpoint       the log start offset (DeleteRecords)
//	leader-epoch-checkpoint           epoch → start offset (KIP-101)
//	transactions.checkpoint           open and aborted transactions (clean shutdown only)
//	.weir_cleanshutdown               present only between Close and Open
//
// A .log file is a run of v2 record batches, back to back, with nothing
// between them (package batch documents every header field). Byte offsets
// within a batch, big-endian:
//
//	0          8             12                16      17       21
//	+----------+-------------+-----------------+-------+--------+------------------------+
//	|baseOffset| batchLength | partitionLeader | magic | crc    | attributes .. records  |
//	| int64    | int32       | Epoch int32     | 2     | uint32 | (batchLength-9 bytes)  |
//	+----------+-------------+-----------------+-------+--------+------------------------+
//	                                                             CRC-32C covers 21..end
//
// Append rewrites baseOffset and partitionLeaderEpoch, which sit outside the
// CRC; with LogAppendTime it also sets the timestamp-type bit and
// maxTimestamp (bytes 35..42) and recomputes the CRC. Nothing else changes.
//
// A .index entry is 8 bytes, big-endian, one per index.interval.bytes of log
// (and always for the segment's first batch):
//
//	0                         4                  8
//	+-------------------------+------------------+
//	| relativeOffset uint32   | position uint32  |
//	+-------------------------+------------------+
//
// relativeOffset is the last offset of the batch that starts at position,
// minus the segment's base offset (as Kafka writes it). Entries increase in
// both fields. A lookup takes the largest entry at or below the wanted offset
// and scans batch headers forward from its position.
//
// A .timeindex entry is 12 bytes, big-endian:
//
//	0                     8                         12
//	+---------------------+-------------------------+
//	| timestamp int64 (ms)| relativeOffset uint32   |
//	+---------------------+-------------------------+
//
// Entries are added beside offset index entries when the segment's largest
// timestamp so far grew; relativeOffset is the base offset of the batch that
// holds that timestamp, minus the segment's base offset. When a segment is sealed a last entry records its largest
// timestamp, which retention.ms compares against.
//
// Checkpoints use Kafka's text format: a version line ("0"), a count line,
// then one entry per line ("<offset>", or "<epoch> <offset>" for the epoch
// checkpoint). They are written to a .tmp file, fsynced, renamed into place
// and the directory fsynced. The .snapshot format belongs to the producer
// state code and transactions.checkpoint (binary, CRC-32C) to txn.go and
// txn_checkpoint.go, which draw them; both are written the same way.
//
// # Guarantees
//
//   - Append validates every batch (length, magic, CRC-32C, codec, record
//     count) before writing any; on any error the log is unchanged. Offsets
//     are assigned by rewriting baseOffset; the bytes are stored as given.
//   - Readers never take the writer lock. They read an atomic snapshot of
//     the segment list and the published end of the active segment, which
//     the writer publishes only after the bytes are written.
//   - A region handed to a reader stays readable until the reader releases
//     it: segment files are reference counted and closed only at zero, even
//     if retention or truncation deleted them meanwhile.
//   - A batch whose CRC fails is never returned. Batches written or scanned by
//     this process are known good (a per-segment mark says from where);
//     bytes of a segment trusted at a clean open, or below the recovery point,
//     are CRC-checked by the first read that returns them (a per-segment
//     verified prefix remembers how far), and a bad batch cuts the region
//     short or fails the read with a *CorruptError. Only baseOffset and
//     partitionLeaderEpoch lie outside the CRC: recovery scans check that
//     offsets increase, reads of trusted bytes cannot.
//   - Durability: FsyncNever (default) fsyncs at roll (in the background),
//     Flush and Close, and whenever flush.messages or flush.ms demand;
//     FsyncAlways returns from Append only once the data is durable, sharing
//     fdatasyncs between concurrent appenders (group commit). A failed
//     fsync is sticky: the partition refuses writes until it is reopened
//     (the kernel may have dropped the dirty pages) and never leaves the
//     clean-shutdown marker.
//   - Recovery: Close leaves a marker and a recovery point at the log end, so
//     the next Open reads only the active segment's last index interval. After
//     an unclean stop Open rescans every segment from the one holding the
//     recovery point, CRC-checks each batch, truncates at the first torn or
//     corrupt one (deleting any later segment) and rebuilds the indexes;
//     damaged or missing indexes of older segments are rebuilt too. Open
//     reports what it did in a RecoveryReport and fails only on I/O errors.
//
// Memory held per open segment is bounded and small: the segment struct and
// three open files, about 800 bytes of heap measured on a 1000-segment log
// (plus three file descriptors); index files are read with ReadAt, never
// mapped or preallocated. Only the active segment keeps its offset index in
// memory (8 bytes per entry, in 4 KiB chunks; at most segment.index.bytes).
// A clean open lists the directory, opens and sizes each segment's files
// and reads two index entries per sealed segment: no log data is read
// except the active segment's last index interval.
package log
