// Package fakeclock provides a clock that tests set and move by hand.
//
// Code under test that reads the time through a func() time.Time (a
// Service's Now option, an SDK signer's clock) gets Clock.Now; the test
// moves time with Advance or Set, so expiry, timeouts and rate windows are
// tested without waiting. The clock never moves by itself and never fires
// anything: a test that needs timers firing as time moves drives them
// itself (see botfake.Timers.Due).
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a settable clock, safe for concurrent use. The zero value reads
// the zero time; use New to start it elsewhere.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time. Its method value (c.Now) is what
// code under test takes as its clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backwards when d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t, forwards or backwards.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
