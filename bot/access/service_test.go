package access

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/testkit/botfake"
)

var ctx = context.Background()

func TestRequestApproveDeliverExpire(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 10 * time.Minute, Instances: []string{web1}, Ticket: "INC-42"})
	if r.State != StatePending || r.Kind != KindSSM || len(r.Targets) != 1 || r.Targets[0].Tags["env"] != "prod" {
		t.Fatalf("submitted %+v", r)
	}
	if got := h.get(r.ID).Message; got.Channel != "CAPPROVERS" || got.TS == "" {
		t.Fatalf("approver message not remembered: %+v", got)
	}

	h.clock.Advance(3 * time.Minute) // approval comes later: the window starts at activation
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.wantState(r.ID, StateActivating)
	h.drain()
	got := h.wantState(r.ID, StateActive)
	activated := t0.Add(3 * time.Minute)
	if !got.Window.ActivatedAt.Equal(activated) || !got.Window.ExpiresAt.Equal(activated.Add(10*time.Minute)) {
		t.Fatalf("window %+v, want 10m from %s", got.Window, activated)
	}
	if len(h.granter.issued) != 1 {
		t.Fatalf("Issue called %d times, want 1", len(h.granter.issued))
	}
	spec := h.granter.issued[0]
	if spec.RequestID != r.ID || spec.Requester != alice || spec.DurationSeconds != 900 ||
		!spec.WindowEnd.Equal(got.Window.ExpiresAt) || !strings.Contains(spec.SessionPolicy, web1) {
		t.Fatalf("grant spec %+v", spec)
	}
	if !slices.Equal(h.notifier.delivered, []string{r.ID}) {
		t.Fatalf("credentials delivered %v", h.notifier.delivered)
	}
	tm, ok := h.timers.Get(expiryTimerID(r.ID))
	if !ok || !tm.At.Equal(got.Window.ExpiresAt) || tm.Job.Kind != JobExpire {
		t.Fatalf("expiry timer %+v %v", tm, ok)
	}
	list, err := h.svc.List(ctx, alice)
	if err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("List = %v, %v", list, err)
	}

	h.granter.sessions = 2
	h.advance(9 * time.Minute) // not yet
	h.wantState(r.ID, StateActive)
	h.advance(time.Minute)
	got = h.wantState(r.ID, StateExpired)
	if got.End.Sessions != 2 || got.End.By != System {
		t.Fatalf("end %+v", got.End)
	}
	issued, revoked, terminated := h.granter.counts()
	if issued != 1 || revoked != 0 || terminated != 1 {
		t.Fatalf("issued %d revoked %d terminated %d; want 1, 0 (the session policy already denies), 1", issued, revoked, terminated)
	}
	wantAudit := []string{ActRequested, ActApproved, ActActivating, ActActive, ActEnding, ActSessionEnded, ActSessionEnded, ActExpired}
	if got := h.audit.Actions(r.ID); !slices.Equal(got, wantAudit) {
		t.Fatalf("audit %v, want %v", got, wantAudit)
	}
	// Each terminated session is its own event naming the session and
	// what it was on.
	var ended []string
	for _, e := range h.audit.Events() {
		if e.Subject == r.ID && e.Action == ActSessionEnded {
			ended = append(ended, e.Detail["session"]+" on "+e.Detail["target"])
		}
	}
	if want := []string{r.ID + "-0 on i-00000000000000000", r.ID + "-1 on i-00000000000000001"}; !slices.Equal(ended, want) {
		t.Fatalf("session_ended events %v, want %v", ended, want)
	}
	if got := h.notifier.toldActions(r.ID); !slices.Equal(got, []string{ActApproved, ActActive, ActExpired}) {
		t.Fatalf("requester told %v", got)
	}
	if list, _ := h.svc.List(ctx, alice); len(list) != 0 {
		t.Fatalf("expired request still listed: %v", list)
	}
	if len(h.jobErrs) > 0 {
		t.Fatalf("job errors: %v", h.jobErrs)
	}
}

