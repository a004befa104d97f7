package vfs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
)

// Op names an FS or File operation, for error injection.
type Op string

// The operations an Injector sees.
const (
	OpCreate   Op = "create"
	OpOpen     Op = "open"
	OpRead     Op = "read"
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpTruncate Op = "truncate"
	OpRemove   Op = "remove"
	OpRename   Op = "rename"
	OpList     Op = "list"
	OpStat     Op = "stat"
	OpMkdir    Op = "mkdir"
	OpSyncDir  Op = "syncdir"
)

// Injector decides whether an operation on a named file fails. It returns nil
// to let the operation proceed, or the error the operation returns instead.
// It is called with the Mem's lock held and must not call back into the Mem.
type Injector func(op Op, name string) error

// Mem is an in-memory FS that simulates what a machine crash leaves behind.
// Each file keeps its current bytes and the bytes of its last Sync; each
// directory keeps its current entries and the entries of its last SyncDir.
// Crash (or CrashRandom) throws away whatever was not made durable, as a
// power loss would, and invalidates every open handle. Directories
// themselves (MkdirAll, RemoveAll) are durable at once.
//
// Mem is safe for concurrent use; one mutex serialises every operation.
type Mem struct {
	mu      sync.Mutex
	gen     uint64
	live    map[string]*memNode // current namespace: path → file
	durable map[string]*memNode // namespace as of the last SyncDir of each dir
	dirs    map[string]bool
	inject  Injector
}

// memNode is a file's contents, shared by the namespaces that name it.
type memNode struct {
	data   []byte
	synced []byte
}

// NewMem returns an empty in-memory file system.
func NewMem() *Mem {
	return &Mem{
		live:    map[string]*memNode{},
		durable: map[string]*memNode{},
		dirs:    map[string]bool{"/": true, ".": true},
	}
}

var _ FS = (*Mem)(nil)

// SetInjector installs (or, with nil, removes) an error injector.
func (m *Mem) SetInjector(f Injector) {
	m.mu.Lock()
	m.inject = f
	m.mu.Unlock()
}

// Crash simulates a power loss: every file reverts to its last synced bytes,
// every directory to its last synced entries, and every open handle fails
// with ErrClosed from now on.
func (m *Mem) Crash() { m.crash(nil) }

// CrashRandom is Crash, except that each file also keeps a random prefix of
// the bytes written past its last synced size (a torn write), as a disk that
// wrote some of its cache before the power went does.
func (m *Mem) CrashRandom(r *rand.Rand) { m.crash(r) }

func (m *Mem) crash(r *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.live = make(map[string]*memNode, len(m.durable))
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic use of r
	seen := map[*memNode]bool{}
	for _, name := range names {
		n := m.durable[name]
		m.live[name] = n
		if seen[n] {
			continue
		}
		seen[n] = true
		keep := append([]byte(nil), n.synced...)
		if r != nil && len(n.data) > len(n.synced) {
			extra := r.IntN(len(n.data) - len(n.synced) + 1)
			keep = append(keep, n.data[len(n.synced):len(n.synced)+extra]...)
		}
		n.data = keep
		n.synced = append([]byte(nil), keep...)
	}
}

func clean(name string) string { return path.Clean(name) }

func (m *Mem) check(op Op, name string) error {
	if m.inject == nil {
		return nil
	}
	if err := m.inject(op, name); err != nil {
		return fmt.Errorf("vfs: %s %s: %w", op, name, err)
	}
	return nil
}

func (m *Mem) parentExists(name string) error {
	if !m.dirs[path.Dir(name)] {
		return fmt.Errorf("vfs: %s: parent directory: %w", name, ErrNotExist)
	}
	return nil
}

// Create implements FS.
func (m *Mem) Create(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpCreate, name); err != nil {
		return nil, err
	}
	if err := m.parentExists(name); err != nil {
		return nil, err
	}
	n, ok := m.live[name]
	if ok {
		n.data = n.data[:0:0]
	} else {
		n = &memNode{}
		m.live[name] = n
	}
	return &memFile{fs: m, node: n, name: name, gen: m.gen}, nil
}

func (m *Mem) open(name string, readOnly bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpOpen, name); err != nil {
		return nil, err
	}
	n, ok := m.live[name]
	if !ok {
		return nil, fmt.Errorf("vfs: open %s: %w", name, ErrNotExist)
	}
	return &memFile{fs: m, node: n, name: name, gen: m.gen, readOnly: readOnly}, nil
}

// OpenReadWrite implements FS.
func (m *Mem) OpenReadWrite(name string) (File, error) { return m.open(name, false) }

// Open implements FS.
func (m *Mem) Open(name string) (File, error) { return m.open(name, true) }

