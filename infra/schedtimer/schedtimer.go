// Package schedtimer is the bot.Timers tokken uses on Lambda: each timer is
// an EventBridge Scheduler one-time schedule whose target is the job queue.
//
// A schedule is at(yyyy-mm-ddThh:mm:ss) in UTC with no flexible window, so it
// fires within about a minute after the timer's time; it delivers the job, in
// the same encoding as infra/sqsqueue, to the SQS queue that triggers the
// worker, and deletes itself afterwards (ActionAfterCompletion DELETE).
// Delivery failures are retried by Scheduler for up to a day and then land
// in the dead-letter queue, so an expiry is never dropped silently.
//
// A timer due within [QueueHorizon] (SQS's longest delivery delay, 15
// minutes) skips Scheduler: its job goes on the queue at once with an SQS
// delay (DelaySeconds, rounded up to the whole second) and Job.NotBefore
// set to the timer's time, so it is delivered at its time, never before.
// That is cheaper and more precise than a schedule for short timers, and
// Scheduler could not take a time that passes before it evaluates the
// schedule anyway. A message on the queue cannot be withdrawn: Cancel, or
// a Schedule that replaces such a timer, stops only a pending schedule, and
// the queued job still runs at its time, so every timer job checks the
// state it acts on (an expiry finds the grant extended or ended, a domain
// check finds its operation over) and does nothing when it is stale.
package schedtimer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/sqsqueue"
)

// QueueHorizon is how far ahead a timer goes on the queue with a delivery
// delay instead of becoming a schedule: timers at or before
// now+QueueHorizon are enqueued delayed until their time.
const QueueHorizon = sqsqueue.MaxDelay

// Retry policy of every schedule's target: Scheduler's maximum, so a
// temporarily failing queue delays a timer instead of losing it.
const (
	MaxRetryAttempts   = 185
	MaxEventAgeSeconds = 86400
)

