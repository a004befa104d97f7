package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/weir-broker/weir/log"
)

// MaintenanceConfig configures the background log work of the server.
type MaintenanceConfig struct {
	// CleanerInterval is the pause between compaction rounds over the
	// partitions with cleanup.policy=compact (log.cleaner.backoff.ms);
	// 0 means 15 s, negative disables compaction.
	CleanerInterval time.Duration
	// RetentionCheckInterval is the pause between retention rounds
	// (log.retention.check.interval.ms); 0 means 5 min, negative disables.
	RetentionCheckInterval time.Duration
}

// maintenance is the one goroutine that compacts and enforces retention on
// this broker's partitions, round after round, until closed.
type maintenance struct {
	s      *Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // serialises rounds (the loop and tests)
}

func startMaintenance(s *Server) *maintenance {
	cfg := s.cfg.Maintenance
	if cfg.CleanerInterval == 0 {
		cfg.CleanerInterval = 15 * time.Second
	}
	if cfg.RetentionCheckInterval == 0 {
		cfg.RetentionCheckInterval = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &maintenance{s: s, cancel: cancel}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.loop(ctx, cfg)
	}()
	return m
}

func (m *maintenance) loop(ctx context.Context, cfg MaintenanceConfig) {
	ticker := func(d time.Duration) (<-chan time.Time, func()) {
		if d < 0 {
			return nil, func() {}
		}
		t := time.NewTicker(d)
		return t.C, t.Stop
	}
	clean, stopClean := ticker(cfg.CleanerInterval)
	defer stopClean()
	retain, stopRetain := ticker(cfg.RetentionCheckInterval)
	defer stopRetain()
	for {
		select {
		case <-ctx.Done():
			return
		case <-clean:
			m.compactRound()
		case <-retain:
			m.retentionRound()
		}
	}
}

func (m *maintenance) close() {
	m.cancel()
	m.wg.Wait()
}

// compactRound runs one compaction pass on every compacted partition.
func (m *maintenance) compactRound() (cleaned int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.s.replicas()
	if rm == nil {
		return 0
	}
	for _, p := range rm.Partitions() {
		l := p.Log()
		if !l.Config().Compact() {
			continue
		}
		res, err := l.Compact()
		switch {
		case errors.Is(err, log.ErrClosed):
		case err != nil:
			m.s.logger.Warn("compaction failed", "partition", p.TopicPartition().String(), "err", err)
		case res.SegmentsCleaned > 0:
			cleaned += res.SegmentsCleaned
			m.s.logger.Debug("compacted", "partition", p.TopicPartition().String(),
				"segments", res.SegmentsCleaned, "bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter)
		}
	}
	return cleaned
}

// retentionRound deletes the segments past retention.ms / retention.bytes
// of every partition whose policy includes delete, below its high
// watermark.
func (m *maintenance) retentionRound() (deleted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.s.replicas()
	if rm == nil {
		return 0
	}
	for _, p := range rm.Partitions() {
		l := p.Log()
		if !l.Config().Delete() {
			continue
		}
		res, err := l.EnforceRetentionBelow(p.HighWatermark())
		switch {
		case errors.Is(err, log.ErrClosed):
		case err != nil:
			m.s.logger.Warn("retention failed", "partition", p.TopicPartition().String(), "err", err)
		case res.SegmentsDeleted > 0:
			deleted += res.SegmentsDeleted
			m.s.logger.Info("retention deleted segments", "partition", p.TopicPartition().String(),
				"segments", res.SegmentsDeleted, "bytes", res.BytesDeleted, "log_start_offset", res.LogStartOffset)
		}
	}
	return deleted
}
