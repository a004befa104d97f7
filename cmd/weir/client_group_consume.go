package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
)

// groupCommitInterval is how often consume -g commits what it has printed
// (and at exit): a crash re-delivers at most this much.
const groupCommitInterval = 200 * time.Millisecond

// groupStartOffset maps -o for a group consumer, where it only applies to
// partitions the group has not committed: start or end.
func groupStartOffset(s string) (int64, error) {
	switch s {
	case "start", "beginning", "oldest":
		return kafka.FirstOffset, nil
	case "end", "newest":
		return kafka.LastOffset, nil
	}
	return 0, fmt.Errorf("consume -g: -o %q: a group starts from its committed offsets; -o may only be start or end (for partitions without one)", s)
}

// runGroupConsume is `weir consume -g GROUP`: it joins the group with
// kafka-go's Reader, prints the records of the partitions it is assigned,
// and commits each record's offset only after the record has been written
// to the output (flushed), so a crash re-delivers rather than loses.
// Commits go out every groupCommitInterval and when the command ends.
// kafka-go's Reader reports empty keys and values as null.
func runGroupConsume(cmd *cobra.Command, cf *clientFlags, fl *consumeFlags, topic string, bw *bufio.Writer, out *recordWriter) error {
	if len(fl.partitions) > 0 || fl.exitAtEnd {
		return usageError{errors.New("consume -g: -p and --exit-at-end do not apply to a group (the group assigns partitions)")}
	}
	start, err := groupStartOffset(fl.offset)
	if err != nil {
		return usageError{err}
	}
	addrs, err := cf.addrs()
	if err != nil {
		return err
	}
	cl, err := cf.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	{
		ctx, cancel := cf.requestContext(cmd)
		_, err := partitionCount(ctx, cl, topic, false)
		cancel()
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     addrs,
		GroupID:     fl.group,
		Topic:       topic,
		Dialer:      &kafka.Dialer{ClientID: "weir", Timeout: cf.timeout, DualStack: true},
		MaxBytes:    8 << 20,
		MaxWait:     fl.maxWait,
		StartOffset: start,
	})
	defer r.Close()

	ctx, stop := signalContext(cmd)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	msgs := make(chan kafka.Message, 256)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					errc <- fmt.Errorf("consume -g %s: %w", fl.group, err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	})
	defer wg.Wait()
	defer cancel()

	var pending []kafka.Message
	// commit flushes the output, then commits what it holds.
	commit := func(ctx context.Context) error {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("consume: write output: %w", err)
		}
		if len(pending) == 0 {
			return nil
		}
		if err := r.CommitMessages(ctx, pending...); err != nil {
			return fmt.Errorf("consume -g %s: commit: %w", fl.group, err)
		}
		pending = pending[:0]
		return nil
	}
	// final commits what was printed after the loop ends, with its own
	// time limit since ctx may be cancelled (Ctrl-C).
	final := func() error {
		cctx, ccancel := context.WithTimeout(context.Background(), cf.timeout)
		defer ccancel()
		return commit(cctx)
	}
	// Commit at most every groupCommitInterval (each commit is a round trip
	// to the coordinator), and always before returning.
	tick := time.NewTicker(groupCommitInterval)
	defer tick.Stop()
	count := 0
	for {
		select {
		case m := <-msgs:
			if err := out.write(m); err != nil {
				return err
			}
			pending = append(pending, m)
			count++
			if fl.num > 0 && count >= fl.num {
				return final()
			}
			if len(msgs) == 0 {
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("consume: write output: %w", err)
				}
			}
		case <-tick.C:
			if err := commit(ctx); err != nil {
				if ctx.Err() != nil {
					return final()
				}
				return err
			}
		case err := <-errc:
			if ferr := final(); ferr != nil {
				return errors.Join(err, ferr)
			}
			return err
		case <-ctx.Done():
			return final() // Ctrl-C ends a group consume normally
		}
	}
}
