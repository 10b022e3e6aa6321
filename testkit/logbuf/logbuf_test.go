package logbuf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteAndString(t *testing.T) {
	var b Buffer
	if b.String() != "" {
		t.Fatalf("zero Buffer holds %q", b.String())
	}
	for _, s := range []string{"one\n", "", "two\n"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "one\ntwo\n" {
		t.Fatalf("String() = %q", got)
	}
}

// TestConcurrentWriters writes from many goroutines while reading; the
// race detector checks the locking, the line count that nothing is lost.
func TestConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}

func TestWait(t *testing.T) {
	tests := []struct {
		name    string
		before  string   // written before Wait
		during  []string // written by another goroutine once Wait has started
		want    string
		timeout bool
	}{
		{name: "already there", before: "ready\n", want: "ready"},
		{name: "arrives later", during: []string{"starting\n", "listening\n", "ready\n"}, want: "ready"},
		{name: "spans writes", during: []string{"rea", "dy\n"}, want: "ready"},
		{name: "never comes", during: []string{"starting\n"}, want: "ready", timeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Buffer
			b.Write([]byte(tt.before))
			timeout := 10 * time.Second
			if tt.timeout {
				timeout = 100 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			checked := make(chan struct{}, 16)
			done := make(chan error, 1)
			go func() {
				done <- b.Wait(ctx, func(s string) bool {
					checked <- struct{}{}
					return strings.Contains(s, tt.want)
				})
			}()
			<-checked // Wait has looked once: what follows arrives while it waits
			for _, s := range tt.during {
				b.Write([]byte(s))
			}
			err := <-done
			switch {
			case tt.timeout && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("Wait = %v, want a deadline error", err)
			case !tt.timeout && err != nil:
				t.Fatalf("Wait = %v", err)
			}
		})
	}
}
