package httpapi

import "sync/atomic"

// workers runs functions on goroutines that are kept between requests.
//
// A request hands work to another goroutine so that its ack need not wait
// for it: its after-ack work (the ephemeral answer to a click), and its
// handler where the transport cannot answer early (Lambda, Socket Mode;
// see earlyAck). A new goroutine starts with a small stack, and work that
// posts to the Web API through slack-go needs tens of KB of it: the
// runtime grows the stack by copying it, several times per request, which
// measured 6% of a click's CPU (BENCHMARKS.md). A goroutine that has run
// such work already has the stack the next one needs.
//
// Up to maxIdle goroutines wait for work between requests; when none is
// waiting, Go starts a new one, so a burst is never queued behind a slow
// handler. Waiting goroutines cost their stacks and nothing else; they are
// not stopped (a Router lives as long as its process).
type workers struct {
	work    chan func()
	idle    atomic.Int32
	maxIdle int32
}

// defaultMaxIdle bounds the goroutines kept waiting: more than the
// requests a `tokken serve` process has in flight at its measured peak.
const defaultMaxIdle = 64

func newWorkers(maxIdle int) *workers {
	return &workers{work: make(chan func()), maxIdle: int32(maxIdle)}
}

// Go runs f on a waiting goroutine, or on a new one if none is waiting.
//
// idle counts the goroutines that have finished their function and are
// committed to receiving the next one, and that no Go has claimed yet. Go
// claims one by decrementing idle, then hands f over: the claimed
// goroutine is at, or on its way to, the receive, so the send completes
// at once.
func (p *workers) Go(f func()) {
	for {
		n := p.idle.Load()
		if n == 0 {
			go p.run(f)
			return
		}
		if p.idle.CompareAndSwap(n, n-1) {
			p.work <- f
			return
		}
	}
}

// run runs f, then waits for more work unless maxIdle goroutines already
// wait (idle never exceeds maxIdle).
func (p *workers) run(f func()) {
	for {
		f()
		for {
			n := p.idle.Load()
			if n >= p.maxIdle {
				return
			}
			if p.idle.CompareAndSwap(n, n+1) {
				break
			}
		}
		f = <-p.work // the sender has claimed this goroutine (idle-1)
	}
}
