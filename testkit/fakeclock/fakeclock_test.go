package fakeclock

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestClock(t *testing.T) {
	tests := []struct {
		name string
		move func(*Clock)
		want time.Time
	}{
		{"unmoved", func(*Clock) {}, t0},
		{"advance", func(c *Clock) { c.Advance(90 * time.Second) }, t0.Add(90 * time.Second)},
		{"advance twice", func(c *Clock) { c.Advance(time.Hour); c.Advance(time.Minute) }, t0.Add(time.Hour + time.Minute)},
		{"advance backwards", func(c *Clock) { c.Advance(-time.Hour) }, t0.Add(-time.Hour)},
		{"set", func(c *Clock) { c.Set(t0.AddDate(1, 0, 0)) }, t0.AddDate(1, 0, 0)},
		{"set then advance", func(c *Clock) { c.Set(t0.Add(-time.Minute)); c.Advance(time.Second) }, t0.Add(-59 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(t0)
			tt.move(c)
			if got := c.Now(); !got.Equal(tt.want) {
				t.Errorf("Now() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAdvanceReturnsNewTime(t *testing.T) {
	c := New(t0)
	if got := c.Advance(time.Minute); !got.Equal(t0.Add(time.Minute)) || !got.Equal(c.Now()) {
		t.Errorf("Advance returned %v, Now() %v, want %v", got, c.Now(), t0.Add(time.Minute))
	}
}

func TestZeroValue(t *testing.T) {
	var c Clock
	if !c.Now().IsZero() {
		t.Errorf("zero Clock reads %v", c.Now())
	}
	c.Advance(time.Second)
	if got := c.Now(); !got.Equal(time.Time{}.Add(time.Second)) {
		t.Errorf("after Advance: %v", got)
	}
}

// TestConcurrentAdvance moves the clock from many goroutines; the race
// detector checks the locking, the sum checks no move is lost.
func TestConcurrentAdvance(t *testing.T) {
	c := New(t0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(800*time.Second); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
}
