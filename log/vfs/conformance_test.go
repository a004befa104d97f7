package vfs

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
)

// TestConformance runs the same operations against OS and Mem.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   FS
		root string
	}{
		{"OS", OS{}, t.TempDir()},
		{"Mem", NewMem(), "/root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, dir := tc.fs, filepath.Join(tc.root, "a", "b")
			if err := fs.MkdirAll(dir); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "f")
			f, err := fs.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("hello world"), 0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("W"), 6); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if n, err := f.ReadAt(buf, 6); n != 5 || err != nil || string(buf) != "World" {
				t.Fatalf("ReadAt = %d %v %q", n, err, buf)
			}
			if n, err := f.ReadAt(buf, 9); n != 2 || !errors.Is(err, io.EOF) {
				t.Fatalf("ReadAt past the end = %d, %v", n, err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(5); err != nil {
				t.Fatal(err)
			}
			if size, err := f.Size(); size != 5 || err != nil {
				t.Fatalf("Size = %d, %v", size, err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Open(filepath.Join(dir, "missing")); !errors.Is(err, ErrNotExist) {
				t.Fatalf("Open missing: %v", err)
			}
			if err := fs.Rename(name, filepath.Join(dir, "g")); err != nil {
				t.Fatal(err)
			}
			if err := fs.SyncDir(dir); err != nil {
				t.Fatal(err)
			}
			names, err := fs.List(dir)
			if err != nil || !slices.Equal(names, []string{"g"}) {
				t.Fatalf("List = %v, %v", names, err)
			}
			g, err := fs.Open(filepath.Join(dir, "g"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("write through a read-only handle succeeded")
			}
			if err := fs.Remove(filepath.Join(dir, "g")); err != nil {
				t.Fatal(err)
			}
			// An open handle outlives the removal of its name.
			if n, err := g.ReadAt(buf, 0); n != 5 || string(buf) != "hello" {
				t.Fatalf("read after remove = %d %v %q", n, err, buf)
			}
			g.Close()
			if size, err := fs.Stat(filepath.Join(dir, "g")); !errors.Is(err, ErrNotExist) {
				t.Fatalf("Stat removed = %d, %v", size, err)
			}
			if _, isOS := tc.fs.(OS); isOS {
				h, _ := fs.Create(filepath.Join(dir, "h"))
				if _, ok := h.(OSFiler); !ok {
					t.Fatal("OS files must expose OSFile for sendfile")
				}
				h.Close()
			}
			if err := fs.RemoveAll(filepath.Join(tc.root, "a")); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.List(dir); !errors.Is(err, ErrNotExist) {
				t.Fatalf("List after RemoveAll: %v", err)
			}
		})
	}
}
