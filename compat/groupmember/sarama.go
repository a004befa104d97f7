package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// runSarama is an IBM sarama member: eager range balancer, marks each
// record after processing and commits whenever its claim has nothing
// buffered, and at the end of every generation.
func runSarama(ctx context.Context, c config, out *reporter) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = c.name
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = sessionTimeout
	cfg.Consumer.Group.Heartbeat.Interval = heartbeatInterval
	cfg.Consumer.Group.Rebalance.Timeout = rebalanceTimeout
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	if c.instance != "" {
		cfg.Consumer.Group.InstanceId = c.instance
	}
	cg, err := sarama.NewConsumerGroup([]string{c.brokers}, c.group, cfg)
	if err != nil {
		return fmt.Errorf("sarama: new consumer group: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for err := range cg.Errors() {
			fmt.Fprintf(os.Stderr, "groupmember: sarama: %v\n", err)
		}
	})
	defer wg.Wait()
	defer cg.Close()
	h := &saramaHandler{topic: c.topic, out: out}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{c.topic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return nil
			}
			fmt.Fprintf(os.Stderr, "groupmember: sarama: consume: %v\n", err)
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	return nil
}

// saramaHandler reports each generation's claims and processes records.
type saramaHandler struct {
	topic string
	out   *reporter
}

// Setup implements sarama.ConsumerGroupHandler.
func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.out.partitions("assigned", s.GenerationID(), s.Claims()[h.topic])
	return nil
}

// Cleanup implements sarama.ConsumerGroupHandler.
func (h *saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	h.out.partitions("revoked", s.GenerationID(), s.Claims()[h.topic])
	return nil
}

// ConsumeClaim implements sarama.ConsumerGroupHandler.
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.out.record(m.Partition, m.Offset)
			s.MarkMessage(m, "")
			if len(claim.Messages()) == 0 {
				s.Commit()
				h.out.commit(m.Partition, m.Offset+1)
			}
		case <-s.Context().Done():
			return nil
		}
	}
}