// Config configures Timers.
type Config struct {
	// GroupName is the schedule group holding tokken's schedules
	// ("default" when empty). It must exist.
	GroupName string
	// QueueARN is the SQS job queue the schedules deliver to.
	QueueARN string
	// RoleARN is the execution role Scheduler assumes to send to
	// QueueARN (and to DLQARN).
	RoleARN string
	// DLQARN is the SQS queue for deliveries that failed after all
	// retries; optional but strongly advised.
	DLQARN string
	// Queue receives the jobs of timers due within QueueHorizon, with
	// Job.NotBefore set to the timer's time (infra/sqsqueue turns it into
	// an SQS delivery delay).
	Queue bot.Queue
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Timers implements bot.Timers over EventBridge Scheduler. It is safe for
// concurrent use.
type Timers struct {
	client *scheduler.Client
	cfg    Config
}

var _ bot.Timers = (*Timers)(nil)

// New returns Timers scheduling through client. It fails when a required
// Config field is missing.
func New(client *scheduler.Client, cfg Config) (*Timers, error) {
	var missing []string
	if client == nil {
		missing = append(missing, "scheduler client")
	}
	if cfg.QueueARN == "" {
		missing = append(missing, "QueueARN")
	}
	if cfg.RoleARN == "" {
		missing = append(missing, "RoleARN")
	}
	if cfg.Queue == nil {
		missing = append(missing, "Queue")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("schedtimer: missing %s", strings.Join(missing, ", "))
	}
	if cfg.GroupName == "" {
		cfg.GroupName = "default"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Timers{client: client, cfg: cfg}, nil
}

// maxNameLen is Scheduler's limit on schedule names.
const maxNameLen = 64

// Name returns the schedule name for a timer id. Scheduler names are
// [0-9a-zA-Z-_.]{1,64}: an id that already fits is used as is; any other id
// is sanitised (other characters become '_'), cut short enough, and suffixed
// with '-' and 16 hex digits of its SHA-256, so that distinct ids such as
// "expire/r1" and "expire:r1" get distinct names. The mapping is
// deterministic, which is what lets Schedule replace and Cancel find a
// timer by id alone.
func Name(id string) string {
	if validName(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	suffix := "-" + hex.EncodeToString(sum[:8])
	var b strings.Builder
	for _, r := range id {
		if b.Len() == maxNameLen-len(suffix) {
			break
		}
		if nameChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + suffix
}

func nameChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.'
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, r := range s {
		if !nameChar(r) {
			return false
		}
	}
	return true
}

// atExpression formats t as a Scheduler at() expression in UTC, rounding up
// to the whole second so that a timer never fires before its time.
func atExpression(t time.Time) string {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return "at(" + t.Format("2006-01-02T15:04:05") + ")"
}

// Schedule creates or replaces the one-time schedule for tm. A timer due
// within QueueHorizon is enqueued on Config.Queue instead, to be delivered
// at tm.At (its Job.NotBefore), and any pending schedule with its id is
// deleted so that it cannot fire twice.
func (t *Timers) Schedule(ctx context.Context, tm bot.Timer) error {
	if tm.ID == "" {
		return errors.New("schedule timer: empty id")
	}
	input, err := sqsqueue.Encode(tm.Job)
	if err != nil {
		return fmt.Errorf("schedule timer %s: %w", tm.ID, err)
	}
	name := Name(tm.ID)
	if !tm.At.After(t.cfg.Now().Add(QueueHorizon)) {
		j := tm.Job
		if tm.At.After(j.NotBefore) {
			j.NotBefore = tm.At
		}
		if err := t.cfg.Queue.Enqueue(ctx, j); err != nil {
			return fmt.Errorf("schedule timer %s (due within %s): %w", tm.ID, QueueHorizon, err)
		}
		if err := t.delete(ctx, name); err != nil {
			return fmt.Errorf("schedule timer %s (due within %s): drop replaced schedule: %w", tm.ID, QueueHorizon, err)
		}
		return nil
	}

	target := &types.Target{
		Arn:     aws.String(t.cfg.QueueARN),
		RoleArn: aws.String(t.cfg.RoleARN),
		Input:   aws.String(input),
		RetryPolicy: &types.RetryPolicy{
			MaximumRetryAttempts:     aws.Int32(MaxRetryAttempts),
			MaximumEventAgeInSeconds: aws.Int32(MaxEventAgeSeconds),
		},
	}
	if t.cfg.DLQARN != "" {
		target.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String(t.cfg.DLQARN)}
	}
	expr := atExpression(tm.At)
	desc := "tokken timer " + tm.ID
	if len(desc) > 512 {
		desc = strings.ToValidUTF8(desc[:512], "")
	}
	create := &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		GroupName:                  aws.String(t.cfg.GroupName),
		ScheduleExpression:         aws.String(expr),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		State:                      types.ScheduleStateEnabled,
		Description:                aws.String(desc),
		Target:                     target,
	}
	update := &scheduler.UpdateScheduleInput{
		Name:                       create.Name,
		GroupName:                  create.GroupName,
		ScheduleExpression:         create.ScheduleExpression,
		ScheduleExpressionTimezone: create.ScheduleExpressionTimezone,
		FlexibleTimeWindow:         create.FlexibleTimeWindow,
		ActionAfterCompletion:      create.ActionAfterCompletion,
		State:                      create.State,
		Description:                create.Description,
		Target:                     target,
	}
	// Create, or replace an existing schedule of the same name. The two
	// can race with a concurrent Cancel or with the old schedule firing
	// and deleting itself, hence the few rounds.
	for range 3 {
		_, err := t.client.CreateSchedule(ctx, create)
		var conflict *types.ConflictException
		if !errors.As(err, &conflict) {
			if err != nil {
				return fmt.Errorf("schedule timer %s at %s: create %s: %w", tm.ID, expr, name, err)
			}
			return nil
		}
		_, err = t.client.UpdateSchedule(ctx, update)
		var gone *types.ResourceNotFoundException
		if !errors.As(err, &gone) {
			if err != nil {
				return fmt.Errorf("schedule timer %s at %s: replace %s: %w", tm.ID, expr, name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("schedule timer %s: schedule %s keeps being created and deleted concurrently", tm.ID, name)
}

// Cancel deletes the timer's schedule. A schedule that does not exist
// (never created, already fired, already cancelled) is not an error.
func (t *Timers) Cancel(ctx context.Context, id string) error {
	if err := t.delete(ctx, Name(id)); err != nil {
		return fmt.Errorf("cancel timer %s: %w", id, err)
	}
	return nil
}

// delete removes a schedule, treating "not found" as done.
func (t *Timers) delete(ctx context.Context, name string) error {
	_, err := t.client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{
		Name:      aws.String(name),
		GroupName: aws.String(t.cfg.GroupName),
	})
	var gone *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &gone) {
		return fmt.Errorf("delete schedule %s: %w", name, err)
	}
	return nil
}