func TestDeny(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	if _, err := h.svc.Deny(ctx, bob, r.ID, "  "); !errors.Is(err, ErrReasonRequired) {
		t.Fatalf("deny without reason: %v", err)
	}
	if _, err := h.svc.Deny(ctx, eve, r.ID, "no"); !isNotAllowed(err) {
		t.Fatalf("deny by eve: %v", err)
	}
	if _, err := h.svc.Deny(ctx, bob, r.ID, "use staging"); err != nil {
		t.Fatal(err)
	}
	got := h.wantState(r.ID, StateDenied)
	if got.Denial.By != bob || got.Denial.Why != "use staging" {
		t.Fatalf("denial %+v", got.Denial)
	}
	_, err := h.svc.Approve(ctx, carol, r.ID)
	var decided *ErrAlreadyDecided
	if !errors.As(err, &decided) || decided.State != StateDenied || !slices.Equal(decided.By, []string{bob}) {
		t.Fatalf("approve after deny: %v", err)
	}
	h.drain()
	if n, _, _ := h.granter.counts(); n != 0 {
		t.Fatalf("denied request issued %d grants", n)
	}
	if got := h.notifier.toldActions(r.ID); !slices.Equal(got, []string{ActDenied}) {
		t.Fatalf("requester told %v", got)
	}
}

func TestSelfApprovalRefused(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	// alice is an allowed approver in the policy, but never of her own request.
	for name, err := range map[string]error{
		"approve": second(h.svc.Approve(ctx, alice, r.ID)),
		"deny":    second(h.svc.Deny(ctx, alice, r.ID, "nah")),
	} {
		if !errors.Is(err, ErrSelfApproval) {
			t.Errorf("%s by requester: %v", name, err)
		}
	}
	if got := h.get(r.ID); got.State != StatePending || len(got.Approvals) != 0 {
		t.Fatalf("self-approval changed the request: %+v", got)
	}
}

func TestApproverNotAllowedChangesNothing(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	before := h.get(r.ID)
	_, err := h.svc.Approve(ctx, eve, r.ID)
	var na *ErrNotAllowed
	if !errors.As(err, &na) || na.Action != "approve" || len(na.Reasons) == 0 {
		t.Fatalf("approve by eve: %v", err)
	}
	if after := h.get(r.ID); len(after.History) != len(before.History) || after.State != StatePending {
		t.Fatalf("refused click changed the request")
	}
}

func TestQuorumTwoOfThree(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-admin", Duration: time.Hour})
	got, err := h.svc.Approve(ctx, bob, r.ID)
	if err != nil || got.State != StatePending || len(got.Approvals) != 1 {
		t.Fatalf("first approval: %+v %v", got, err)
	}
	if _, err := h.svc.Approve(ctx, bob, r.ID); !errors.Is(err, ErrAlreadyApproved) {
		t.Fatalf("same approver twice: %v", err)
	}
	h.drain()
	if n, _, _ := h.granter.counts(); n != 0 {
		t.Fatal("1 of 2 approvals issued a grant")
	}
	if _, err := h.svc.Approve(ctx, carol, r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.Approve(ctx, dave, r.ID)
	var decided *ErrAlreadyDecided
	if !errors.As(err, &decided) || !slices.Equal(decided.By, []string{bob, carol}) {
		t.Fatalf("third approver: %v", err)
	}
	h.drain()
	got = h.wantState(r.ID, StateActive)
	if !slices.Equal(got.Approvers(), []string{bob, carol}) {
		t.Fatalf("approvers %v", got.Approvers())
	}
	if spec := h.granter.issued[0]; spec.DurationSeconds != 3600 || !strings.Contains(spec.SessionPolicy, `"Action":"*"`) {
		t.Fatalf("sts spec %+v", spec)
	}
}

func TestNoApprovalNeededActivatesAtOnce(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "dev-read", Duration: 2 * time.Hour})
	if r.State != StateActivating {
		t.Fatalf("state %s", r.State)
	}
	h.drain()
	h.wantState(r.ID, StateActive)
}

