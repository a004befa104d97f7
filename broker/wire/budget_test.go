package wire

import (
	"context"
	"testing"
	"time"
)

// TestBudgetWakesWaiters: an Acquire that does not fit waits, and each
// Release wakes it to try again, also after Releases with nobody waiting.
func TestBudgetWakesWaiters(t *testing.T) {
	b := NewBudget(100)
	ctx := context.Background()
	for range 3 { // Releases with nobody waiting
		n, _ := b.Acquire(ctx, 10)
		b.Release(n)
	}
	first, _ := b.Acquire(ctx, 60)
	second, _ := b.Acquire(ctx, 30)
	got := make(chan int64)
	go func() {
		n, err := b.Acquire(ctx, 50)
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	// Wait until the third Acquire is parked on the channel.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		waited := b.waited
		b.mu.Unlock()
		if waited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Acquire of 50 with 90 of 100 used did not wait")
		}
		time.Sleep(time.Millisecond)
	}
	b.Release(second) // 60 used: 50 still does not fit
	select {
	case n := <-got:
		t.Fatalf("Acquire returned %d with 60 of 100 used", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.Release(first)
	select {
	case n := <-got:
		if n != 50 || b.Used() != 50 {
			t.Fatalf("Acquire took %d, budget used %d", n, b.Used())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Release did not wake the waiting Acquire")
	}
}

// TestBudgetReleaseWithoutWaitersAllocatesNothing: the read and write loops
// call Acquire and Release three times per request.
func TestBudgetReleaseWithoutWaitersAllocatesNothing(t *testing.T) {
	b := NewBudget(1 << 20)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		n, _ := b.Acquire(ctx, 1000)
		b.Release(n)
	})
	if allocs != 0 {
		t.Fatalf("Acquire+Release allocated %v times", allocs)
	}
}