// Remove implements FS.
func (m *Mem) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpRemove, name); err != nil {
		return err
	}
	if _, ok := m.live[name]; ok {
		delete(m.live, name)
		return nil
	}
	if m.dirs[name] {
		prefix := name + "/"
		for p := range m.live {
			if strings.HasPrefix(p, prefix) {
				return fmt.Errorf("vfs: remove %s: directory not empty", name)
			}
		}
		for d := range m.dirs {
			if strings.HasPrefix(d, prefix) {
				return fmt.Errorf("vfs: remove %s: directory not empty", name)
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return fmt.Errorf("vfs: remove %s: %w", name, ErrNotExist)
}

// RemoveAll implements FS. It is durable at once.
func (m *Mem) RemoveAll(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpRemove, name); err != nil {
		return err
	}
	prefix := name + "/"
	for _, ns := range []map[string]*memNode{m.live, m.durable} {
		for p := range ns {
			if p == name || strings.HasPrefix(p, prefix) {
				delete(ns, p)
			}
		}
	}
	for d := range m.dirs {
		if d == name || strings.HasPrefix(d, prefix) {
			delete(m.dirs, d)
		}
	}
	return nil
}

// Rename implements FS.
func (m *Mem) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpRename, oldname); err != nil {
		return err
	}
	n, ok := m.live[oldname]
	if !ok {
		return fmt.Errorf("vfs: rename %s: %w", oldname, ErrNotExist)
	}
	if err := m.parentExists(newname); err != nil {
		return err
	}
	delete(m.live, oldname)
	m.live[newname] = n
	return nil
}

// MkdirAll implements FS. It is durable at once.
func (m *Mem) MkdirAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpMkdir, dir); err != nil {
		return err
	}
	for d := dir; !m.dirs[d]; d = path.Dir(d) {
		if _, ok := m.live[d]; ok {
			return fmt.Errorf("vfs: mkdir %s: %s is a file", dir, d)
		}
		m.dirs[d] = true
	}
	return nil
}

// List implements FS.
func (m *Mem) List(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpList, dir); err != nil {
		return nil, err
	}
	if !m.dirs[dir] {
		return nil, fmt.Errorf("vfs: list %s: %w", dir, ErrNotExist)
	}
	var names []string
	for p := range m.live {
		if path.Dir(p) == dir {
			names = append(names, path.Base(p))
		}
	}
	for d := range m.dirs {
		if d != dir && path.Dir(d) == dir {
			names = append(names, path.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Stat implements FS.
func (m *Mem) Stat(name string) (int64, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpStat, name); err != nil {
		return 0, err
	}
	n, ok := m.live[name]
	if !ok {
		if m.dirs[name] {
			return 0, nil
		}
		return 0, fmt.Errorf("vfs: stat %s: %w", name, ErrNotExist)
	}
	return int64(len(n.data)), nil
}

// SyncDir implements FS: the directory's current entries become durable.
func (m *Mem) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(OpSyncDir, dir); err != nil {
		return err
	}
	if !m.dirs[dir] {
		return fmt.Errorf("vfs: syncdir %s: %w", dir, ErrNotExist)
	}
	for p := range m.durable {
		if path.Dir(p) == dir {
			if _, ok := m.live[p]; !ok {
				delete(m.durable, p)
			}
		}
	}
	for p, n := range m.live {
		if path.Dir(p) == dir {
			m.durable[p] = n
		}
	}
	return nil
}

// memFile is a handle on a memNode.
type memFile struct {
	fs       *Mem
	node     *memNode
	name     string
	gen      uint64
	closed   bool
	readOnly bool
}

// usable reports an error if the handle was closed or outlived a crash.
// Called with fs.mu held.
func (f *memFile) usable(op Op) error {
	if f.closed || f.gen != f.fs.gen {
		return fmt.Errorf("vfs: %s %s: %w", op, f.name, ErrClosed)
	}
	return f.fs.check(op, f.name)
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable(OpRead); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: read %s: negative offset", f.name)
	}
	if off >= int64(len(f.node.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable(OpWrite); err != nil {
		return 0, err
	}
	if f.readOnly {
		return 0, fmt.Errorf("vfs: write %s: file opened read-only", f.name)
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: write %s: negative offset", f.name)
	}
	end := off + int64(len(p))
	if end > int64(len(f.node.data)) {
		if end > int64(cap(f.node.data)) {
			grown := make([]byte, end, max(end, 2*int64(cap(f.node.data))))
			copy(grown, f.node.data)
			f.node.data = grown
		} else {
			f.node.data = f.node.data[:end]
		}
	}
	return copy(f.node.data[off:], p), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return fmt.Errorf("vfs: close %s: %w", f.name, ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable(OpSync); err != nil {
		return err
	}
	f.node.synced = append(f.node.synced[:0], f.node.data...)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable(OpTruncate); err != nil {
		return err
	}
	if f.readOnly {
		return fmt.Errorf("vfs: truncate %s: file opened read-only", f.name)
	}
	if size < 0 {
		return fmt.Errorf("vfs: truncate %s: negative size", f.name)
	}
	if size <= int64(len(f.node.data)) {
		clear(f.node.data[size:])
		f.node.data = f.node.data[:size]
		return nil
	}
	grown := make([]byte, size)
	copy(grown, f.node.data)
	f.node.data = grown
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.usable(OpStat); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Name() string { return f.name }
