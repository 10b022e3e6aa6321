package schedtimer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/schedtimer"
	"github.com/tokken/tokken/infra/sqsqueue"
	"github.com/tokken/tokken/testkit/awsfake"
)

const (
	group   = "tokken"
	roleARN = "arn:aws:iam::123456789012:role/tokken-scheduler"
)

type env struct {
	f      *awsfake.Fake
	timers *schedtimer.Timers
	now    time.Time
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{f: awsfake.New(t), now: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	e.f.Scheduler().CreateGroup(group)
	queueURL, queueARN := e.f.SQS().CreateQueue("tokken-jobs")
	_, dlqARN := e.f.SQS().CreateQueue("tokken-timers-dlq")
	cfg := e.f.Config(ctx)
	timers, err := schedtimer.New(scheduler.NewFromConfig(cfg), schedtimer.Config{
		GroupName: group, QueueARN: queueARN, RoleARN: roleARN, DLQARN: dlqARN,
		Queue: sqsqueue.New(sqs.NewFromConfig(cfg), queueURL).WithClock(func() time.Time { return e.now }),
		Now:   func() time.Time { return e.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.timers = timers
	return e
}

func timer(t *testing.T, id string, at time.Time) bot.Timer {
	t.Helper()
	j, err := bot.NewJob(id, "access.expire", map[string]string{"grant": id})
	if err != nil {
		t.Fatal(err)
	}
	return bot.Timer{ID: id, At: at, Job: j}
}

func TestScheduleCreatesOneTimeSchedule(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	tm := timer(t, "expire/r1", e.now.Add(30*time.Minute))
	if err := e.timers.Schedule(ctx, tm); err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	scheds := e.f.Scheduler().Schedules(group)
	if len(scheds) != 1 {
		t.Fatalf("%d schedules, want 1", len(scheds))
	}
	s := scheds[0]
	want, _ := sqsqueue.Encode(tm.Job)
	checks := []struct{ field, got, want string }{
		{"name", s.Name, schedtimer.Name("expire/r1")},
		{"expression", s.ScheduleExpression, "at(2026-11-22T03:30:00)"},
		{"timezone", s.ScheduleExpressionTimezone, "UTC"},
		{"window", s.FlexibleWindowMode, "OFF"},
		{"after completion", s.ActionAfterCompletion, "DELETE"},
		{"target", s.TargetARN, "arn:aws:sqs:us-east-1:123456789012:tokken-jobs"},
		{"role", s.RoleARN, roleARN},
		{"dlq", s.DeadLetterARN, "arn:aws:sqs:us-east-1:123456789012:tokken-timers-dlq"},
		{"input", s.Input, want},
		{"retries", fmt.Sprint(deref(s.MaxRetryAttempts), "/", deref(s.MaxEventAgeSeconds)), "185/86400"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
}

func deref(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func TestScheduleReplaces(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	if err := e.timers.Schedule(ctx, timer(t, "expire-r1", e.now.Add(30*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := e.timers.Schedule(ctx, timer(t, "expire-r1", e.now.Add(90*time.Minute))); err != nil {
		t.Fatalf("replace: %v", err)
	}
	scheds := e.f.Scheduler().Schedules(group)
	if len(scheds) != 1 || scheds[0].ScheduleExpression != "at(2026-11-22T04:30:00)" {
		t.Fatalf("schedules after replace = %+v", scheds)
	}
	if n := len(e.f.Calls(awsfake.SchedulerService, "UpdateSchedule")); n != 1 {
		t.Errorf("UpdateSchedule calls = %d, want 1", n)
	}
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	if err := e.timers.Schedule(ctx, timer(t, "expire-r1", e.now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	e.f.Fail(awsfake.SchedulerService, "DeleteSchedule", 1, awsfake.Throttle)
	if err := e.timers.Cancel(ctx, "expire-r1"); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if n := len(e.f.Scheduler().Schedules(group)); n != 0 {
		t.Errorf("%d schedules left after cancel", n)
	}
	for _, id := range []string{"expire-r1", "never-scheduled", "odd/id with spaces"} {
		if err := e.timers.Cancel(ctx, id); err != nil {
			t.Errorf("Cancel(%q) of a missing timer: %v, want nil", id, err)
		}
	}
	e.f.Fail(awsfake.SchedulerService, "DeleteSchedule", 10, awsfake.Internal)
	if err := e.timers.Cancel(ctx, "expire-r2"); err == nil || !strings.Contains(err.Error(), "expire-r2") {
		t.Errorf("Cancel with a failing Scheduler: %v, want an error naming the timer", err)
	}
}

func TestNearTimerIsEnqueuedDelayed(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.f.SetNow(func() time.Time { return e.now })
	// A pending schedule for the same id must not fire later.
	if err := e.timers.Schedule(ctx, timer(t, "expire-r1", e.now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at    time.Time
		delay time.Duration // the SQS delivery delay the message must carry
	}{
		{e.now.Add(-time.Hour), 0},
		{e.now, 0},
		{e.now.Add(300 * time.Millisecond), time.Second}, // rounded up: never early
		{e.now.Add(30 * time.Second), 30 * time.Second},
		{e.now.Add(time.Minute), time.Minute},
		{e.now.Add(schedtimer.QueueHorizon), schedtimer.QueueHorizon},
	}
	for _, c := range cases {
		tm := timer(t, "expire-r1", c.at)
		if err := e.timers.Schedule(ctx, tm); err != nil {
			t.Fatalf("Schedule(due at %s): %v", c.at, err)
		}
		msgs := e.f.SQS().Drain("tokken-jobs")
		if len(msgs) != 1 {
			t.Fatalf("due at %s: %d messages queued, want 1", c.at, len(msgs))
		}
		if got := msgs[0].VisibleAt.Sub(e.now); got != c.delay {
			t.Errorf("due at +%s: delivered after %s, want %s", c.at.Sub(e.now), got, c.delay)
		}
		got, err := sqsqueue.DecodeMessage(msgs[0].Body)
		if err != nil || got.ID != tm.Job.ID || string(got.Payload) != string(tm.Job.Payload) {
			t.Errorf("queued job = %+v, %v; want %+v", got, err, tm.Job)
		}
		if !got.NotBefore.Equal(c.at) {
			t.Errorf("queued job NotBefore = %s, want the timer's time %s", got.NotBefore, c.at)
		}
	}
	if n := len(e.f.Scheduler().Schedules(group)); n != 0 {
		t.Errorf("%d schedules left; the near timer should have replaced the pending one", n)
	}
	if n := len(e.f.Calls(awsfake.SchedulerService, "CreateSchedule")); n != 1 {
		t.Errorf("CreateSchedule calls = %d, want only the first", n)
	}
	// Beyond the horizon it is a schedule again.
	if err := e.timers.Schedule(ctx, timer(t, "expire-r1", e.now.Add(schedtimer.QueueHorizon+time.Second))); err != nil {
		t.Fatal(err)
	}
	if n := len(e.f.Scheduler().Schedules(group)); n != 1 {
		t.Errorf("%d schedules for a timer beyond the horizon, want 1", n)
	}
}

// TestFireDeliversJob is the whole path: schedule, Scheduler fires at the
// time, the job lands in SQS, and the dispatcher's decoder gives it back.
func TestFireDeliversJob(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	tm := timer(t, "expire/r1", e.now.Add(20*time.Minute).Add(300*time.Millisecond))
	if err := e.timers.Schedule(ctx, tm); err != nil {
		t.Fatal(err)
	}
	if fired, err := e.f.Scheduler().FireDue(group, tm.At); err != nil || len(fired) != 0 {
		t.Fatalf("FireDue before the rounded-up second fired %v (%v): timers must not fire early", fired, err)
	}
	fired, err := e.f.Scheduler().FireDue(group, e.now.Add(21*time.Minute))
	if err != nil || len(fired) != 1 {
		t.Fatalf("FireDue = %v, %v", fired, err)
	}
	msgs := e.f.SQS().Drain("tokken-jobs")
	if len(msgs) != 1 {
		t.Fatalf("%d messages after firing, want 1", len(msgs))
	}
	got, err := sqsqueue.DecodeMessage(msgs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tm.Job.ID || got.Kind != tm.Job.Kind || string(got.Payload) != string(tm.Job.Payload) {
		t.Errorf("fired job = %+v, want %+v", got, tm.Job)
	}
	if n := len(e.f.Scheduler().Schedules(group)); n != 0 {
		t.Errorf("schedule not deleted after completion")
	}
	// Cancelling after the timer fired is not an error.
	if err := e.timers.Cancel(ctx, tm.ID); err != nil {
		t.Errorf("Cancel after fire: %v", err)
	}
}

func TestScheduleRetriesThrottling(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.f.Fail(awsfake.SchedulerService, "CreateSchedule", 3, awsfake.Throttle)
	if err := e.timers.Schedule(ctx, timer(t, "expire-r1", e.now.Add(time.Hour))); err != nil {
		t.Fatalf("Schedule under throttling: %v", err)
	}
	calls := e.f.Calls(awsfake.SchedulerService, "CreateSchedule")
	if len(calls) != 4 || calls[0].ErrorCode != "ThrottlingException" {
		t.Errorf("CreateSchedule calls = %d (first error %q), want 3 throttled + 1", len(calls), calls[0].ErrorCode)
	}
	if n := len(e.f.Scheduler().Schedules(group)); n != 1 {
		t.Errorf("%d schedules, want 1", n)
	}
}

func TestScheduleErrors(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	tests := []struct {
		name string
		tm   bot.Timer
	}{
		{"empty id", bot.Timer{At: e.now.Add(time.Hour), Job: bot.Job{ID: "j", Kind: "k"}}},
		{"job without kind", bot.Timer{ID: "t", At: e.now.Add(time.Hour), Job: bot.Job{ID: "j"}}},
		{"job too large", bot.Timer{ID: "t", At: e.now.Add(time.Hour), Job: bot.Job{ID: "j", Kind: "k",
			Payload: []byte(`"` + strings.Repeat("x", sqsqueue.MaxMessageSize) + `"`)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.timers.Schedule(ctx, tc.tm); err == nil {
				t.Error("Schedule succeeded")
			}
		})
	}
	if n := len(e.f.Calls(awsfake.SchedulerService, "")); n != 0 {
		t.Errorf("%d Scheduler calls for invalid timers, want 0", n)
	}
	// A missing group is reported with the timer id.
	f := awsfake.New(t)
	_, arn := f.SQS().CreateQueue("q")
	timers, err := schedtimer.New(scheduler.NewFromConfig(f.Config(ctx)), schedtimer.Config{GroupName: "missing", QueueARN: arn, RoleARN: roleARN, Queue: noQueue{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := timers.Schedule(ctx, timer(t, "expire-r9", time.Now().Add(time.Hour))); err == nil || !strings.Contains(err.Error(), "expire-r9") {
		t.Errorf("Schedule into a missing group: %v", err)
	}
}

type noQueue struct{}

func (noQueue) Enqueue(context.Context, bot.Job) error {
	return fmt.Errorf("noQueue: unexpected enqueue")
}

func TestNewValidates(t *testing.T) {
	f := awsfake.New(t)
	client := scheduler.NewFromConfig(f.Config(context.Background()))
	full := schedtimer.Config{QueueARN: "arn:aws:sqs:us-east-1:123456789012:q", RoleARN: roleARN, Queue: noQueue{}}
	tests := []struct {
		name   string
		client *scheduler.Client
		mutate func(*schedtimer.Config)
		want   string
	}{
		{"ok", client, func(*schedtimer.Config) {}, ""},
		{"no client", nil, func(*schedtimer.Config) {}, "scheduler client"},
		{"no queue arn", client, func(c *schedtimer.Config) { c.QueueARN = "" }, "QueueARN"},
		{"no role", client, func(c *schedtimer.Config) { c.RoleARN = "" }, "RoleARN"},
		{"no queue", client, func(c *schedtimer.Config) { c.Queue = nil }, "Queue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.mutate(&cfg)
			_, err := schedtimer.New(tc.client, cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		id       string
		same     bool // used unchanged
		hasPrefx string
	}{
		{"expire-r1", true, ""},
		{"a.b_c-D9", true, ""},
		{strings.Repeat("x", 64), true, ""},
		{"expire/r1", false, "expire_r1-"},
		{"expire:r1", false, "expire_r1-"},
		{"", false, "-"},
		{"期限/r1", false, "___r1-"},
		{long, false, strings.Repeat("a", 47) + "-"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		n := schedtimer.Name(tc.id)
		if n != schedtimer.Name(tc.id) {
			t.Errorf("Name(%q) is not deterministic", tc.id)
		}
		if len(n) < 1 || len(n) > 64 {
			t.Errorf("Name(%q) = %q: length %d", tc.id, n, len(n))
		}
		for _, r := range n {
			if !strings.ContainsRune("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.", r) {
				t.Errorf("Name(%q) = %q contains %q", tc.id, n, r)
			}
		}
		if tc.same && n != tc.id {
			t.Errorf("Name(%q) = %q, want it unchanged", tc.id, n)
		}
		if !tc.same && !strings.HasPrefix(n, tc.hasPrefx) {
			t.Errorf("Name(%q) = %q, want prefix %q", tc.id, n, tc.hasPrefx)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("Name(%q) = Name(%q) = %q", tc.id, prev, n)
		}
		seen[n] = tc.id
	}
}

// FuzzName checks that every id maps to a valid, stable schedule name.
func FuzzName(f *testing.F) {
	for _, s := range []string{"expire-r1", "expire/r1", "", strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		n := schedtimer.Name(id)
		if len(n) < 1 || len(n) > 64 || n != schedtimer.Name(id) {
			t.Fatalf("Name(%q) = %q", id, n)
		}
		for _, r := range n {
			if !strings.ContainsRune("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.", r) {
				t.Fatalf("Name(%q) = %q contains %q", id, n, r)
			}
		}
	})
}
