package replica

import "slices"

// leaderState is the pure core of a partition leader: the current leader
// epoch, the in-sync replica set and the log end offset each follower last
// reported. It has no clock, lock or I/O; Partition guards it with its mutex.
//
// On a single node the ISR is the leader alone and the high watermark is the
// leader's log end offset. With followers, the high watermark is the
// smallest log end offset over the ISR, as in Kafka.
type leaderState struct {
	replicaID   int32           // this broker
	epoch       int32           // leader epoch stamped into appended batches
	isr         []int32         // in-sync replicas, including the leader
	followerLEO map[int32]int64 // last log end offset fetched by each follower
}

func newLeaderState(replicaID, epoch int32) leaderState {
	return leaderState{
		replicaID:   replicaID,
		epoch:       epoch,
		isr:         []int32{replicaID},
		followerLEO: map[int32]int64{},
	}
}

// highWatermark returns min(LEO) over the ISR, given the leader's own log end
// offset. A follower in the ISR that has not fetched yet counts as offset 0.
func (s *leaderState) highWatermark(leaderLEO int64) int64 {
	hw := leaderLEO
	for _, r := range s.isr {
		if r == s.replicaID {
			continue
		}
		hw = min(hw, s.followerLEO[r])
	}
	return hw
}

// inSync reports whether the ISR has at least minISR members.
func (s *leaderState) inSync(minISR int) bool { return len(s.isr) >= minISR }

// setISR replaces the in-sync replica set; the leader is always a member.
func (s *leaderState) setISR(isr []int32) {
	s.isr = slices.Clone(isr)
	if !slices.Contains(s.isr, s.replicaID) {
		s.isr = append(s.isr, s.replicaID)
	}
}

// ackState is what an acks=all produce waits on for one partition.
type ackState int

const (
	ackWaiting      ackState = iota // high watermark not past the batch yet
	ackDone                         // the batch is committed
	ackNotEnoughISR                 // committed on fewer than min.insync.replicas
)

// acksAllState decides an acks=all produce for one partition: complete once
// the high watermark passes lastOffset, provided the ISR still has at least
// minISR members (KIP-966's strict min-ISR reading: a batch is only acked as
// committed when enough replicas hold it).
func acksAllState(lastOffset, hw int64, isrSize, minISR int) ackState {
	if hw <= lastOffset {
		return ackWaiting
	}
	if isrSize < minISR {
		return ackNotEnoughISR
	}
	return ackDone
}
