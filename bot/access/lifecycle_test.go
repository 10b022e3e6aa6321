package access

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

// crashMidIssue approves a 30-minute ssm request and kills the activation
// run while it is inside Issue: the store is closed under it (the process
// is gone) and its call never returns. It returns the activation job, the
// instant of the dead run's claim, and the window end that claim fixed.
func crashMidIssue(t *testing.T, h *harness) (id string, job bot.Job, claimedAt, end time.Time) {
	t.Helper()
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	jobs := h.queue.Take()
	if len(jobs) != 1 || jobs[0].Kind != JobActivate {
		t.Fatalf("jobs %+v", jobs)
	}
	claimedAt = h.clock.Now()
	h.granter.holdIssue()
	jctx, kill := context.WithCancel(ctx)
	mux, dead := h.mux, make(chan error, 1)
	go func() { dead <- mux.HandleJob(jctx, jobs[0]) }()
	<-h.granter.issueCalled // the run is inside AssumeRole
	h.restart()             // SIGKILL: its store is gone...
	kill()                  // ...and its call never returns
	if err := <-dead; err == nil {
		t.Fatal("the killed run reported success")
	}
	h.granter.issueGate = nil
	got := h.wantState(r.ID, StateActivating)
	if got.Activation.Claim == "" || !got.Window.ActivatedAt.Equal(claimedAt) {
		t.Fatalf("after the crash: activation %+v, window %+v", got.Activation, got.Window)
	}
	return r.ID, jobs[0], claimedAt, got.Window.ExpiresAt
}

// TestActivationInterruptedByCrash: the restarted queue's retry of the
// job, or the sweep when the job was lost, takes over the dead run's claim
// once its lease has run out (not minutes later), issues again for the
// window end the first claim fixed, records the re-issue, delivers once,
// and the grant expires at that end.
func TestActivationInterruptedByCrash(t *testing.T) {
	for _, tt := range []struct {
		name    string
		recover func(t *testing.T, h *harness, job bot.Job)
	}{
		{"queue retries the job", func(t *testing.T, h *harness, job bot.Job) {
			h.clock.Advance(time.Second) // the restarted queue runs the job at once
			if err := h.mux.HandleJob(ctx, job); !errors.Is(err, ErrClaimed) || bot.IsPermanent(err) {
				t.Fatalf("run inside the dead run's lease: %v, want a retryable ErrClaimed", err)
			}
			h.clock.Advance(claimLease) // the queue's backoff
			if err := h.mux.HandleJob(ctx, job); err != nil {
				t.Fatalf("run after the lease ran out: %v", err)
			}
		}},
		{"job lost, sweep re-enqueues", func(t *testing.T, h *harness, _ bot.Job) {
			h.clock.Advance(retryQuiet + time.Second)
			if err := h.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			h.drain()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id, job, claimedAt, end := crashMidIssue(t, h)
			if want := claimedAt.Add(30 * time.Minute); !end.Equal(want) {
				t.Fatalf("window end %s, want %s", end, want)
			}
			tt.recover(t, h, job)

			got := h.wantState(id, StateActive)
			if want := (Window{ActivatedAt: claimedAt, ExpiresAt: end}); got.Window != want {
				t.Fatalf("window %+v, want %+v (fixed at the first claim)", got.Window, want)
			}
			if n := len(h.granter.issueCalled); n != 1 {
				t.Fatalf("%d Issue calls after the crash, want 1", n)
			}
			if len(h.granter.issued) != 1 || !h.granter.issued[0].WindowEnd.Equal(end) ||
				!strings.Contains(h.granter.issued[0].SessionPolicy, end.UTC().Format(time.RFC3339)) {
				t.Fatalf("re-issued %+v, want one grant ending at %s", h.granter.issued, end)
			}
			if len(h.notifier.delivered) != 1 {
				t.Fatalf("delivered %d times", len(h.notifier.delivered))
			}
			i := slices.IndexFunc(got.History, func(r HistoryRow) bool { return r.Action == ActReissued })
			if i < 0 || got.History[i].Note != NoteReissuedInterrupted {
				t.Fatalf("no re-issue row in %+v", got.History)
			}
			acts := h.audit.Actions(id)
			if ri, ai := slices.Index(acts, ActReissued), slices.Index(acts, ActActive); ri < 0 || ai < ri {
				t.Fatalf("audit trail %v: want %s before %s", acts, ActReissued, ActActive)
			}
			if tm, ok := h.timers.Get(expiryTimerID(id)); !ok || !tm.At.Equal(end) {
				t.Fatalf("expiry timer %+v, want at %s", tm, end)
			}

			h.advance(end.Sub(h.clock.Now()))
			got = h.wantState(id, StateExpired)
			if got.End.Cause != CauseExpired || got.End.At.Before(end) {
				t.Fatalf("end %+v, window end %s", got.End, end)
			}
		})
	}
}

// TestActivationWindowPassedWhileInterrupted: a retry that comes after the
// window fixed by the first claim ended issues nothing and fails the
// request, ending whatever the dead run may have issued.
func TestActivationWindowPassedWhileInterrupted(t *testing.T) {
	h := newHarness(t)
	id, job, _, end := crashMidIssue(t, h)
	h.clock.Advance(end.Sub(h.clock.Now()) + time.Second)
	if err := h.mux.HandleJob(ctx, job); err != nil {
		t.Fatalf("final failure must acknowledge the job: %v", err)
	}
	got := h.wantState(id, StateFailed)
	if got.Failure == nil || !strings.Contains(got.Failure.What, "window ended") || got.Failure.Do == "" {
		t.Fatalf("failure %+v", got.Failure)
	}
	if n := len(h.granter.issueCalled); n != 0 {
		t.Fatalf("issued %d times after the window ended", n)
	}
	if _, _, terminated := h.granter.counts(); terminated != 1 {
		t.Fatalf("sessions of the interrupted attempt terminated %d times, want 1", terminated)
	}
}

