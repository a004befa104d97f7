package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"

	"github.com/weir-broker/weir/log/vfs"
)

// The transaction checkpoint (file transactions.checkpoint) saves the
// transaction state at a clean shutdown, so a clean open does not scan the
// whole log for it. A partition with no open or aborted transaction has no
// such file (a clean open without one starts with no transaction state).
// It is trusted only when the open is clean and it ends at the log end
// offset; otherwise the state is rebuilt from the batch headers. All
// integers big-endian:
//
//	version     int16   1
//	crc         uint32  CRC-32C (Castagnoli) of every byte after this field
//	endOffset   int64   the log end offset it describes
//	nOngoing    int32,  then nOngoing × (producerId int64, firstOffset int64)
//	nAborted    int32,  then nAborted × (producerId, firstOffset, lastOffset int64)
const (
	txnCheckpointName    = "transactions.checkpoint"
	txnCheckpointVersion = 1
	txnCheckpointHeader  = 2 + 4 + 8
)

var errBadTxnCheckpoint = errors.New("log: bad transaction checkpoint")

// marshalTxns encodes t's state at endOffset.
func marshalTxns(t *txnState, endOffset int64) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	be := binary.BigEndian
	out := make([]byte, txnCheckpointHeader, txnCheckpointHeader+8+16*len(t.ongoing)+24*len(t.aborted))
	be.PutUint16(out, txnCheckpointVersion)
	be.PutUint64(out[6:], uint64(endOffset))
	pids := make([]int64, 0, len(t.ongoing))
	for pid := range t.ongoing {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	out = be.AppendUint32(out, uint32(len(pids)))
	for _, pid := range pids {
		out = be.AppendUint64(out, uint64(pid))
		out = be.AppendUint64(out, uint64(t.ongoing[pid]))
	}
	out = be.AppendUint32(out, uint32(len(t.aborted)))
	for _, a := range t.aborted {
		out = be.AppendUint64(out, uint64(a.ProducerID))
		out = be.AppendUint64(out, uint64(a.FirstOffset))
		out = be.AppendUint64(out, uint64(a.LastOffset))
	}
	be.PutUint32(out[2:], crc32.Checksum(out[6:], snapshotCRCTable))
	return out
}

// unmarshalTxns decodes a checkpoint into t and returns its end offset.
// Damage is an error wrapping errBadTxnCheckpoint; t is then unchanged.
func unmarshalTxns(data []byte, t *txnState) (int64, error) {
	be := binary.BigEndian
	bad := func(what string) (int64, error) { return 0, fmt.Errorf("%w: %s", errBadTxnCheckpoint, what) }
	if len(data) < txnCheckpointHeader+8 {
		return bad("short")
	}
	if be.Uint16(data) != txnCheckpointVersion {
		return bad("version")
	}
	if crc32.Checksum(data[6:], snapshotCRCTable) != be.Uint32(data[2:]) {
		return bad("CRC")
	}
	end := int64(be.Uint64(data[6:]))
	rest := data[txnCheckpointHeader:]
	n := int64(be.Uint32(rest))
	rest = rest[4:]
	if n*16+4 > int64(len(rest)) {
		return bad("ongoing count")
	}
	ongoing := make(map[int64]int64, n)
	for range n {
		ongoing[int64(be.Uint64(rest))] = int64(be.Uint64(rest[8:]))
		rest = rest[16:]
	}
	m := int64(be.Uint32(rest))
	rest = rest[4:]
	if m*24 != int64(len(rest)) {
		return bad("aborted count")
	}
	aborted := make([]AbortedTxn, m)
	for i := range aborted {
		aborted[i] = AbortedTxn{ProducerID: int64(be.Uint64(rest)), FirstOffset: int64(be.Uint64(rest[8:])), LastOffset: int64(be.Uint64(rest[16:]))}
		rest = rest[24:]
	}
	t.mu.Lock()
	t.ongoing, t.aborted = ongoing, aborted
	t.mu.Unlock()
	return end, nil
}

// writeTxnCheckpoint saves the transaction state (clean shutdown), or
// removes the checkpoint when there is none to save.
func (p *Partition) writeTxnCheckpoint() error {
	p.txns.mu.Lock()
	empty := len(p.txns.ongoing) == 0 && len(p.txns.aborted) == 0
	p.txns.mu.Unlock()
	if empty {
		if err := p.fs.Remove(filepath.Join(p.dir, txnCheckpointName)); err != nil && !errors.Is(err, vfs.ErrNotExist) {
			return fmt.Errorf("log: remove %s: %w", txnCheckpointName, err)
		}
		return nil
	}
	return writeFileAtomic(p.fs, p.dir, txnCheckpointName, marshalTxns(&p.txns, p.endOffset.Load()))
}

// loadTxnCheckpoint loads the checkpoint if it describes the log as it is
// (ending at the log end offset), and reports whether it did.
func (p *Partition) loadTxnCheckpoint() bool {
	data, err := readFile(p.fs, filepath.Join(p.dir, txnCheckpointName))
	if errors.Is(err, vfs.ErrNotExist) {
		return true // a clean shutdown with no transaction state
	}
	if err != nil {
		p.recovery.problem("transaction checkpoint unreadable: %v", err)
		return false
	}
	var t txnState
	end, err := unmarshalTxns(data, &t)
	if err != nil {
		p.recovery.problem("transaction checkpoint damaged: %v", err)
		return false
	}
	if end != p.endOffset.Load() {
		return false
	}
	p.txns.mu.Lock()
	p.txns.ongoing, p.txns.aborted = t.ongoing, t.aborted
	p.txns.mu.Unlock()
	return true
}
