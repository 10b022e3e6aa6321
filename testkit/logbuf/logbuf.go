// Package logbuf provides a buffer that collects output written by several
// goroutines (a logger, a child process's stderr) and lets a test read it,
// or wait for something to appear in it, at any time.
//
// Waiting is signalled by the writes themselves: Wait re-checks its
// condition after each write, so a test waits exactly as long as the
// output takes to arrive and never sleeps or polls.
package logbuf

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// Buffer is an io.Writer safe for concurrent writers and readers. The zero
// value is an empty buffer ready to use.
type Buffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	grew chan struct{} // closed and replaced by every write; nil until waited on
}

// Write appends p. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.grew != nil {
		close(b.grew)
		b.grew = nil
	}
	return n, err
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Wait returns nil as soon as cond holds for everything written so far,
// checking now and after every write, or an error wrapping ctx's error if
// ctx ends first. cond must not call b's methods.
func (b *Buffer) Wait(ctx context.Context, cond func(written string) bool) error {
	for {
		b.mu.Lock()
		if cond(b.buf.String()) {
			b.mu.Unlock()
			return nil
		}
		if b.grew == nil {
			b.grew = make(chan struct{})
		}
		grew := b.grew
		b.mu.Unlock()
		select {
		case <-grew:
		case <-ctx.Done():
			return fmt.Errorf("wait for output: %w", context.Cause(ctx))
		}
	}
}
