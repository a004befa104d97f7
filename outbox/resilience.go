package outbox

import (
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with full jitter in [d/2, d].
type Backoff struct {
	// Base is the first delay; Max caps the delay.
	Base, Max time.Duration
}

// Delay returns the delay before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Breaker is a consecutive-failure circuit breaker, a pure state machine
// driven with explicit times. It is not safe for concurrent use.
type Breaker struct {
	// Threshold failures in a row open the circuit.
	Threshold int
	// Backoff spaces the probes while open.
	Backoff Backoff

	failures int
	opens    int
	until    time.Time
}

// Allow reports whether a call may go out at now, and if not, how long to
// wait.
func (b *Breaker) Allow(now time.Time) (bool, time.Duration) {
	if now.Before(b.until) {
		return false, b.until.Sub(now)
	}
	return true, 0
}

// Open reports whether the circuit is open at now.
func (b *Breaker) Open(now time.Time) bool { return now.Before(b.until) }

// Success records a successful call: the circuit closes.
func (b *Breaker) Success() { b.failures, b.opens, b.until = 0, 0, time.Time{} }

// Failure records a failed call at now and returns the delay before the
// next one (zero while the circuit stays closed).
func (b *Breaker) Failure(now time.Time) time.Duration {
	b.failures++
	if b.failures < b.Threshold {
		return b.Backoff.Delay(b.failures - 1)
	}
	d := b.Backoff.Delay(b.opens + b.failures - 1)
	b.opens++
	b.until = now.Add(d)
	return d
}
