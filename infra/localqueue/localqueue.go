// Package localqueue is the in-process bot.Queue that `tokken serve` uses in
// place of SQS. It is durable: a job is written to the Store (kind "job")
// before Enqueue returns and deleted only after its handler succeeded, and
// the jobs still pending when a process stopped (or crashed) are run again by
// the next New over the same store. A small pool of workers runs the jobs;
// failures are retried with exponential backoff, and a job that keeps failing
// or fails permanently (bot.PermanentError) moves to kind "deadletter" with
// an error logged, so nothing is lost silently.
package localqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
)

// Store kinds the queue writes.
const (
	KindJob        = "job"
	KindDeadLetter = "deadletter"
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("localqueue: closed")

// Options tune a Queue; zero values take the defaults.
type Options struct {
	// Workers is the number of jobs run concurrently (default 4).
	Workers int
	// MaxAttempts is how many times a job runs before it is dead-lettered
	// (default 8).
	MaxAttempts int
	// BaseDelay is the wait before the first retry; it doubles per attempt
	// up to MaxDelay, with ±20 % jitter (defaults 1 s and 5 min).
	BaseDelay, MaxDelay time.Duration
	// JobTimeout bounds one run of a handler (default 5 min).
	JobTimeout time.Duration
	// Log receives job failures (default slog.Default()).
	Log *slog.Logger
	// Clock times NotBefore and retry delays (default the real clock).
	// Tests pass a virtual clock so deferred work costs no wall time.
	Clock Clock
	// GiveUp, if set, is called with each job once it is dead-lettered
	// (kept in the store's dead-letter list), so that what the job was
	// carrying forward can be ended (see bot.GiveUpHandler). cause is the
	// last error. A failure is logged; the job stays in the list.
	GiveUp func(ctx context.Context, j bot.Job, cause string) error
}

// Clock is the time source of a Queue's delays.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed (never from within AfterFunc:
	// f takes the queue's lock); stop cancels the call and reports
	// whether it did so before f started.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 5 * time.Minute
	}
	if o.MaxDelay < o.BaseDelay {
		o.MaxDelay = o.BaseDelay
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
}

// entry is the stored form of a pending job.
type entry struct {
	Job        bot.Job   `json:"job"`
	Attempts   int       `json:"attempts"`
	EnqueuedAt time.Time `json:"enqueued_at"`
	LastError  string    `json:"last_error,omitempty"`
}

