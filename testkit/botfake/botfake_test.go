package botfake

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// ids lists the ID of each job or timer, in order.
func ids[T bot.Job | bot.Timer](xs []T) []string {
	var out []string
	for _, x := range xs {
		switch v := any(x).(type) {
		case bot.Job:
			out = append(out, v.ID)
		case bot.Timer:
			out = append(out, v.ID)
		}
	}
	return out
}

func TestQueueRecordsInOrder(t *testing.T) {
	ctx := context.Background()
	var q Queue
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Enqueue(ctx, bot.Job{ID: id, Kind: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(q.Jobs()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Jobs() = %v", got)
	}
	if got := ids(q.Jobs()); len(got) != 3 {
		t.Fatalf("Jobs() removed jobs: second call = %v", got)
	}
	if got := ids(q.Take()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Take() = %v", got)
	}
	if got := q.Take(); len(got) != 0 {
		t.Fatalf("Take() after Take() = %v", got)
	}
}

func TestQueueFail(t *testing.T) {
	ctx := context.Background()
	var q Queue
	down := errors.New("queue down")
	q.Fail(down)
	if err := q.Enqueue(ctx, bot.Job{ID: "lost"}); !errors.Is(err, down) {
		t.Fatalf("Enqueue while failing = %v, want %v", err, down)
	}
	q.Fail(nil)
	if err := q.Enqueue(ctx, bot.Job{ID: "kept"}); err != nil {
		t.Fatal(err)
	}
	if got := ids(q.Jobs()); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("Jobs() = %v, want only the job enqueued after recovery", got)
	}
}

func TestQueueDrain(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		start   []string
		spawn   map[string][]string // job id → ids it enqueues when run
		fail    string              // job id whose run fails
		wantRun []string
		wantErr error
		left    []string // still queued after Drain
	}{
		{name: "empty"},
		{name: "one round", start: []string{"a", "b"}, wantRun: []string{"a", "b"}},
		{name: "jobs enqueue jobs", start: []string{"a", "b"},
			spawn:   map[string][]string{"a": {"a1", "a2"}, "a1": {"a11"}},
			wantRun: []string{"a", "b", "a1", "a2", "a11"}},
		{name: "stops at a failure and keeps the rest", start: []string{"a", "b", "c"},
			spawn: map[string][]string{"a": {"a1"}}, fail: "b",
			wantRun: []string{"a", "b"}, wantErr: boom, left: []string{"c", "a1"}},
		{name: "runaway", start: []string{"loop"}, spawn: map[string][]string{"loop": {"loop"}},
			wantErr: ErrRunaway, left: []string{"loop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var q Queue
			for _, id := range tt.start {
				_ = q.Enqueue(ctx, bot.Job{ID: id, Kind: "test"})
			}
			var ran []string
			err := q.Drain(ctx, func(ctx context.Context, j bot.Job) error {
				ran = append(ran, j.ID)
				for _, id := range tt.spawn[j.ID] {
					if err := q.Enqueue(ctx, bot.Job{ID: id, Kind: "test"}); err != nil {
						return err
					}
				}
				if j.ID == tt.fail {
					return boom
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Drain = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == ErrRunaway {
				if len(ran) != MaxDrainRounds {
					t.Errorf("runaway drain ran %d jobs, want %d", len(ran), MaxDrainRounds)
				}
			} else if !slices.Equal(ran, tt.wantRun) {
				t.Errorf("ran %v, want %v", ran, tt.wantRun)
			}
			if got := ids(q.Jobs()); !slices.Equal(got, tt.left) {
				t.Errorf("left in the queue %v, want %v", got, tt.left)
			}
		})
	}
}

func TestQueueDrainNamesTheFailedJob(t *testing.T) {
	ctx := context.Background()
	var q Queue
	_ = q.Enqueue(ctx, bot.Job{ID: "j-1", Kind: "access.expire"})
	err := q.Drain(ctx, func(context.Context, bot.Job) error { return errors.New("store down") })
	if err == nil || err.Error() != "job access.expire j-1: store down" {
		t.Fatalf("Drain = %v", err)
	}
}

func TestQueueConcurrentEnqueue(t *testing.T) {
	ctx := context.Background()
	var q Queue
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_ = q.Enqueue(ctx, bot.Job{Kind: "k"})
			}
		})
	}
	wg.Wait()
	if n := len(q.Take()); n != 400 {
		t.Fatalf("recorded %d jobs, want 400", n)
	}
}

func TestTimers(t *testing.T) {
	ctx := context.Background()
	var tms Timers
	for _, tm := range []bot.Timer{
		{ID: "late", At: t0.Add(time.Hour)},
		{ID: "b", At: t0.Add(time.Minute)},
		{ID: "a", At: t0.Add(time.Minute)},
		{ID: "first", At: t0},
		{ID: "gone", At: t0},
		{ID: "moved", At: t0},
	} {
		if err := tms.Schedule(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	if err := tms.Schedule(ctx, bot.Timer{ID: "moved", At: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := tms.Cancel(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := tms.Cancel(ctx, "never-scheduled"); err != nil {
		t.Fatalf("Cancel of an unknown timer: %v", err)
	}
	if tm, ok := tms.Get("moved"); !ok || !tm.At.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Get(moved) = %+v, %v: rescheduling did not replace it", tm, ok)
	}
	if _, ok := tms.Get("gone"); ok {
		t.Fatal("cancelled timer still pending")
	}

	steps := []struct {
		at   time.Time
		want []string
	}{
		{t0.Add(-time.Second), nil},
		{t0.Add(time.Minute), []string{"first", "a", "b"}},
		{t0.Add(time.Minute), nil}, // Due removed them
		{t0.Add(3 * time.Hour), []string{"late", "moved"}},
	}
	for _, s := range steps {
		if got := ids(tms.Due(s.at)); !slices.Equal(got, s.want) {
			t.Errorf("Due(%v) = %v, want %v", s.at.Sub(t0), got, s.want)
		}
	}
	if _, ok := tms.Get("late"); ok {
		t.Error("a fired timer is still pending")
	}
}

func TestAuditor(t *testing.T) {
	ctx := context.Background()
	var a Auditor
	for _, e := range []bot.AuditEvent{
		{Subject: "r-1", Action: "access.requested", Actor: "U1"},
		{Subject: "r-2", Action: "access.requested", Actor: "U2"},
		{Subject: "r-1", Action: "access.approved", Actor: "U3"},
	} {
		if err := a.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	down := errors.New("store down")
	a.Fail(down)
	if err := a.Record(ctx, bot.AuditEvent{Subject: "r-1", Action: "access.active"}); !errors.Is(err, down) {
		t.Fatalf("Record while failing = %v, want %v", err, down)
	}
	a.Fail(nil)

	tests := []struct {
		subject string
		want    []string
	}{
		{"r-1", []string{"access.requested", "access.approved"}},
		{"r-2", []string{"access.requested"}},
		{"r-3", nil},
	}
	for _, tt := range tests {
		if got := a.Actions(tt.subject); !slices.Equal(got, tt.want) {
			t.Errorf("Actions(%s) = %v, want %v", tt.subject, got, tt.want)
		}
	}
	evs := a.Events()
	if len(evs) != 3 || evs[2].Actor != "U3" {
		t.Fatalf("Events() = %+v", evs)
	}
	evs[0].Action = "tampered"
	if a.Events()[0].Action != "access.requested" {
		t.Error("Events() returned the recorder's own slice")
	}
}