func TestBreakGlass(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	if _, err := h.svc.BreakGlass(ctx, alice, r.ID, ""); !errors.Is(err, ErrReasonRequired) {
		t.Fatalf("break-glass without reason: %v", err)
	}
	if _, err := h.svc.BreakGlass(ctx, bob, r.ID, "sev1"); !errors.Is(err, ErrNotRequester) {
		t.Fatalf("break-glass by another: %v", err)
	}
	if _, err := h.svc.BreakGlass(ctx, alice, r.ID, "sev1, nobody answers"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	got := h.wantState(r.ID, StateActive)
	if !got.BreakGlass.NeedsReview() {
		t.Fatal("break-glass does not await review")
	}
	if a := h.notifier.alertActions(); !slices.Equal(a, []string{"audit:" + ActBreakGlass}) {
		t.Fatalf("alerts %v", a)
	}
	if _, err := h.svc.Review(ctx, alice, r.ID); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self-review: %v", err)
	}
	if _, err := h.svc.Review(ctx, bob, r.ID); !isNotAllowed(err) {
		t.Fatalf("review by bob (no review permission): %v", err)
	}
	if got, err := h.svc.Review(ctx, admin, r.ID); err != nil || got.BreakGlass.ReviewedBy != admin {
		t.Fatalf("review: %+v %v", got.BreakGlass, err)
	}

	// A profile without break-glass refuses it whatever the policy says.
	r2 := h.submit(SubmitInput{Profile: "prod-admin", Duration: time.Hour})
	var bg *ErrBreakGlassDisabled
	if _, err := h.svc.BreakGlass(ctx, alice, r2.ID, "sev1"); !errors.As(err, &bg) {
		t.Fatalf("break-glass on prod-admin: %v", err)
	}
}

