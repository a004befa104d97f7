package vfs

// CacheAdviser is implemented by files whose pages the operating system
// keeps in its page cache. The log uses it to keep only the newest data of a
// partition cached after writing it (log.Options.PageCacheWindow): pages
// the kernel would otherwise keep until memory runs short go back to the
// free lists at once, where the next writes find them.
//
// Neither method makes anything durable or loses anything: writeback is
// what the kernel would do later anyway, and only clean pages are dropped.
type CacheAdviser interface {
	// StartWriteback starts writing the dirty pages of [off, off+n) to the
	// device and returns without waiting for them (sync_file_range with
	// SYNC_FILE_RANGE_WRITE on Linux). It is not a sync: it flushes no
	// metadata and no device cache.
	StartWriteback(off, n int64) error
	// DropCache asks the kernel to drop the cached pages of [off, off+n)
	// (posix_fadvise POSIX_FADV_DONTNEED). Pages still dirty or under
	// writeback stay; the next read of a dropped page reads the device.
	DropCache(off, n int64) error
}

// DirectOpener is implemented by file systems that can open a file for
// direct I/O, bypassing the page cache (O_DIRECT on Linux). Reads through
// such a handle must use offsets, lengths and buffers aligned to
// DirectAlignment. The log reads data older than its page cache window this
// way, so that a consumer catching up does not fill the cache with pages
// nobody reads again.
type DirectOpener interface {
	OpenDirect(name string) (File, error)
}

// DirectAlignment is the alignment of offsets, lengths and buffer addresses
// for files opened with OpenDirect: the page size, which covers the logical
// block size of every common device.
const DirectAlignment = 4096

// Preallocator is implemented by files whose disk blocks can be reserved
// ahead of the writes that fill them (fallocate with FALLOC_FL_KEEP_SIZE on
// Linux). The log reserves the next few MiB of its active segment this way:
// ext4 otherwise does its delayed-allocation bookkeeping for every page a
// write dirties, about a fifth of the broker's CPU while producing 1 KiB
// records (docs/benchmarks.md). The file's size does not change, and a
// truncation to the size it already has gives back what was not written.
type Preallocator interface {
	// Preallocate reserves the blocks of [off, off+n) without changing the
	// file's size or contents. File systems without it refuse it
	// (errors.ErrUnsupported or the system's EOPNOTSUPP).
	Preallocate(off, n int64) error
}

var (
	_ CacheAdviser = osFile{}
	_ Preallocator = osFile{}
	_ DirectOpener = OS{}
)
