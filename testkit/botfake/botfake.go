// Package botfake provides recording, in-memory implementations of the
// ports in package bot (bot.Queue, bot.Timers, bot.Auditor) for tests that
// drive a service by hand.
//
// The fakes run nothing by themselves: a Queue holds jobs until the test
// takes or drains them, Timers hold timers until the test asks which are
// due. The test decides when work runs and time passes, so scenario tests
// are deterministic and need no sleeping. Each fake is safe for concurrent
// use and its zero value is ready to use.
//
// For the real peers (a durable queue, timers that fire) use
// infra/localqueue and infra/localtimer instead.
package botfake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
)

// MaxDrainRounds is how many rounds Queue.Drain runs, each taking every job
// enqueued by the round before, before it reports ErrRunaway.
const MaxDrainRounds = 1000

// ErrRunaway is returned by Queue.Drain when jobs keep enqueueing jobs for
// MaxDrainRounds rounds: a handler that re-enqueues itself unconditionally.
var ErrRunaway = errors.New("jobs keep enqueueing jobs")

// Queue is a bot.Queue that records the jobs it is given, in order, until
// the test takes, drains or inspects them. It ignores Job.NotBefore: a test
// that honours it does so itself.
type Queue struct {
	mu   sync.Mutex
	jobs []bot.Job
	err  error
}

var _ bot.Queue = (*Queue)(nil)

// Enqueue records j, or returns the error set with Fail without recording.
func (q *Queue) Enqueue(_ context.Context, j bot.Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.jobs = append(q.jobs, j)
	return nil
}

// Fail makes every following Enqueue return err, as a queue that is down
// would, until Fail(nil) makes it accept jobs again.
func (q *Queue) Fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
}

// Jobs returns the jobs waiting in the queue, oldest first, leaving them
// there.
func (q *Queue) Jobs() []bot.Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.jobs)
}

// Take removes the waiting jobs from the queue and returns them, oldest
// first.
func (q *Queue) Take() []bot.Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.jobs
	q.jobs = nil
	return out
}

// Drain runs the waiting jobs with run, oldest first, then the jobs those
// enqueued, round after round until the queue is empty. It stops at the
// first job run fails, returning its error with the job's kind and id; the
// jobs of that round not yet run go back to the front of the queue, the
// failed one does not (a test models the queue's retry by enqueueing it
// again). A run that should go on after a failure records the error and
// returns nil. After MaxDrainRounds rounds that all found jobs, Drain
// returns ErrRunaway.
func (q *Queue) Drain(ctx context.Context, run bot.JobHandler) error {
	for range MaxDrainRounds {
		jobs := q.Take()
		if len(jobs) == 0 {
			return nil
		}
		for i, j := range jobs {
			if err := run(ctx, j); err != nil {
				q.requeue(jobs[i+1:])
				return fmt.Errorf("job %s %s: %w", j.Kind, j.ID, err)
			}
		}
	}
	return fmt.Errorf("drain after %d rounds: %w", MaxDrainRounds, ErrRunaway)
}

// requeue puts jobs back in front of those enqueued since they were taken.
func (q *Queue) requeue(jobs []bot.Job) {
	if len(jobs) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(slices.Clone(jobs), q.jobs...)
}

// Timers is a bot.Timers that records pending timers by id; nothing fires
// until the test collects the due ones with Due and runs their jobs.
type Timers struct {
	mu      sync.Mutex
	pending map[string]bot.Timer
}

var _ bot.Timers = (*Timers)(nil)

// Schedule records tm, replacing a pending timer with the same id.
func (t *Timers) Schedule(_ context.Context, tm bot.Timer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending = map[string]bot.Timer{}
	}
	t.pending[tm.ID] = tm
	return nil
}

// Cancel removes the pending timer id; an unknown id is not an error.
func (t *Timers) Cancel(_ context.Context, id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, id)
	return nil
}

// Get returns the pending timer id and whether there is one.
func (t *Timers) Get(id string) (bot.Timer, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tm, ok := t.pending[id]
	return tm, ok
}

// Due removes the timers due at now (At not after now) and returns them
// in the order they fire: by At, then by id.
func (t *Timers) Due(now time.Time) []bot.Timer {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []bot.Timer
	for id, tm := range t.pending {
		if !tm.At.After(now) {
			out = append(out, tm)
			delete(t.pending, id)
		}
	}
	slices.SortFunc(out, func(a, b bot.Timer) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Auditor is a bot.Auditor that records every event in order.
type Auditor struct {
	mu     sync.Mutex
	events []bot.AuditEvent
	err    error
}

var _ bot.Auditor = (*Auditor)(nil)

// Record records e, or returns the error set with Fail without recording
// (bot.Auditor's contract: an error means the event was not stored).
func (a *Auditor) Record(_ context.Context, e bot.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.events = append(a.events, e)
	return nil
}

// Fail makes every following Record return err, as a store that is down
// would, until Fail(nil).
func (a *Auditor) Fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
}

// Events returns the recorded events, oldest first.
func (a *Auditor) Events() []bot.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// Actions returns the actions recorded about subject (a request, operation
// or alert id), oldest first: the subject's trail as a test compares it.
func (a *Auditor) Actions(subject string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		if e.Subject == subject {
			out = append(out, e.Action)
		}
	}
	return out
}