func TestConcurrentApprovalsIssueOnce(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	const n = 50
	approvers := []string{bob, carol, dave, admin}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.svc.Approve(ctx, approvers[i%len(approvers)], r.ID)
		}()
	}
	wg.Wait()
	var winners int
	got := h.get(r.ID)
	for _, err := range errs {
		var decided *ErrAlreadyDecided
		switch {
		case err == nil:
			winners++
		case errors.As(err, &decided):
			if !slices.Equal(decided.By, got.Approvers()) {
				t.Errorf("loser told %v, winner was %v", decided.By, got.Approvers())
			}
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if winners != 1 || len(got.Approvals) != 1 {
		t.Fatalf("%d winners, %d approvals; want 1", winners, len(got.Approvals))
	}
	// Every job the clicks produced, delivered twice.
	jobs := h.queue.Take()
	jobs = append(jobs, jobs...)
	var jwg sync.WaitGroup
	var mu sync.Mutex
	var retry []bot.Job
	for _, j := range jobs {
		jwg.Add(1)
		go func() {
			defer jwg.Done()
			err := h.mux.HandleJob(ctx, j)
			switch {
			case err == nil:
			case errors.Is(err, ErrClaimed) && !bot.IsPermanent(err):
				// A duplicate that found the claim held asks for a retry.
				mu.Lock()
				retry = append(retry, j)
				mu.Unlock()
			default:
				t.Errorf("job %s: %v", j.ID, err)
			}
		}()
	}
	jwg.Wait()
	for _, j := range retry { // the queue's retries find the grant issued
		if err := h.mux.HandleJob(ctx, j); err != nil {
			t.Errorf("retry of job %s: %v", j.ID, err)
		}
	}
	h.wantState(r.ID, StateActive)
	if issued, _, _ := h.granter.counts(); issued != 1 {
		t.Fatalf("Issue called %d times, want exactly 1", issued)
	}
}

func TestDuplicateActivateDelivery(t *testing.T) {
	h := newHarness(t)
	r, job := h.approvedActivation()
	// First delivery is inside Issue when the duplicate arrives.
	h.granter.holdIssue()
	first := make(chan error, 1)
	go func() { first <- h.mux.HandleJob(ctx, job) }()
	<-h.granter.issueCalled
	// Claimed by the first: the duplicate issues nothing and asks to be
	// retried (not permanently failed), so that it can take over should
	// the first die. Were it to call Issue, it would block on the gate
	// until this deadline.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.mux.HandleJob(dctx, job); !errors.Is(err, ErrClaimed) || bot.IsPermanent(err) {
		t.Fatalf("duplicate while the first issues: %v, want a retryable ErrClaimed", err)
	}
	close(h.granter.issueGate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	h.granter.issueCalled = nil
	if err := h.mux.HandleJob(ctx, job); err != nil { // already active: no-op
		t.Fatal(err)
	}
	h.wantState(r.ID, StateActive)
	if issued, _, _ := h.granter.counts(); issued != 1 {
		t.Fatalf("Issue called %d times, want 1", issued)
	}
	if len(h.notifier.delivered) != 1 {
		t.Fatalf("delivered %d times", len(h.notifier.delivered))
	}
}

func TestRestartBetweenApprovalAndExpiry(t *testing.T) {
	for _, timersSurvive := range []bool{true, false} {
		name := map[bool]string{true: "timer fires", false: "timer lost, sweep expires"}[timersSurvive]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r := h.active(20 * time.Minute)
			h.restart()
			if !timersSurvive {
				h.timers = &botfake.Timers{}
			}
			h.granter.sessions = 1
			h.advance(20 * time.Minute)
			if !timersSurvive {
				h.wantState(r.ID, StateActive)
				h.clock.Advance(bot.SweepInterval)
				if err := h.svc.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
			}
			got := h.wantState(r.ID, StateExpired)
			if got.End.Sessions != 1 {
				t.Fatalf("sessions terminated %d", got.End.Sessions)
			}
		})
	}
}

func TestRestartBetweenApprovalAndActivation(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.queue.Take() // the process died with the job unrun and the queue lost it
	h.restart()
	h.clock.Advance(2 * time.Minute)
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateActive)
}

func TestDoneAndRevoke(t *testing.T) {
	h := newHarness(t)
	r := h.active(time.Hour)
	if _, err := h.svc.Done(ctx, bob, r.ID); !errors.Is(err, ErrNotRequester) {
		t.Fatalf("done by another: %v", err)
	}
	if _, err := h.svc.Revoke(ctx, bob, r.ID, "enough"); !isNotAllowed(err) {
		t.Fatalf("revoke by bob: %v", err)
	}
	h.clock.Advance(10 * time.Minute)
	h.granter.sessions = 3
	if _, err := h.svc.Done(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	got := h.wantState(r.ID, StateRevoked)
	if got.End.Cause != CauseDone || got.End.By != alice || got.End.Sessions != 3 {
		t.Fatalf("end %+v", got.End)
	}
	_, revoked, terminated := h.granter.counts()
	if revoked != 1 || terminated != 1 {
		t.Fatalf("revoked %d terminated %d; early end must revoke credentials and terminate sessions", revoked, terminated)
	}
	if _, ok := h.timers.Get(expiryTimerID(r.ID)); ok {
		t.Fatal("expiry timer left behind")
	}
	// Revoking again is harmless and does no work.
	if got, err := h.svc.Revoke(ctx, admin, r.ID, "again"); err != nil || got.State != StateRevoked {
		t.Fatalf("second revoke: %v %v", got.State, err)
	}
	h.drain()
	if _, revoked, _ := h.granter.counts(); revoked != 1 {
		t.Fatalf("second revoke revoked again")
	}

	r2 := h.active(time.Hour)
	if _, err := h.svc.Revoke(ctx, admin, r2.ID, "incident over"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if got := h.wantState(r2.ID, StateRevoked); got.End.By != admin || got.End.Why != "incident over" {
		t.Fatalf("end %+v", got.End)
	}
	r3 := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}})
	var na *ErrNotActive
	if _, err := h.svc.Revoke(ctx, admin, r3.ID, "x"); !errors.As(err, &na) {
		t.Fatalf("revoke pending: %v", err)
	}
}

