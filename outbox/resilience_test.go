package outbox

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestBackoffBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(t, "base"))
		mx := base * time.Duration(rapid.Int64Range(1, 1000).Draw(t, "mult"))
		n := rapid.IntRange(0, 80).Draw(t, "attempt")
		b := Backoff{Base: base, Max: mx}
		d := b.Delay(n)
		want := base
		for i := 0; i < n && want < mx; i++ {
			want *= 2
		}
		want = min(want, mx)
		if d > want || d < want/2 {
			t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
		}
	})
}

func TestBreaker(t *testing.T) {
	now := time.Unix(1000, 0)
	b := Breaker{Threshold: 3, Backoff: Backoff{Base: time.Second, Max: 8 * time.Second}}
	steps := []struct {
		name     string
		fail     bool
		wantOpen bool
	}{
		{"first failure", true, false},
		{"second failure", true, false},
		{"threshold opens", true, true},
		{"still failing", true, true},
		{"success closes", false, false},
		{"one failure after recovery", true, false},
	}
	for _, s := range steps {
		if s.fail {
			b.Failure(now)
		} else {
			b.Success()
		}
		if got := b.Open(now); got != s.wantOpen {
			t.Fatalf("%s: open = %v, want %v", s.name, got, s.wantOpen)
		}
		if ok, wait := b.Allow(now); ok == s.wantOpen || (!ok && wait <= 0) {
			t.Fatalf("%s: Allow = %v, %v", s.name, ok, wait)
		}
	}
	b = Breaker{Threshold: 1, Backoff: Backoff{Base: time.Second, Max: 4 * time.Second}}
	d := b.Failure(now)
	if ok, _ := b.Allow(now.Add(d)); !ok {
		t.Fatal("breaker still open after its delay")
	}
}
