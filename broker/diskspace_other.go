//go:build !unix

package broker

// diskSpace is unknown where statfs is not available.
func diskSpace(string) (total, usable int64) { return -1, -1 }