func TestRevokeFailure(t *testing.T) {
	h := newHarness(t)
	r := h.active(time.Hour)
	h.granter.failEnd = errors.New("ThrottlingException: rate exceeded")
	if _, err := h.svc.Revoke(ctx, admin, r.ID, "leaver"); err != nil {
		t.Fatal(err)
	}
	h.drain() // attempt 1
	for range MaxEndAttempts - 1 {
		if err := h.svc.Finish(ctx, r.ID); err == nil {
			t.Fatal("Finish succeeded while AWS fails")
		}
	}
	got := h.wantState(r.ID, StateRevokeFailed)
	if got.End.Attempts != MaxEndAttempts || !strings.Contains(got.End.LastError, "Throttling") {
		t.Fatalf("end %+v", got.End)
	}
	if a := h.notifier.alertActions(); !slices.Equal(a, []string{"ops:" + ActRevokeFailed}) {
		t.Fatalf("alerts %v", a)
	}
	if err := h.svc.Sweep(ctx); err == nil {
		t.Fatal("sweep hid a failing revocation")
	}
	if a := h.notifier.alertActions(); len(a) != 1 {
		t.Fatalf("ops alerted again: %v", a)
	}
	h.granter.failEnd = nil
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got = h.wantState(r.ID, StateRevoked)
	if got.End.By != admin {
		t.Fatalf("end %+v", got.End)
	}
	if !slices.Contains(h.audit.Actions(r.ID), ActRevokeFailed) {
		t.Fatal("revoke_failed not audited")
	}
}

func TestActivationFailure(t *testing.T) {
	h := newHarness(t)
	h.granter.failIssue = MaxActivateAttempts
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	jobs := h.queue.Take()
	for i := range MaxActivateAttempts { // the queue's retries
		err := h.mux.HandleJob(ctx, jobs[0])
		if last := i == MaxActivateAttempts-1; (err == nil) != last {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	got := h.wantState(r.ID, StateFailed)
	if got.Failure == nil || !strings.Contains(got.Failure.What, "AccessDenied") || got.Failure.Do == "" {
		t.Fatalf("failure %+v", got.Failure)
	}
	if !slices.Contains(h.notifier.toldActions(r.ID), ActFailed) {
		t.Fatal("requester not told")
	}
}

func TestDeliveryFailureReissues(t *testing.T) {
	h := newHarness(t)
	h.notifier.failDeliver = 1
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	jobs := h.queue.Take()
	if err := h.mux.HandleJob(ctx, jobs[0]); err == nil {
		t.Fatal("failed delivery acknowledged")
	}
	h.wantState(r.ID, StateActivating)
	if err := h.mux.HandleJob(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	h.wantState(r.ID, StateActive)
	if issued, _, _ := h.granter.counts(); issued != 2 || len(h.notifier.delivered) != 1 {
		t.Fatalf("issued %d delivered %d", issued, len(h.notifier.delivered))
	}
}

func TestSweepFailsStuckActivation(t *testing.T) {
	h := newHarness(t)
	h.queue.Fail(errors.New("queue down"))
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatalf("approval must stand when the queue is down: %v", err)
	}
	h.clock.Advance(ActivationDeadline + time.Minute)
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got := h.wantState(r.ID, StateFailed)
	if got.Failure == nil || got.Failure.Do == "" {
		t.Fatalf("failure %+v", got.Failure)
	}
	if issued, revoked, _ := h.granter.counts(); issued != 0 || revoked != 0 {
		t.Fatalf("never-claimed activation issued %d, revoked %d", issued, revoked)
	}
}

func TestSweepCancelsStalePending(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}})
	h.clock.Advance(PendingTimeout + time.Minute)
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	h.wantState(r.ID, StateCancelled)
	_, err := h.svc.Approve(ctx, bob, r.ID)
	var decided *ErrAlreadyDecided
	if !errors.As(err, &decided) || !slices.Equal(decided.By, []string{System}) {
		t.Fatalf("approve after timeout: %v", err)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}})
	if _, err := h.svc.Cancel(ctx, bob, r.ID); !errors.Is(err, ErrNotRequester) {
		t.Fatalf("cancel by bob: %v", err)
	}
	if _, err := h.svc.Cancel(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	h.wantState(r.ID, StateCancelled)
	if list, _ := h.svc.List(ctx, alice); len(list) != 0 {
		t.Fatalf("cancelled request listed")
	}
}