// TestActivationFence: a live run whose claim was taken over (it looked
// dead) discards the credentials it issued at RecordIssue; only the taker
// delivers.
func TestActivationFence(t *testing.T) {
	h := newHarness(t)
	h.svc.renewEvery = time.Hour // the holder cannot renew in time
	r, job := h.approvedActivation()
	h.granter.holdIssue()
	slow, taker := make(chan error, 1), make(chan error, 1)
	go func() { slow <- h.mux.HandleJob(ctx, job) }()
	<-h.granter.issueCalled
	h.clock.Advance(claimLease)
	go func() { taker <- h.mux.HandleJob(ctx, job) }()
	<-h.granter.issueCalled // the taker claimed and is issuing too
	close(h.granter.issueGate)
	if err := <-slow; err != nil {
		t.Fatalf("slow run: %v", err)
	}
	if err := <-taker; err != nil {
		t.Fatalf("taker: %v", err)
	}
	got := h.wantState(r.ID, StateActive)
	if issued, _, _ := h.granter.counts(); issued != 2 || len(h.notifier.delivered) != 1 {
		t.Fatalf("issued %d, delivered %d; want 2 and 1", issued, len(h.notifier.delivered))
	}
	if !slices.ContainsFunc(got.History, func(r HistoryRow) bool { return r.Action == ActReissued }) {
		t.Fatal("the taker's issue is not recorded as a re-issue")
	}
}

// TestActivationHeartbeat: a holder that keeps renewing cannot be taken
// over however long its AssumeRole takes, and a holder whose claim is taken
// over anyway (a run with a clock far ahead) is stopped mid-call by its
// heartbeat and delivers nothing.
func TestActivationHeartbeat(t *testing.T) {
	start := func(t *testing.T) (*harness, string, bot.Job, chan error) {
		h := newHarness(t)
		h.svc.renewEvery = time.Millisecond
		h.watch.puts = make(chan string, 64)
		r, job := h.approvedActivation()
		h.granter.holdIssue()
		holder := make(chan error, 1)
		go func() { holder <- h.mux.HandleJob(ctx, job) }()
		<-h.granter.issueCalled
		return h, r.ID, job, holder
	}

	t.Run("renewed claim is not taken over", func(t *testing.T) {
		h, id, job, holder := start(t)
		h.clock.Advance(claimLease + time.Minute) // the claim's own lease ran out
		for renewed := false; !renewed; {
			<-h.watch.puts // a write of the request: is it the renewal?
			renewed = h.get(id).Activation.LeaseUntil.After(h.clock.Now())
		}
		if err := h.mux.HandleJob(ctx, job); !errors.Is(err, ErrClaimed) {
			t.Fatalf("duplicate against a renewing holder: %v, want ErrClaimed", err)
		}
		close(h.granter.issueGate)
		if err := <-holder; err != nil {
			t.Fatal(err)
		}
		h.wantState(id, StateActive)
		if issued, _, _ := h.granter.counts(); issued != 1 || len(h.notifier.delivered) != 1 {
			t.Fatalf("issued %d, delivered %d; want 1 and 1", issued, len(h.notifier.delivered))
		}
	})

	t.Run("lost claim stops the holder", func(t *testing.T) {
		h, id, _, holder := start(t)
		if _, err := h.svc.requests.Update(ctx, id, func(r *Request) error {
			return r.ClaimActivation("c-skewed", h.clock.Now().Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-holder; err != nil { // Issue cancelled by the heartbeat
			t.Fatalf("holder: %v", err)
		}
		got := h.wantState(id, StateActivating)
		if got.Activation.Claim != "c-skewed" || len(h.notifier.delivered) != 0 {
			t.Fatalf("claim %q, delivered %d; the stopped holder must leave both alone", got.Activation.Claim, len(h.notifier.delivered))
		}
	})
}

// TestExtensionInterruptedByCrash: an extension whose run died mid-Issue
// is taken over by the retry once the lease has run out and applied with
// the end fixed at approval.
func TestExtensionInterruptedByCrash(t *testing.T) {
	h := newHarness(t)
	r := h.active(30 * time.Minute)
	if _, err := h.svc.Extend(ctx, alice, r.ID, 20*time.Minute, "still debugging"); err != nil {
		t.Fatal(err)
	}
	cur := h.get(r.ID)
	if _, err := h.svc.ApproveExtension(ctx, bob, r.ID, cur.PendingExtension().ID); err != nil {
		t.Fatal(err)
	}
	job := h.queue.Take()[0]
	h.granter.holdIssue()
	jctx, kill := context.WithCancel(ctx)
	mux, dead := h.mux, make(chan error, 1)
	go func() { dead <- mux.HandleJob(jctx, job) }()
	<-h.granter.issueCalled
	h.restart()
	kill()
	<-dead
	h.granter.issueGate = nil
	want := r.Window.ExpiresAt.Add(20 * time.Minute)

	if err := h.mux.HandleJob(ctx, job); !errors.Is(err, ErrClaimed) || bot.IsPermanent(err) {
		t.Fatalf("run inside the dead run's lease: %v, want a retryable ErrClaimed", err)
	}
	h.clock.Advance(claimLease)
	if err := h.mux.HandleJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := h.wantState(r.ID, StateActive)
	if !got.Window.ExpiresAt.Equal(want) {
		t.Fatalf("window end %s, want %s", got.Window.ExpiresAt, want)
	}
	if n := len(h.notifier.delivered); n != 2 { // activation + extension
		t.Fatalf("delivered %d times, want 2", n)
	}
}
