package wire

import "testing"

func TestPoolClass(t *testing.T) {
	tests := []struct {
		n      int
		class  int
		pooled bool
	}{
		{0, 0, false},
		{minPooledFrame - 1, 0, false},
		{minPooledFrame, 0, true},
		{minPooledFrame + 1, 1, true},
		{2 * minPooledFrame, 1, true},
		{2*minPooledFrame + 1, 2, true},
		{100 << 20, 11, true}, // the largest frame accepted by default
		{128 << 20, 11, true},
		{128<<20 + 1, 12, false},
	}
	for _, tc := range tests {
		c, ok := poolClass(tc.n)
		if ok != tc.pooled || (ok && c != tc.class) {
			t.Errorf("poolClass(%d) = %d, %t; want %d, %t", tc.n, c, ok, tc.class, tc.pooled)
		}
		if ok && tc.n > minPooledFrame<<c {
			t.Errorf("poolClass(%d) = %d holds only %d bytes", tc.n, c, minPooledFrame<<c)
		}
	}
}

// TestFramePoolGetPut: get returns exactly n bytes with the class's
// capacity, and put ignores buffers that are not the pool's, so a foreign
// buffer can never be handed out for a larger frame than it holds.
func TestFramePoolGetPut(t *testing.T) {
	var p framePool
	for _, n := range []int{10, minPooledFrame, minPooledFrame + 1, 3 << 20} {
		b := p.get(n)
		if len(b) != n {
			t.Fatalf("get(%d): len %d", n, len(b))
		}
		if c, ok := poolClass(n); ok && cap(b) != minPooledFrame<<c {
			t.Fatalf("get(%d): cap %d, want %d", n, cap(b), minPooledFrame<<c)
		}
		p.put(b)
	}
	p.put(make([]byte, minPooledFrame+5)) // exactly sized: not the pool's
	for range 100 {
		if b := p.get(minPooledFrame + 5); cap(b) != 2*minPooledFrame {
			t.Fatalf("get after a foreign put: cap %d, want %d", cap(b), 2*minPooledFrame)
		}
	}
}