func TestExtend(t *testing.T) {
	h := newHarness(t)
	r := h.active(30 * time.Minute)
	end := r.Window.ExpiresAt
	var long *ErrDurationTooLong
	if _, err := h.svc.Extend(ctx, alice, r.ID, 3*time.Hour, "more"); !errors.As(err, &long) || long.Max != 2*time.Hour {
		t.Fatalf("extend too long: %v", err)
	}
	if _, err := h.svc.Extend(ctx, bob, r.ID, time.Hour, "more"); !errors.Is(err, ErrNotRequester) {
		t.Fatalf("extend by bob: %v", err)
	}
	got, err := h.svc.Extend(ctx, alice, r.ID, 20*time.Minute, "still debugging")
	if err != nil {
		t.Fatal(err)
	}
	x := got.PendingExtension()
	if x == nil || x.State != ExtensionPending {
		t.Fatalf("extension %+v", x)
	}
	if _, err := h.svc.Extend(ctx, alice, r.ID, 20*time.Minute, "again"); !errors.Is(err, ErrExtensionPending) {
		t.Fatalf("second extension: %v", err)
	}
	if _, err := h.svc.ApproveExtension(ctx, alice, r.ID, x.ID); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self-approve extension: %v", err)
	}
	h.clock.Advance(10 * time.Minute)
	if _, err := h.svc.ApproveExtension(ctx, bob, r.ID, x.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	got = h.wantState(r.ID, StateActive)
	newEnd := end.Add(20 * time.Minute)
	if !got.Window.ExpiresAt.Equal(newEnd) || !got.Window.ActivatedAt.Equal(r.Window.ActivatedAt) {
		t.Fatalf("window %+v, want end %s", got.Window, newEnd)
	}
	if len(h.granter.issued) != 2 || !h.granter.issued[1].WindowEnd.Equal(newEnd) || h.granter.issued[1].RequestID != r.ID {
		t.Fatalf("extension grant %+v", h.granter.issued)
	}
	if tm, _ := h.timers.Get(expiryTimerID(r.ID)); !tm.At.Equal(newEnd) {
		t.Fatalf("timer at %s, want %s", tm.At, newEnd)
	}
	h.advance(20 * time.Minute) // the old end: still active
	h.wantState(r.ID, StateActive)
	h.advance(20 * time.Minute)
	h.wantState(r.ID, StateExpired)
	if !slices.Contains(h.notifier.toldActions(r.ID), ActExtended) {
		t.Fatal("requester not told of the extension")
	}
}

func TestStaleExpiryTimerReschedules(t *testing.T) {
	h := newHarness(t)
	r := h.active(30 * time.Minute)
	if err := h.svc.Expire(ctx, r.ID); err != nil { // fired early
		t.Fatal(err)
	}
	h.wantState(r.ID, StateActive)
	if tm, ok := h.timers.Get(expiryTimerID(r.ID)); !ok || !tm.At.Equal(r.Window.ExpiresAt) {
		t.Fatalf("timer %+v %v", tm, ok)
	}
}

func TestSubmitErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		in   SubmitInput
		want string // substring of Explain(err)
	}{
		{"unknown profile", SubmitInput{Requester: alice, Profile: "prod", Duration: time.Hour, Reason: "x"},
			`no profile "prod" you may request. You may request: prod-ssm, prod-admin, dev-read, secret-ops`},
		{"too long", SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: 3 * time.Hour, Instances: []string{web1}, Reason: "x"},
			"3h is longer than prod-ssm allows: at most 2h"},
		{"no reason", SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}, Reason: " "},
			"A reason is required"},
		{"sts with instances", SubmitInput{Requester: alice, Profile: "prod-admin", Duration: time.Hour, Instances: []string{web1}, Reason: "x"},
			"grants a role, not instances"},
		{"ssm without instances", SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: time.Hour, Reason: "x"},
			"name the instances you need"},
		{"instance not selected", SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: time.Hour, Instances: []string{db1}, Reason: "x"},
			"does not cover i-12345678: the profile allows only instances i-0abc123def4567890, or instances tagged env=prod"},
		{"no such instance", SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: time.Hour, Instances: []string{"i-0000000000000000f"}, Reason: "x"},
			"no such instance"},
		{"bad instance id", SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: time.Hour, Instances: []string{"web-01"}, Reason: "x"},
			"not an instance id"},
		{"not eligible", SubmitInput{Requester: carol, Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web1}, Reason: "x"},
			"not allowed to request here: no rule permits request for UCAROL"},
		{"nothing requestable", SubmitInput{Requester: carol, Profile: "nope", Duration: time.Hour, Reason: "x"},
			"no profile you may request at all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.Submit(ctx, tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			msg, ok := Explain(err)
			if !ok || !strings.Contains(msg, tt.want) {
				t.Fatalf("Explain = %q (user error %v), want it to contain %q", msg, ok, tt.want)
			}
		})
	}
	// A tag match is enough for an instance not listed by id.
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: time.Hour, Instances: []string{web2, web2}})
	if len(r.Targets) != 1 || r.Targets[0].ID != web2 {
		t.Fatalf("targets %+v", r.Targets)
	}
	// Default duration.
	if r := h.submit(SubmitInput{Profile: "prod-admin"}); r.Duration != time.Hour {
		t.Fatalf("default duration %s", r.Duration)
	}
}

func TestRequestable(t *testing.T) {
	h := newHarness(t)
	ps, err := h.svc.Requestable(ctx, alice)
	if err != nil || len(ps) != len(testProfiles) {
		t.Fatalf("Requestable(alice) = %v, %v", ps, err)
	}
	if ps, _ := h.svc.Requestable(ctx, carol); len(ps) != 0 {
		t.Fatalf("Requestable(carol) = %v", ps)
	}
}

func TestJobsRejectBadPayloads(t *testing.T) {
	h := newHarness(t)
	for _, kind := range []string{JobActivate, JobExpire, JobEnd, JobExtend} {
		err := h.mux.HandleJob(ctx, jobOf(kind, `{"request_id":"r-000000000000"}`))
		if err == nil || !bot.IsPermanent(err) {
			t.Errorf("%s for a missing request: %v, want a permanent error", kind, err)
		}
		if err := h.mux.HandleJob(ctx, jobOf(kind, `not json`)); !bot.IsPermanent(err) {
			t.Errorf("%s with garbage: %v", kind, err)
		}
	}
}

