package log

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrOffsetOutOfRange is returned for reads outside
	// [LogStartOffset, LogEndOffset] (Kafka's OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrNotFound is returned by lookups that find nothing, such as
	// OffsetForTimestamp past the newest timestamp.
	ErrNotFound = errors.New("log: not found")
	// ErrClosed is returned by every operation on a closed partition.
	ErrClosed = errors.New("log: partition closed")
	// ErrCorrupt marks data on disk that fails its checks. *CorruptError
	// unwraps to it.
	ErrCorrupt = errors.New("log: corrupt data")
	// ErrInvalidOffset is returned by Append with KeepOffsets when the batches'
	// offsets do not follow the log end offset or each other.
	ErrInvalidOffset = errors.New("log: batch offsets out of order")
	// ErrEmptyAppend is returned by Append when it is given no batch.
	ErrEmptyAppend = errors.New("log: no record batch to append")
	// ErrInvalidConfig is returned (wrapped) for a config value out of range.
	ErrInvalidConfig = errors.New("log: invalid config")
)

// CorruptError describes damaged bytes found in a partition's files. It
// unwraps to ErrCorrupt.
type CorruptError struct {
	Path   string // file the damage is in
	Pos    int64  // byte position in that file
	Offset int64  // offset of the damaged batch if known, else -1
	Reason string // what check failed
}

// Error implements error.
func (e *CorruptError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("log: corrupt data in %s at position %d (offset %d): %s", e.Path, e.Pos, e.Offset, e.Reason)
	}
	return fmt.Sprintf("log: corrupt data in %s at position %d: %s", e.Path, e.Pos, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }
