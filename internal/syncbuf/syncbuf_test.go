package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			b.Write([]byte("x"))
		}
	})
	for range 100 {
		_ = b.String()
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 1000) {
		t.Fatalf("got %d bytes, want 1000", len(got))
	}
}

func TestMaxDropsLaterWrites(t *testing.T) {
	b := Buffer{Max: 4}
	for _, w := range []string{"abc", "de", "fgh"} {
		if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	if got := b.String(); got != "abcde" {
		t.Fatalf("kept %q, want %q (writes stop once more than Max is kept)", got, "abcde")
	}
}
