package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/weir-broker/weir/consumer"
)

// heartbeat writes the liveness row every HeartbeatInterval until ctx ends,
// except while one Apply call has run longer than StallAfter.
func (r *Runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(r.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		busy := r.busySince.Load()
		now := time.Now()
		if busy == 0 || now.Sub(time.Unix(0, busy)) < r.cfg.StallAfter {
			_, err := r.cfg.DB.ExecContext(ctx, r.d.sql(`INSERT INTO weir_projection_live (projection, version, member, beat_at, busy_since)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (projection, version, member) DO UPDATE SET beat_at = excluded.beat_at, busy_since = excluded.busy_since`),
				r.name, r.version, r.cfg.Member, now.UnixMilli(), busy/int64(time.Millisecond))
			if err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("projection: heartbeat", "projection", r.name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Member is the liveness of one runner of a projection version.
type Member struct {
	// Member is the runner's name (Config.Member).
	Member string
	// BeatAt is its last heartbeat.
	BeatAt time.Time
	// BusySince is when the Apply call running at that heartbeat began
	// (zero if none).
	BusySince time.Time
}

// Health is the liveness and progress of a projection version.
type Health struct {
	// Members are the runners that ever beat, sorted by name.
	Members []Member
	// LastProgress is the last time any stored offset moved.
	LastProgress time.Time
}

// Alive reports whether some member beat within d of now. A projection that
// is alive but makes no progress is idle (or has no new records); one that
// is not alive is stalled or stopped.
func (h Health) Alive(now time.Time, d time.Duration) bool {
	for _, m := range h.Members {
		if now.Sub(m.BeatAt) <= d {
			return true
		}
	}
	return false
}

// Health reads the liveness rows and the progress of this runner's
// projection version.
func (r *Runner) Health(ctx context.Context) (Health, error) {
	var h Health
	rows, err := r.cfg.DB.QueryContext(ctx, r.d.sql(`SELECT member, beat_at, busy_since FROM weir_projection_live WHERE projection = ? AND version = ? ORDER BY member`), r.name, r.version)
	if err != nil {
		return h, fmt.Errorf("projection: health: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m Member
		var beat, busy int64
		if err := rows.Scan(&m.Member, &beat, &busy); err != nil {
			return h, fmt.Errorf("projection: health: %w", err)
		}
		m.BeatAt = time.UnixMilli(beat)
		if busy != 0 {
			m.BusySince = time.UnixMilli(busy)
		}
		h.Members = append(h.Members, m)
	}
	if err := rows.Err(); err != nil {
		return h, fmt.Errorf("projection: health: %w", err)
	}
	var last *int64
	err = r.cfg.DB.QueryRowContext(ctx, r.d.sql(`SELECT MAX(updated_at) FROM weir_projection_offsets WHERE projection = ? AND version = ?`), r.name, r.version).Scan(&last)
	if err != nil {
		return h, fmt.Errorf("projection: health: %w", err)
	}
	if last != nil {
		h.LastProgress = time.UnixMilli(*last)
	}
	return h, nil
}

// Parked is a record parked by the runner.
type Parked struct {
	// Record is the parked record (topic, partition, offset, key, value,
	// headers, time).
	Record kafka.Message
	// Error is why it was parked.
	Error string
	// ParkedAt is when.
	ParkedAt time.Time
}

// Parked lists the parked records of this projection version in partition
// and offset order.
func (r *Runner) Parked(ctx context.Context) ([]Parked, error) {
	return r.parked(ctx, r.cfg.DB, nil, nil)
}

func (r *Runner) parked(ctx context.Context, db queryer, tp *consumer.TopicPartition, key []byte) ([]Parked, error) {
	q := `SELECT topic, part, record_offset, record_key, record_value, record_headers, record_time, error, parked_at
		FROM weir_projection_parked WHERE projection = ? AND version = ?`
	args := []any{r.name, r.version}
	if tp != nil {
		q += ` AND topic = ? AND part = ? AND record_key = ?`
		if key == nil {
			key = []byte{}
		}
		args = append(args, tp.Topic, tp.Partition, key)
	}
	q += ` ORDER BY topic, part, record_offset`
	rows, err := db.QueryContext(ctx, r.d.sql(q), args...)
	if err != nil {
		return nil, fmt.Errorf("projection: list parked: %w", err)
	}
	defer rows.Close()
	var out []Parked
	for rows.Next() {
		var p Parked
		var hdrs string
		var ts, at int64
		m := &p.Record
		if err := rows.Scan(&m.Topic, &m.Partition, &m.Offset, &m.Key, &m.Value, &hdrs, &ts, &p.Error, &at); err != nil {
			return nil, fmt.Errorf("projection: list parked: %w", err)
		}
		if err := json.Unmarshal([]byte(hdrs), &m.Headers); err != nil {
			return nil, fmt.Errorf("projection: parked %s/%d@%d headers: %w", m.Topic, m.Partition, m.Offset, err)
		}
		m.Time, p.ParkedAt = time.UnixMilli(ts), time.UnixMilli(at)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projection: list parked: %w", err)
	}
	return out, nil
}

// Retry applies the parked records of key in tp, in offset order, in one
// transaction that also removes them; on an Apply error nothing changes and
// the error is returned. It returns the number of records applied.
func (r *Runner) Retry(ctx context.Context, tp consumer.TopicPartition, key []byte) (n int, err error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("projection: retry: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	ps, err := r.parked(ctx, tx, &tp, key)
	if err != nil || len(ps) == 0 {
		return 0, err
	}
	batch := make([]kafka.Message, len(ps))
	for i, p := range ps {
		batch[i] = p.Record
	}
	batch, err = r.upcast(batch)
	if err != nil {
		return 0, &applyError{err}
	}
	if err := r.p.Apply(ctx, tx, batch); err != nil {
		return 0, &applyError{err}
	}
	if err := r.deleteParked(ctx, tx, tp, key, batch[len(batch)-1].Offset); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("projection: retry: commit: %w", err)
	}
	r.committed()
	return len(batch), nil
}

// Discard removes the parked records of key in tp without applying them and
// returns how many.
func (r *Runner) Discard(ctx context.Context, tp consumer.TopicPartition, key []byte) (int, error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("projection: discard: begin: %w", err)
	}
	defer tx.Rollback()
	ps, err := r.parked(ctx, tx, &tp, key)
	if err != nil || len(ps) == 0 {
		return 0, err
	}
	if err := r.deleteParked(ctx, tx, tp, key, ps[len(ps)-1].Record.Offset); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("projection: discard: commit: %w", err)
	}
	return len(ps), nil
}

func (r *Runner) deleteParked(ctx context.Context, tx *sql.Tx, tp consumer.TopicPartition, key []byte, upTo int64) error {
	if key == nil {
		key = []byte{}
	}
	_, err := tx.ExecContext(ctx, r.d.sql(`DELETE FROM weir_projection_parked WHERE projection = ? AND version = ? AND topic = ? AND part = ? AND record_key = ? AND record_offset <= ?`),
		r.name, r.version, tp.Topic, tp.Partition, key, upTo)
	if err != nil {
		return fmt.Errorf("projection: delete parked of %s: %w", tp, err)
	}
	return nil
}

// CutoverWhenCaughtUp waits until this runner's version has applied every
// record up to the partitions' high watermarks (lag 0, read from the
// database, so any number of runners of the version may share the work),
// then makes it the serving version in the same transaction that checks the
// stored offsets. It returns at once if the version already serves.
func (r *Runner) CutoverWhenCaughtUp(ctx context.Context) error {
	return r.poll(ctx, func() (bool, error) {
		hwm, err := r.highWatermarks(ctx)
		if err != nil {
			return false, err
		}
		tx, err := r.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			return false, fmt.Errorf("projection: cutover: begin: %w", err)
		}
		defer tx.Rollback()
		stored, err := r.loadOffsets(ctx, tx)
		if err != nil {
			return false, err
		}
		for tp, end := range hwm {
			if end > 0 && stored[tp] < end {
				return false, nil
			}
		}
		_, err = tx.ExecContext(ctx, r.d.sql(`INSERT INTO weir_projection_serving (projection, version, since) VALUES (?, ?, ?)
			ON CONFLICT (projection) DO UPDATE SET version = excluded.version, since = excluded.since`), r.name, r.version, time.Now().UnixMilli())
		if err != nil {
			return false, fmt.Errorf("projection: cutover: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("projection: cutover: commit: %w", err)
		}
		r.cfg.Logger.Info("projection: cutover", "projection", r.name, "version", r.version)
		return true, nil
	})
}

// highWatermarks returns the end offset of every partition of the
// projection's topics.
func (r *Runner) highWatermarks(ctx context.Context) (map[consumer.TopicPartition]int64, error) {
	meta, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: r.p.Topics()})
	if err != nil {
		return nil, fmt.Errorf("projection: metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("projection: metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	resp, err := r.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("projection: list offsets: %w", err)
	}
	out := map[consumer.TopicPartition]int64{}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("projection: list offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[consumer.TopicPartition{Topic: topic, Partition: p.Partition}] = p.LastOffset
		}
	}
	return out, nil
}

// queryer is *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}
