package alertui

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultInterval is the pause between two posts to one channel: Slack
// allows about one message per second per channel.
const DefaultInterval = 1100 * time.Millisecond

// Pacer spaces calls per key (a channel): calls under one key run one at a
// time, each at least Interval after the previous one finished. It never
// waits: a call whose slot has not come is refused with a *BusyError
// saying when it has, so the caller can defer the work (the alert service
// queues a flush for then) instead of holding a queue worker. Different
// keys do not affect each other. It paces one process; the Slack client
// below it still honours Retry-After if several processes share a channel.
type Pacer struct {
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	lanes map[string]*lane
}

type lane struct {
	mu   sync.Mutex
	next time.Time
}

// BusyError is returned by Pacer.Do for a key whose next slot is ahead.
type BusyError struct {
	Key  string
	Next time.Time // the key's next slot
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s paced until %s", e.Key, e.Next.UTC().Format(time.RFC3339Nano))
}

// NewPacer returns a Pacer. interval <= 0 means DefaultInterval; nil now
// means the real clock (tests inject a virtual one).
func NewPacer(interval time.Duration, now func() time.Time) *Pacer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Pacer{interval: interval, now: now, lanes: map[string]*lane{}}
}

// Do runs fn in key's lane if the lane's slot has come and returns fn's
// error; otherwise, or while another call of the lane runs, it returns a
// *BusyError without running fn.
func (p *Pacer) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	p.mu.Lock()
	l, ok := p.lanes[key]
	if !ok {
		l = &lane{}
		p.lanes[key] = l
	}
	p.mu.Unlock()

	if !l.mu.TryLock() {
		// A call is running: its slot's end is not known yet, so the
		// earliest next slot is one interval from now.
		return &BusyError{Key: key, Next: p.now().Add(p.interval)}
	}
	defer l.mu.Unlock()
	if next := l.next; next.After(p.now()) {
		return &BusyError{Key: key, Next: next}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := fn(ctx)
	l.next = p.now().Add(p.interval)
	return err
}
