package alertui

import (
	"context"
	"sync"
	"time"
)

// DefaultInterval is the pause between two posts to one channel: Slack
// allows about one message per second per channel.
const DefaultInterval = 1100 * time.Millisecond

// Pacer spaces calls per key (a channel): calls under one key run one at a
// time, each at least Interval after the previous one finished. Different
// keys do not wait for each other. It paces one process; the Slack client
// below it still honours Retry-After if several processes share a channel.
type Pacer struct {
	interval time.Duration
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	lanes map[string]*lane
}

type lane struct {
	mu   sync.Mutex
	next time.Time
}

// NewPacer returns a Pacer. interval <= 0 means DefaultInterval; nil now
// and sleep mean the real clock. Tests inject a virtual clock whose sleep
// advances it, so pacing thousands of posts costs no wall time.
func NewPacer(interval time.Duration, now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) *Pacer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	return &Pacer{interval: interval, now: now, sleep: sleep, lanes: map[string]*lane{}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do runs fn in key's lane once the lane's pause has passed.
func (p *Pacer) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	p.mu.Lock()
	l, ok := p.lanes[key]
	if !ok {
		l = &lane{}
		p.lanes[key] = l
	}
	p.mu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if wait := l.next.Sub(p.now()); wait > 0 {
		if err := p.sleep(ctx, wait); err != nil {
			return err
		}
	}
	err := fn(ctx)
	l.next = p.now().Add(p.interval)
	return err
}