// DeadLetter is the stored form of a job that will not be retried
// (kind "deadletter", key "<job id>@<unix nanos>").
type DeadLetter struct {
	Job      bot.Job   `json:"job"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// Queue is a durable in-process job queue. Create it with New.
type Queue struct {
	store   bot.Store
	handler bot.JobHandler
	opt     Options

	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc

	mu      sync.Mutex
	ready   []string               // job ids ready to run, FIFO
	pending map[string]*pendingJob // every job this process knows, by id
	waiting int                    // jobs in backoff (timers armed)
	closed  bool
	started bool
	wake    chan struct{} // signalled (cap 1) when ready grows or on close
	idle    *sync.Cond    // broadcast when running or ready changes
	running int
	workers sync.WaitGroup
	retries map[string]func() bool // stops the timer of a waiting job
}

type pendingJob struct {
	entry   entry
	version int64 // stored version of the "job" record
}

// New returns a queue whose workers will run handler (usually
// (*bot.JobMux).HandleJob), with every job left pending in store by an
// earlier process scheduled to run again. Nothing runs until Start, so the
// JobMux can be completed after the queue is handed to the features that
// enqueue; Enqueue before Start stores the job and keeps it for Start.
func New(store bot.Store, handler bot.JobHandler, opt Options) (*Queue, error) {
	if store == nil || handler == nil {
		return nil, errors.New("localqueue: store and handler are required")
	}
	opt.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		store: store, handler: handler, opt: opt, ctx: ctx, cancel: cancel,
		pending: map[string]*pendingJob{}, wake: make(chan struct{}, 1),
		retries: map[string]func() bool{},
	}
	q.idle = sync.NewCond(&q.mu)

	recs, err := store.List(ctx, KindJob, bot.KeyRange{}, 0)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("localqueue: list pending jobs: %w", err)
	}
	for _, rec := range recs {
		var e entry
		if err := json.Unmarshal(rec.Data, &e); err != nil {
			// A record we cannot read is kept, not run and not deleted:
			// an operator can inspect it.
			opt.Log.Error("localqueue: undecodable pending job left in store", "key", rec.Key, "err", err)
			continue
		}
		q.pending[rec.Key] = &pendingJob{entry: e, version: rec.Version}
		q.scheduleLocked(rec.Key, e.Job.NotBefore)
	}
	if len(recs) > 0 {
		opt.Log.Info("localqueue: resuming pending jobs", "count", len(q.pending))
	}
	return q, nil
}

// Start starts the workers. Calling it again does nothing.
func (q *Queue) Start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.closed {
		return
	}
	q.started = true
	for range q.opt.Workers {
		q.workers.Add(1)
		go q.work()
	}
	q.signalLocked()
}

// Enqueue stores j and schedules it. It returns once the job is durable. A
// job whose ID is already pending is not added again (nil error), so
// repeated requests for the same deferred work coalesce; an empty ID is
// replaced by a fresh one. A job with NotBefore ahead waits on a timer
// (holding no worker) and, like any pending job, survives a restart.
func (q *Queue) Enqueue(ctx context.Context, j bot.Job) error {
	if j.Kind == "" {
		return fmt.Errorf("enqueue job %q: empty kind", j.ID)
	}
	if j.ID == "" {
		j.ID = bot.NewID("job-")
	}
	q.mu.Lock()
	closed := q.closed
	_, dup := q.pending[j.ID]
	q.mu.Unlock()
	if closed {
		return fmt.Errorf("enqueue %s job %s: %w", j.Kind, j.ID, ErrClosed)
	}
	if dup {
		return nil
	}
	e := entry{Job: j, EnqueuedAt: time.Now().UTC()}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("enqueue %s job %s: encode: %w", j.Kind, j.ID, err)
	}
	v, err := q.store.Put(ctx, bot.Record{Kind: KindJob, Key: j.ID, Data: data})
	if errors.Is(err, bot.ErrConflict) {
		return nil // pending in the store already (possibly from another producer)
	}
	if err != nil {
		return fmt.Errorf("enqueue %s job %s: %w", j.Kind, j.ID, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, dup := q.pending[j.ID]; dup {
		return nil
	}
	q.pending[j.ID] = &pendingJob{entry: e, version: v}
	q.scheduleLocked(j.ID, j.NotBefore)
	return nil
}

// scheduleLocked makes the pending job id ready now, or at notBefore if
// that is still ahead (a timer like a retry's: no worker waits for it).
func (q *Queue) scheduleLocked(id string, notBefore time.Time) {
	if d := notBefore.Sub(q.opt.Clock.Now()); !notBefore.IsZero() && d > 0 {
		q.afterLocked(id, d)
		return
	}
	q.ready = append(q.ready, id)
	q.signalLocked()
}

// afterLocked makes the pending job id ready after d, unless the queue is
// closed by then (the job stays in the store for the next start).
func (q *Queue) afterLocked(id string, d time.Duration) {
	q.waiting++
	q.retries[id] = q.opt.Clock.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.waiting--
		delete(q.retries, id)
		if q.closed {
			return
		}
		q.ready = append(q.ready, id)
		q.signalLocked()
	})
}

func (q *Queue) signal() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.signalLocked()
}

func (q *Queue) signalLocked() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// work runs ready jobs until the queue is closed and drained.
func (q *Queue) work() {
	defer q.workers.Done()
	for {
		q.mu.Lock()
		if q.ctx.Err() != nil {
			q.mu.Unlock()
			return // Close gave up waiting: what is left stays in the store
		}
		if len(q.ready) == 0 {
			if q.closed {
				q.mu.Unlock()
				q.signal() // let the other workers see the close too
				return
			}
			q.mu.Unlock()
			select {
			case <-q.wake:
			case <-q.ctx.Done():
				return
			}
			continue
		}
		id := q.ready[0]
		q.ready = q.ready[1:]
		p := q.pending[id]
		q.running++
		if len(q.ready) > 0 {
			q.signalLocked() // more work: wake another worker
		}
		q.mu.Unlock()

		if p != nil {
			q.run(id, p)
		}

		q.mu.Lock()
		q.running--
		q.idle.Broadcast()
		q.mu.Unlock()
	}
}

// run executes one attempt of the job and records the outcome.
func (q *Queue) run(id string, p *pendingJob) {
	ctx, cancel := context.WithTimeout(q.ctx, q.opt.JobTimeout)
	defer cancel()
	p.entry.Attempts++
	start := time.Now()
	err := q.safeHandle(ctx, p.entry.Job)
	log := q.opt.Log.With("job_id", id, "kind", p.entry.Job.Kind, "attempt", p.entry.Attempts)
	if err == nil {
		log.Debug("job done", "ms", time.Since(start).Milliseconds())
		if derr := q.store.Delete(q.ctx, KindJob, id, 0); derr != nil {
			// The job ran; it will run again after a restart. Handlers are
			// idempotent, so this costs a repeat, not a loss.
			log.Error("localqueue: delete finished job", "err", derr)
		}
		q.forget(id)
		return
	}
	if q.ctx.Err() != nil {
		// Interrupted by Close: not the job's fault, so not an attempt.
		log.Warn("job interrupted by shutdown; it runs again after the next start", "err", err)
		q.forget(id)
		return
	}
	if bot.IsPermanent(err) || p.entry.Attempts >= q.opt.MaxAttempts {
		q.deadLetter(log, id, p, err)
		return
	}
	p.entry.LastError = err.Error()
	if data, merr := json.Marshal(p.entry); merr == nil {
		if v, perr := q.store.Put(q.ctx, bot.Record{Kind: KindJob, Key: id, Version: p.version, Data: data}); perr == nil {
			p.version = v
		} else {
			log.Warn("localqueue: record attempt", "err", perr)
		}
	}
	delay := q.backoff(p.entry.Attempts)
	log.Warn("job failed; will retry", "err", err, "retry_in", delay.String())
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return // stays in the store; the next start runs it
	}
	q.afterLocked(id, delay)
}

// safeHandle turns a handler panic into a permanent error: a panicking
// handler would panic again on retry.
func (q *Queue) safeHandle(ctx context.Context, j bot.Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = bot.Permanent(fmt.Errorf("job %s panicked: %v", j.ID, r))
		}
	}()
	return q.handler(ctx, j)
}

func (q *Queue) deadLetter(log *slog.Logger, id string, p *pendingJob, cause error) {
	now := time.Now().UTC()
	data, err := json.Marshal(DeadLetter{Job: p.entry.Job, Attempts: p.entry.Attempts, Error: cause.Error(), At: now})
	if err == nil {
		key := fmt.Sprintf("%s@%d", id, now.UnixNano())
		if _, err = q.store.Put(q.ctx, bot.Record{Kind: KindDeadLetter, Key: key, Data: data}); err == nil {
			err = q.store.Delete(q.ctx, KindJob, id, 0)
		}
	}
	if err != nil {
		// Keep the job record: it runs again after a restart rather than
		// vanishing.
		log.Error("localqueue: cannot dead-letter job; it stays pending", "cause", cause, "err", err)
	} else {
		log.Error("job dead-lettered", "err", cause, "permanent", bot.IsPermanent(cause))
		if q.opt.GiveUp != nil {
			why := fmt.Sprintf("failed %d times, last: %v", p.entry.Attempts, cause)
			if bot.IsPermanent(cause) {
				why = fmt.Sprintf("failed permanently: %v", cause)
			}
			if gerr := q.opt.GiveUp(q.ctx, p.entry.Job, why); gerr != nil {
				log.Error("localqueue: giving up the dead-lettered job failed", "err", gerr)
			}
		}
	}
	q.forget(id)
}

func (q *Queue) forget(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, id)
}

// backoff is BaseDelay·2^(attempt-1), capped at MaxDelay, ±20 % jitter.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.opt.BaseDelay
	for i := 1; i < attempt && d < q.opt.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, q.opt.MaxDelay)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) * 2
	return d - d/5 + jitter
}

// Close stops accepting jobs and waits until the ready jobs have run and
// the running ones finished (if the queue was never started, pending jobs
// simply stay in the store), or until ctx is done (then running handlers
// are cancelled). Jobs waiting for a retry stay in the store and run after
// the next start. Close returns ctx's error if it gave up waiting.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	for id, stop := range q.retries {
		if stop() {
			q.waiting--
		}
		delete(q.retries, id)
	}
	q.signalLocked()
	q.mu.Unlock()

	done := make(chan struct{})
	go func() {
		q.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return fmt.Errorf("localqueue: close: %w", ctx.Err())
	}
}

// Idle waits until no job is ready or running (on a started queue) (jobs
// waiting for a retry or their NotBefore do not count), or ctx is done. Tests and `tokken invoke` use it to know the
// work caused by an event has finished.
func (q *Queue) Idle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.idle.Broadcast()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.started && (len(q.ready) > 0 || q.running > 0) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.idle.Wait()
	}
	return nil
}
