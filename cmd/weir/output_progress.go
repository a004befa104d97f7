package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws a one-line progress bar on a terminal stderr. On
// anything else (a pipe, a file, a test buffer) it draws nothing, so output
// stays clean. Not safe for concurrent use.
type progressBar struct {
	w     io.Writer
	total int64
	on    bool
	last  time.Time
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newProgressBar returns a bar for total bytes; total < 0 (unknown size)
// disables it.
func newProgressBar(w io.Writer, total int64) *progressBar {
	return &progressBar{w: w, total: total, on: total > 0 && isTerminal(w)}
}

// update redraws the bar at most ten times a second.
func (p *progressBar) update(done, records int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := min(float64(done)/float64(p.total), 1)
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %d records", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, records)
}

// finish clears the bar's line.
func (p *progressBar) finish() {
	if p.on {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 60))
	}
}
