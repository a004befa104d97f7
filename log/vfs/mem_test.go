package vfs

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestMemCrashKeepsOnlySynced(t *testing.T) {
	tests := []struct {
		name     string
		sync     bool
		syncDir  bool
		wantFile bool
		wantSize int64
	}{
		{"nothing synced", false, false, false, 0},
		{"dir synced only", false, true, true, 0},
		{"both synced", true, true, true, 5},
		{"file synced, dir not", true, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			if err := m.MkdirAll("/d"); err != nil {
				t.Fatal(err)
			}
			f, err := m.Create("/d/f")
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("hello"), 0)
			if tt.sync {
				f.Sync()
			}
			if tt.syncDir {
				m.SyncDir("/d")
			}
			f.WriteAt([]byte(" world"), 5)
			m.Crash()
			if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrClosed) {
				t.Fatalf("handle survived the crash: %v", err)
			}
			size, err := m.Stat("/d/f")
			if (err == nil) != tt.wantFile || size != tt.wantSize {
				t.Fatalf("after crash: size %d err %v", size, err)
			}
		})
	}
}

func TestMemCrashRandomKeepsPrefix(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d")
	f, _ := m.Create("/d/f")
	f.WriteAt([]byte("abc"), 0)
	f.Sync()
	m.SyncDir("/d")
	f.WriteAt([]byte("defghij"), 3)
	m.CrashRandom(rand.New(rand.NewPCG(3, 4)))
	g, err := m.Open("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	size, _ := g.Size()
	buf := make([]byte, size)
	g.ReadAt(buf, 0)
	if size < 3 || string(buf) != "abcdefghij"[:size] {
		t.Fatalf("after torn crash: %q", buf)
	}
}

func TestMemInjector(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d")
	boom := errors.New("boom")
	m.SetInjector(func(op Op, name string) error {
		if op == OpSync {
			return boom
		}
		return nil
	})
	f, _ := m.Create("/d/f")
	if err := f.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync: %v", err)
	}
	m.SetInjector(nil)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