func TestCredentialsNeverStored(t *testing.T) {
	h := newHarness(t)
	r := h.active(time.Hour)
	recs, err := h.store.List(ctx, KindRequest, bot.KeyRange{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		for _, secret := range []string{"secret", "token", "ASIA0001"} {
			if strings.Contains(string(rec.Data), `"`+secret+`"`) || strings.Contains(string(rec.Data), "ASIA") {
				t.Fatalf("request %s record holds credential material %q", r.ID, secret)
			}
		}
	}
	for _, e := range h.audit.Events() {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "ASIA") {
			t.Fatalf("audit event holds credentials: %s", b)
		}
	}
}

func isNotAllowed(err error) bool {
	var na *ErrNotAllowed
	return errors.As(err, &na)
}

func jobOf(kind, payload string) bot.Job {
	return bot.Job{ID: "test/" + kind, Kind: kind, Payload: json.RawMessage(payload)}
}

func second[T any](_ T, err error) error { return err }

func TestSubmitBreakGlass(t *testing.T) {
	h := newHarness(t)
	in := SubmitInput{Requester: alice, Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}, Reason: "sev1 at 3am", BreakGlass: true}
	r, err := h.svc.Submit(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateActivating || !r.BreakGlass.NeedsReview() || r.BreakGlass.Reason != "sev1 at 3am" {
		t.Fatalf("break-glass submit: state %s, break-glass %+v", r.State, r.BreakGlass)
	}
	if a := h.notifier.alertActions(); !slices.Equal(a, []string{"audit:" + ActBreakGlass}) {
		t.Fatalf("alerts %v", a)
	}
	h.drain()
	h.wantState(r.ID, StateActive)

	// bob may request but not break glass; prod-admin does not allow it.
	in.Requester = bob
	if _, err := h.svc.Submit(ctx, in); !isNotAllowed(err) {
		t.Fatalf("break-glass submit by bob: %v", err)
	}
	var bg *ErrBreakGlassDisabled
	if _, err := h.svc.Submit(ctx, SubmitInput{Requester: alice, Profile: "prod-admin", Reason: "x", BreakGlass: true}); !errors.As(err, &bg) {
		t.Fatalf("break-glass submit on prod-admin: %v", err)
	}
}

// TestSlackFailuresRetriedThroughTheQueue: when Slack fails longer than
// the client retries, the approver message and the requester's DM are
// retried as jobs (JobNotify), from what is stored then; nothing is lost.
func TestSlackFailuresRetriedThroughTheQueue(t *testing.T) {
	h := newHarness(t)
	h.notifier.failChanged = 2 // the post at submission and the update at denial
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	if got := h.get(r.ID); !got.Message.IsZero() || got.Unposted != nil {
		t.Fatalf("after a failed post: message %+v, unposted %+v", got.Message, got.Unposted)
	}
	h.notifier.failTell = 1
	if _, err := h.svc.Deny(ctx, bob, r.ID, "use staging"); err != nil {
		t.Fatal(err)
	}
	if got := h.notifier.toldActions(r.ID); len(got) != 0 {
		t.Fatalf("told %v while Slack failed", got)
	}
	jobs := h.queue.Take()
	var kinds []string
	for _, j := range jobs {
		kinds = append(kinds, j.Kind)
		if err := h.mux.HandleJob(ctx, j); err != nil {
			t.Fatalf("job %s: %v", j.ID, err)
		}
	}
	if len(jobs) != 3 || slices.ContainsFunc(kinds, func(k string) bool { return k != JobNotify }) {
		t.Fatalf("queued %v, want three %s (two renders, one DM)", kinds, JobNotify)
	}
	got := h.get(r.ID)
	if got.Message.IsZero() {
		t.Error("the approver message was never posted")
	}
	if last := h.notifier.changed[len(h.notifier.changed)-1]; last.State != StateDenied {
		t.Errorf("the message was last rendered %s, want denied", last.State)
	}
	if told := h.notifier.toldActions(r.ID); !slices.Equal(told, []string{ActDenied}) {
		t.Errorf("requester told %v, want the denial once", told)
	}
}
