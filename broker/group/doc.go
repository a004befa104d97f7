// Package group is Weir's consumer group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and committed
// offsets, stored in the internal compacted topic __consumer_offsets in
// Kafka's own key and value formats.
//
// The package has two layers.
//
// The core (group.go, join.go, members.go, offsets.go) is a pure state
// machine: a *Group takes an event and the current time and returns
// Effects, the replies to send and whether the group's metadata must be
// written. It opens no sockets, reads
// no clock and starts no goroutine, so tests drive it with scripts and
// random event sequences. Its states are Kafka's:
//
//	Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//	  ▲                  ▲        │                                   │ leader's SyncGroup
//	  │                  │        └──no member left──▶ Empty          ▼
//	  └──last leave──────┴──────────── join / leave / expiry ─────── Stable
//
// A waiting JoinGroup or SyncGroup is only a ReplyID in the member's state;
// the core answers it later, in the Effects of whatever event completes the
// phase (the last join, the leader's sync, a timeout seen by Tick).
//
// The shell (coordinator.go, shell_members.go, shell_offsets.go, timers.go)
// owns the groups, one mutex per group, the purgatory where waiting
// requests are parked, one timer goroutine that calls Tick when a group's
// next deadline passes, and the Store through which records reach the
// offsets topic. Records are in records.go.
package group
