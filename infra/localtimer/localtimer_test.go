package localtimer

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
)

// fakeClock is a manual clock: time moves only in Advance, and every After
// call is reported on armed so tests know when the loop is waiting.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	armed   chan time.Duration
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	}
	c.armed <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitArmed waits until the loop waits for exactly d.
func (c *fakeClock) waitArmed(t *testing.T, d time.Duration) {
	t.Helper()
	for {
		select {
		case got := <-c.armed:
			if got == d {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("loop never waited for %s", d)
		}
	}
}

// chanQueue is a bot.Queue that hands jobs to the test; failNext makes the
// next Enqueue calls fail.
type chanQueue struct {
	jobs     chan bot.Job
	mu       sync.Mutex
	failNext int
}

func (q *chanQueue) Enqueue(_ context.Context, j bot.Job) error {
	q.mu.Lock()
	if q.failNext > 0 {
		q.failNext--
		q.mu.Unlock()
		return errors.New("queue unavailable")
	}
	q.mu.Unlock()
	q.jobs <- j
	return nil
}

func newQueue() *chanQueue { return &chanQueue{jobs: make(chan bot.Job, 16)} }

func (q *chanQueue) next(t *testing.T) bot.Job {
	t.Helper()
	select {
	case j := <-q.jobs:
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no job enqueued")
		return bot.Job{}
	}
}

func (q *chanQueue) empty(t *testing.T) {
	t.Helper()
	select {
	case j := <-q.jobs:
		t.Fatalf("unexpected job %+v", j)
	default:
	}
}

func openStore(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func start(t *testing.T, s bot.Store, q bot.Queue, c *fakeClock) *Service {
	t.Helper()
	svc, err := New(s, q, Options{Clock: c, Log: slog.New(slog.DiscardHandler), RetryDelay: 7 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

func timer(id string, at time.Time, kind string) bot.Timer {
	return bot.Timer{ID: id, At: at, Job: bot.Job{ID: "job-" + id + "-" + kind, Kind: kind}}
}

func storedTimers(t *testing.T, s bot.Store) int {
	t.Helper()
	recs, err := s.List(context.Background(), Kind, bot.KeyRange{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestFiresOnceAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s := openStore(t, path)
	c := newClock()
	q := newQueue()

	first := start(t, s, q, c)
	if err := first.Schedule(ctx, timer("expire/r-1", c.Now().Add(time.Minute), "access.expire")); err != nil {
		t.Fatal(err)
	}
	c.waitArmed(t, time.Minute)
	q.empty(t)
	if err := first.Close(); err != nil { // "restart"
		t.Fatal(err)
	}

	second := start(t, s, q, c)
	if second.Pending() != 1 {
		t.Fatalf("after restart %d timers pending, want 1", second.Pending())
	}
	c.waitArmed(t, time.Minute)
	c.Advance(time.Minute)
	if j := q.next(t); j.Kind != "access.expire" || j.ID != "job-expire/r-1-access.expire" {
		t.Errorf("fired %+v", j)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if n := storedTimers(t, s); n != 0 {
		t.Errorf("%d timers left in the store after firing", n)
	}

	third := start(t, s, q, c)
	if third.Pending() != 0 {
		t.Errorf("a fired timer came back after a restart")
	}
	q.empty(t)
}

func TestDueTimersFireInOrder(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	c, q := newClock(), newQueue()
	svc := start(t, s, q, c)
	now := c.Now()
	for _, tt := range []struct {
		id string
		in time.Duration
	}{{"c", 3 * time.Minute}, {"a", time.Minute}, {"b", 2 * time.Minute}} {
		if err := svc.Schedule(ctx, timer(tt.id, now.Add(tt.in), "k")); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(10 * time.Minute)
	for _, want := range []string{"a", "b", "c"} {
		if j := q.next(t); j.ID != "job-"+want+"-k" {
			t.Errorf("fired %s, want %s", j.ID, want)
		}
	}
}

func TestScheduleReplacesAndCancel(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	c, q := newClock(), newQueue()
	svc := start(t, s, q, c)
	now := c.Now()

	if err := svc.Schedule(ctx, timer("x", now.Add(time.Minute), "old")); err != nil {
		t.Fatal(err)
	}
	if err := svc.Schedule(ctx, timer("x", now.Add(2*time.Minute), "new")); err != nil {
		t.Fatal(err)
	}
	c.waitArmed(t, 2*time.Minute) // the old one-minute entry was skipped as stale
	c.Advance(time.Minute)
	q.empty(t)
	c.Advance(time.Minute)
	if j := q.next(t); j.Kind != "new" {
		t.Errorf("fired %+v, want the replacement", j)
	}

	if err := svc.Schedule(ctx, timer("y", now.Add(time.Hour), "k")); err != nil {
		t.Fatal(err)
	}
	// The loop waits for y only once x's firing is over (it enqueues the
	// job, which the test saw, and then deletes the timer).
	c.waitArmed(t, time.Hour-2*time.Minute)
	if err := svc.Cancel(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Cancel(ctx, "never-existed"); err != nil {
		t.Errorf("cancel of an unknown timer: %v", err)
	}
	if svc.Pending() != 0 || storedTimers(t, s) != 0 {
		t.Errorf("cancelled timer still pending (%d) or stored (%d)", svc.Pending(), storedTimers(t, s))
	}
	c.Advance(2 * time.Hour)
	q.empty(t)
}

func TestEnqueueFailureRetries(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	c, q := newClock(), newQueue()
	q.failNext = 1
	svc := start(t, s, q, c)
	if err := svc.Schedule(ctx, timer("r", c.Now(), "k")); err != nil {
		t.Fatal(err)
	}
	c.waitArmed(t, 7*time.Second) // failed once, retry armed
	if storedTimers(t, s) != 1 {
		t.Fatal("timer deleted although its job was not enqueued")
	}
	c.Advance(7 * time.Second)
	if j := q.next(t); j.ID != "job-r-k" {
		t.Errorf("fired %+v", j)
	}
}

func TestScheduleValidates(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	svc := start(t, s, newQueue(), newClock())
	for _, tm := range []bot.Timer{{At: time.Now(), Job: bot.Job{Kind: "k"}}, {ID: "x", At: time.Now()}} {
		if err := svc.Schedule(context.Background(), tm); err == nil {
			t.Errorf("Schedule(%+v) accepted", tm)
		}
	}
}

func TestDefaultJobID(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	c, q := newClock(), newQueue()
	svc := start(t, s, q, c)
	at := c.Now()
	if err := svc.Schedule(context.Background(), bot.Timer{ID: "sweep", At: at, Job: bot.Job{Kind: "sweep"}}); err != nil {
		t.Fatal(err)
	}
	if j := q.next(t); j.ID == "" || j.ID != "timer:sweep@"+itoa(at.UnixNano()) {
		t.Errorf("job id %q: want one derived from the timer", j.ID)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// hookStore runs afterDelete once, right after a Delete succeeded.
type hookStore struct {
	bot.Store
	once        sync.Once
	afterDelete func()
}

func (h *hookStore) Delete(ctx context.Context, kind, key string, version int64) error {
	err := h.Store.Delete(ctx, kind, key, version)
	if err == nil && h.afterDelete != nil {
		h.once.Do(h.afterDelete)
	}
	return err
}

// TestRescheduledWhileFiring: a job that schedules its own timer again as
// soon as it runs (domain progress checks do) can land between the firing
// timer's delete and its bookkeeping; the new record then has the old
// one's version. The new schedule must still fire (it was lost, and the
// operation stopped being followed, in an e2e run).
func TestRescheduledWhileFiring(t *testing.T) {
	ctx := context.Background()
	hs := &hookStore{Store: openStore(t, filepath.Join(t.TempDir(), "t.db"))}
	c, q := newClock(), newQueue()
	svc := start(t, hs, q, c)
	now := c.Now()
	hs.afterDelete = func() {
		if err := svc.Schedule(ctx, timer("x", now.Add(2*time.Minute), "second")); err != nil {
			t.Error(err)
		}
	}
	if err := svc.Schedule(ctx, timer("x", now.Add(time.Minute), "first")); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if j := q.next(t); j.Kind != "first" {
		t.Fatalf("fired %+v", j)
	}
	c.waitArmed(t, time.Minute)
	c.Advance(time.Minute)
	if j := q.next(t); j.Kind != "second" {
		t.Fatalf("fired %+v, want the timer scheduled while the first fired", j)
	}
}
