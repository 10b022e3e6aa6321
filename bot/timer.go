package bot

import (
	"context"
	"time"
)

// Timer is a job to run at (or shortly after) a point in time.
type Timer struct {
	// ID names the timer; scheduling an existing ID replaces it, so callers
	// derive IDs from what they time ("expire/<request id>").
	ID  string    `json:"id"`
	At  time.Time `json:"at"`
	Job Job       `json:"job"`
}

// Timers schedules one-time timers. A timer never fires before its At. On
// Lambda (infra/schedtimer): a timer due within 15 minutes is its job put on
// the job queue with an SQS delivery delay, a later one an EventBridge
// Scheduler one-time schedule targeting the queue (fires within ~60 s after
// At); locally: infra/localtimer, persisted in the Store so pending timers
// survive a restart. A timer fires at least once; its job must be
// idempotent, and a job that finds it is early re-arms its timer for the
// time that remains (never at once: that would loop).
// Because timers can be late or lost, every lifecycle that relies on one also
// has a reconcile sweep.
type Timers interface {
	Schedule(ctx context.Context, t Timer) error
	// Cancel removes a pending timer; cancelling an unknown or fired timer
	// is not an error.
	Cancel(ctx context.Context, id string) error
}
