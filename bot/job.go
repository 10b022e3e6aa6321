package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job is a unit of slow work handed from ingress to the worker, or fired by
// a timer. Jobs are delivered at least once: handlers must be idempotent.
type Job struct {
	// ID identifies the job for deduplication and logs. Producers derive it
	// from what caused the job (a Slack event id, a timer id) where they can.
	ID string `json:"id"`
	// Kind selects the handler in a JobMux, e.g. "access.approve".
	Kind string `json:"kind"`
	// Payload is the handler's input, JSON.
	Payload json.RawMessage `json:"payload,omitempty"`
	// NotBefore, when set, is the earliest time the job may run: work that
	// must wait (a Slack channel's next post slot) is deferred without
	// holding a worker. Queues may run it later, never earlier (SQS rounds
	// the delay up to whole seconds and caps it at 15 minutes; a job due
	// further out is delivered early and must check the time itself).
	NotBefore time.Time `json:"not_before,omitzero"`
}

// SweepInterval is how often the reconcile sweep runs: `tokken serve`
// enqueues it on this period and template.yaml's SweepSchedule sends it at
// this rate (a template test holds them equal). It is the one figure
// messages quote when they promise that tokken tries again.
const SweepInterval = 5 * time.Minute

// NewJob builds a Job whose payload is v encoded as JSON.
func NewJob(id, kind string, v any) (Job, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return Job{}, fmt.Errorf("encode %s job: %w", kind, err)
	}
	return Job{ID: id, Kind: kind, Payload: p}, nil
}

// Decode unmarshals the job's payload into v; a payload that does not decode
// is a permanent failure (retrying will not fix it).
func (j Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return Permanent(fmt.Errorf("decode %s job %s: %w", j.Kind, j.ID, err))
	}
	return nil
}

// Queue accepts jobs for the worker: SQS on Lambda (infra/sqsqueue), an
// in-process queue locally (infra/localqueue).
type Queue interface {
	Enqueue(ctx context.Context, j Job) error
}

// JobHandler runs one job. A nil error acknowledges it; any other error
// asks for a retry, unless it wraps a PermanentError.
type JobHandler func(ctx context.Context, j Job) error

// PermanentError marks a job failure that retrying cannot fix; queues move
// such jobs to their dead-letter list at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err wraps a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// JobMux routes jobs to handlers by Kind. Register everything before the
// first job runs; it is not safe to register concurrently with HandleJob.
type JobMux struct {
	handlers map[string]JobHandler
	givenUp  map[string]GiveUpHandler
}

// NewJobMux returns an empty JobMux.
func NewJobMux() *JobMux { return &JobMux{handlers: map[string]JobHandler{}} }

// Handle registers h for jobs of kind. Registering a kind twice panics: it is
// a wiring bug caught at start-up.
func (m *JobMux) Handle(kind string, h JobHandler) {
	if _, dup := m.handlers[kind]; dup {
		panic("bot: job kind registered twice: " + kind)
	}
	m.handlers[kind] = h
}

// HandleJob runs the handler registered for j.Kind. An unknown kind is a
// permanent failure.
func (m *JobMux) HandleJob(ctx context.Context, j Job) error {
	h, ok := m.handlers[j.Kind]
	if !ok {
		return Permanent(fmt.Errorf("job %s: no handler for kind %q", j.ID, j.Kind))
	}
	return h(ctx, j)
}

// Kinds lists the registered job kinds (for diagnostics and tests).
func (m *JobMux) Kinds() []string {
	out := make([]string, 0, len(m.handlers))
	for k := range m.handlers {
		out = append(out, k)
	}
	return out
}

// GiveUpHandler runs when a job of its kind has been given up: it failed
// for good (a permanent error, or every retry) and was dead-lettered. It
// ends whatever the job was moving forward (marks the operation or request
// failed, tells the requester, raises an alert naming it), so nothing waits
// for a job that will never run again. cause says how the job was given up.
// It must be idempotent; an error asks for it to be run again later.
type GiveUpHandler func(ctx context.Context, j Job, cause string) error

// HandleGiveUp registers h for given-up jobs of kind. Registering a kind
// twice panics, like Handle.
func (m *JobMux) HandleGiveUp(kind string, h GiveUpHandler) {
	if m.givenUp == nil {
		m.givenUp = map[string]GiveUpHandler{}
	}
	if _, dup := m.givenUp[kind]; dup {
		panic("bot: give-up handler registered twice: " + kind)
	}
	m.givenUp[kind] = h
}

// GiveUp runs the give-up handler registered for j.Kind. handled is false
// when the kind has none: the caller then raises a generic alert naming the
// job.
func (m *JobMux) GiveUp(ctx context.Context, j Job, cause string) (handled bool, err error) {
	h, ok := m.givenUp[j.Kind]
	if !ok {
		return false, nil
	}
	return true, h(ctx, j, cause)
}
