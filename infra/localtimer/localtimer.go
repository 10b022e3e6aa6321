// Package localtimer is the in-process bot.Timers used by `tokken serve` in
// place of EventBridge Scheduler. Timers are persisted in the Store (kind
// "timer", key = timer ID) before Schedule returns, so pending timers survive
// a restart; an in-memory min-heap orders them. When a timer is due its job
// is enqueued on the bot.Queue and only then is the timer deleted: a crash in
// between fires it again (at least once), never zero times.
package localtimer

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
)

// Kind is the store kind holding pending timers.
const Kind = "timer"

// Clock is the time source; tests inject a fake one to fire timers without
// sleeping.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tune a Service; zero values take the defaults.
type Options struct {
	Clock Clock        // default: the real clock
	Log   *slog.Logger // default: slog.Default()
	// RetryDelay is the wait before retrying a timer whose job could not be
	// enqueued (default 5 s).
	RetryDelay time.Duration
}

// Service is a persistent timer service. Create it with New; Close stops it.
type Service struct {
	store bot.Store
	queue bot.Queue
	clock Clock
	log   *slog.Logger
	retry time.Duration

	mu      sync.Mutex
	heap    timerHeap
	current map[string]item // the live entry of each timer, by ID
	seq     uint64          // numbers the entries pushed (item.seq)
	wake    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

var _ bot.Timers = (*Service)(nil)

// item is one scheduled firing; heap entries whose version no longer
// matches current[id] are stale (replaced or cancelled) and skipped.
type item struct {
	id      string
	at      time.Time
	version int64 // of the stored record
	// seq tells entries apart: a timer deleted as it fires and scheduled
	// again at once is stored anew with the same version.
	seq uint64
}

// New loads the pending timers from store and starts the loop that fires
// them onto queue. Timers already due fire at once.
func New(store bot.Store, queue bot.Queue, opt Options) (*Service, error) {
	if store == nil || queue == nil {
		return nil, errors.New("localtimer: store and queue are required")
	}
	if opt.Clock == nil {
		opt.Clock = realClock{}
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.RetryDelay <= 0 {
		opt.RetryDelay = 5 * time.Second
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{
		store: store, queue: queue, clock: opt.Clock, log: opt.Log, retry: opt.RetryDelay,
		current: map[string]item{}, wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{}),
	}
	recs, err := store.List(ctx, Kind, bot.KeyRange{}, 0)
	if err != nil {
		stop()
		return nil, fmt.Errorf("localtimer: load timers: %w", err)
	}
	for _, rec := range recs {
		var t bot.Timer
		if err := json.Unmarshal(rec.Data, &t); err != nil {
			opt.Log.Error("localtimer: undecodable timer left in store", "key", rec.Key, "err", err)
			continue
		}
		s.push(item{id: rec.Key, at: t.At, version: rec.Version})
	}
	go s.loop(ctx)
	return s, nil
}

// Schedule stores t, replacing any pending timer with the same ID.
func (s *Service) Schedule(ctx context.Context, t bot.Timer) error {
	if t.ID == "" {
		return errors.New("schedule timer: empty id")
	}
	if t.Job.Kind == "" {
		return fmt.Errorf("schedule timer %s: job has no kind", t.ID)
	}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("schedule timer %s: encode: %w", t.ID, err)
	}
	for range 10 {
		var expect int64
		cur, err := s.store.Get(ctx, Kind, t.ID)
		switch {
		case err == nil:
			expect = cur.Version
		case !errors.Is(err, bot.ErrNotFound):
			return fmt.Errorf("schedule timer %s: %w", t.ID, err)
		}
		v, err := s.store.Put(ctx, bot.Record{Kind: Kind, Key: t.ID, Version: expect, Data: data})
		if errors.Is(err, bot.ErrConflict) {
			continue // another writer replaced it meanwhile: re-read
		}
		if err != nil {
			return fmt.Errorf("schedule timer %s: %w", t.ID, err)
		}
		s.mu.Lock()
		s.push(item{id: t.ID, at: t.At, version: v})
		s.mu.Unlock()
		s.poke()
		return nil
	}
	return fmt.Errorf("schedule timer %s: %w", t.ID, bot.ErrConflict)
}

// Cancel deletes a pending timer; an unknown or fired timer is not an error.
func (s *Service) Cancel(ctx context.Context, id string) error {
	if err := s.store.Delete(ctx, Kind, id, 0); err != nil {
		return fmt.Errorf("cancel timer %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.current, id)
	s.mu.Unlock()
	s.poke()
	return nil
}

// Pending returns the number of timers waiting to fire.
func (s *Service) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.current)
}

// Close stops the loop. Pending timers stay in the store.
func (s *Service) Close() error {
	s.stop()
	<-s.done
	return nil
}

// push records it as the live version of its timer: callers have just
// stored that version. Callers hold mu (or are New, before the loop starts).
func (s *Service) push(it item) {
	s.seq++
	it.seq = s.seq
	s.current[it.id] = it
	heap.Push(&s.heap, it)
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	for {
		due, wait := s.next()
		for _, it := range due {
			s.fire(ctx, it)
		}
		if len(due) > 0 {
			continue
		}
		var after <-chan time.Time
		if wait >= 0 {
			after = s.clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-after:
		}
	}
}

// next pops the live timers that are due and returns how long to wait for
// the next one (-1: none pending).
func (s *Service) next() (due []item, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for s.heap.Len() > 0 {
		top := s.heap[0]
		if cur, ok := s.current[top.id]; !ok || cur.seq != top.seq {
			heap.Pop(&s.heap) // stale: replaced or cancelled
			continue
		}
		if top.at.After(now) {
			if len(due) > 0 {
				return due, 0
			}
			return nil, top.at.Sub(now)
		}
		heap.Pop(&s.heap)
		due = append(due, top)
	}
	return due, -1
}

// fire enqueues the timer's job and then deletes the timer. If either step
// fails the timer is retried after RetryDelay.
func (s *Service) fire(ctx context.Context, it item) {
	log := s.log.With("timer_id", it.id)
	rec, err := s.store.Get(ctx, Kind, it.id)
	if errors.Is(err, bot.ErrNotFound) {
		s.drop(it) // cancelled (possibly by another process) since loaded
		return
	}
	if err == nil && rec.Version != it.version {
		s.drop(it) // replaced meanwhile; the newer version is or will be in the heap
		return
	}
	var t bot.Timer
	if err == nil {
		err = json.Unmarshal(rec.Data, &t)
	}
	if err == nil {
		if t.Job.ID == "" {
			t.Job.ID = fmt.Sprintf("timer:%s@%d", t.ID, t.At.UnixNano()) // one id per firing
		}
		err = s.queue.Enqueue(ctx, t.Job)
	}
	if err == nil {
		// The job is out: finish the bookkeeping even if Close began.
		err = s.store.Delete(context.WithoutCancel(ctx), Kind, it.id, it.version)
		if errors.Is(err, bot.ErrConflict) {
			// Rescheduled while firing: the new version stays pending.
			log.Info("timer replaced while firing; the new schedule stands")
			return
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: it stays in the store
		}
		log.Error("localtimer: fire failed; will retry", "err", err, "retry_in", s.retry.String())
		s.mu.Lock()
		if cur, ok := s.current[it.id]; ok && cur.seq == it.seq {
			retry := it
			retry.at = s.clock.Now().Add(s.retry)
			heap.Push(&s.heap, retry)
			s.current[it.id] = retry
		}
		s.mu.Unlock()
		return
	}
	log.Debug("timer fired", "job_id", t.Job.ID, "kind", t.Job.Kind, "late_ms", s.clock.Now().Sub(t.At).Milliseconds())
	s.drop(it)
}

func (s *Service) drop(it item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.current[it.id]; ok && cur.seq == it.seq {
		delete(s.current, it.id)
	}
}

// timerHeap orders items by time (container/heap).
type timerHeap []item

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
