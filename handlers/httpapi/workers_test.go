package httpapi

import (
	"runtime"
	"strings"
	"sync"
	"testing"
)

// waitIdle spins (yielding) until n goroutines of p wait for work.
func waitIdle(t *testing.T, p *workers, n int32) {
	t.Helper()
	for p.idle.Load() != n {
		runtime.Gosched()
	}
}

// goroutineID is the running goroutine's number, from its stack trace.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

func TestWorkersReuseAWaitingGoroutine(t *testing.T) {
	p := newWorkers(1)
	const n = 100
	ids := map[string]bool{}
	for range n {
		ran := make(chan string)
		p.Go(func() { ran <- goroutineID() })
		ids[<-ran] = true
		waitIdle(t, p, 1)
	}
	if len(ids) != 1 {
		t.Fatalf("%d functions ran on %d goroutines, want the waiting one reused", n, len(ids))
	}
}

func TestWorkersNeverQueueBehindASlowFunction(t *testing.T) {
	p := newWorkers(2)
	const n = 10
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		p.Go(func() { started.Done(); <-release })
	}
	started.Wait() // all n run at once although at most 2 are kept
	close(release)
	waitIdle(t, p, 2) // the others end rather than wait (idle never exceeds 2)
}
