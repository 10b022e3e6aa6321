package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/testkit/awsfake"
)

// activeSTS submits a dev-read request (sts, no approval) for d and
// returns it active, its first set issued.
func (h *harness) activeSTS(d time.Duration) Request {
	h.t.Helper()
	r := h.submit(SubmitInput{Profile: "dev-read", Duration: d})
	h.drain()
	return h.wantState(r.ID, StateActive)
}

// askCredentials asks for new credentials as user and runs the jobs.
func (h *harness) askCredentials(user, id string) error {
	h.t.Helper()
	_, err := h.svc.AskCredentials(ctx, user, id)
	h.drain()
	return err
}

func (g *recGranter) last() GrantSpec {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.issued[len(g.issued)-1]
}

// decide evaluates the session policy of spec for an action at instant at,
// as IAM would (awsfake's evaluator).
func decide(t *testing.T, spec GrantSpec, at time.Time) awsfake.Decision {
	t.Helper()
	d, err := awsfake.EvaluatePolicy(spec.SessionPolicy, awsfake.PolicyRequest{
		Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/key",
		Context: map[string]string{"aws:CurrentTime": at.UTC().Format(time.RFC3339)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReissueNeverPastWindowEnd: new credentials for a 3-hour grant are for
// the same session, policy and window end, last what remains of the window
// (at most STS's hour), and when less than STS's 900 s floor remains the
// session policy denies everything after the window end.
func TestReissueNeverPastWindowEnd(t *testing.T) {
	h := newHarness(t)
	r := h.activeSTS(3 * time.Hour)
	first := h.granter.last()
	end := r.Window.ExpiresAt
	if first.DurationSeconds != MaxSessionSeconds {
		t.Fatalf("first set: %d s, want %d", first.DurationSeconds, MaxSessionSeconds)
	}
	for _, tc := range []struct {
		elapsed time.Duration // since activation
		want    int32
	}{
		{30 * time.Minute, 3600},             // 2h30 left: STS's hour
		{2*time.Hour + 30*time.Minute, 1800}, // 30m left: exactly to the end
		{2*time.Hour + 44*time.Minute + 59*time.Second, 901},
		{2*time.Hour + 50*time.Minute, 900}, // 10m left: STS's floor, the policy ends it
	} {
		h.clock.Set(r.Window.ActivatedAt.Add(tc.elapsed))
		now := h.clock.Now()
		if err := h.askCredentials(alice, r.ID); err != nil {
			t.Fatalf("after %s: %v", tc.elapsed, err)
		}
		spec := h.granter.last()
		if spec.RequestID != r.ID || spec.Requester != alice || !spec.WindowEnd.Equal(end) || spec.SessionPolicy != first.SessionPolicy {
			t.Fatalf("after %s: spec %+v, want the first set's session, requester, window end and policy", tc.elapsed, spec)
		}
		if spec.DurationSeconds != tc.want {
			t.Errorf("after %s: %d s, want %d", tc.elapsed, spec.DurationSeconds, tc.want)
		}
		if credEnd := now.Add(time.Duration(spec.DurationSeconds) * time.Second); credEnd.After(end) && tc.want > MinSessionSeconds {
			t.Errorf("after %s: credentials end at %s, past the window end %s", tc.elapsed, credEnd, end)
		}
		if got := decide(t, spec, end.Add(-time.Second)); got != awsfake.Allowed {
			t.Errorf("after %s: a second before the window end: %s", tc.elapsed, got)
		}
		for _, after := range []time.Duration{time.Second, time.Duration(spec.DurationSeconds) * time.Second} {
			if got := decide(t, spec, end.Add(after)); got != awsfake.ExplicitDeny {
				t.Errorf("after %s: %s after the window end: %s", tc.elapsed, after, got)
			}
		}
	}
	// At the window end nothing more is issued.
	n, _, _ := h.granter.counts()
	h.clock.Set(end)
	var no *ErrNoNewCredentials
	if err := h.askCredentials(alice, r.ID); !errors.As(err, &no) || !strings.Contains(no.Why, "window ended") {
		t.Fatalf("at the window end: %v", err)
	}
	if m, _, _ := h.granter.counts(); m != n {
		t.Fatalf("%d sets issued at the window end", m-n)
	}
}

// TestReissueAuditedAndRefused: only the requester of an active grant may
// ask, not twice within ReissueInterval; each set is an ActReissued row
// (and audit event) by the requester; a pending, revoked or ended grant
// gets none.
func TestReissueAuditedAndRefused(t *testing.T) {
	h := newHarness(t)
	pending := h.submit(SubmitInput{Profile: "prod-admin", Duration: 3 * time.Hour})
	var inactive *ErrNotActive
	if err := h.askCredentials(alice, pending.ID); !errors.As(err, &inactive) || inactive.State != StatePending {
		t.Fatalf("pending: %v", err)
	}
	r := h.activeSTS(3 * time.Hour)
	issued, _, _ := h.granter.counts()

	var no *ErrNoNewCredentials
	if err := h.askCredentials(bob, r.ID); !errors.Is(err, ErrNotRequester) {
		t.Fatalf("bob: %v", err)
	}
	if err := h.askCredentials(alice, r.ID); !errors.As(err, &no) || !strings.Contains(no.Why, "ask again from") {
		t.Fatalf("within a minute of activation: %v", err)
	}
	if msg, ok := Explain(&ErrNoNewCredentials{ID: r.ID, Why: no.Why}); !ok || !strings.Contains(msg, r.ID) {
		t.Errorf("explained as %q", msg)
	}
	h.clock.Advance(time.Hour)
	// Two asks before the worker runs (a double click): one set.
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if n, _, _ := h.granter.counts(); n != issued+1 {
		t.Fatalf("%d sets issued for two asks in a row, want 1", n-issued)
	}
	got := h.get(r.ID)
	if got.Reissue != nil {
		t.Errorf("reissue left behind: %+v", got.Reissue)
	}
	i := slices.IndexFunc(got.History, func(h HistoryRow) bool { return h.Action == ActReissued })
	if i < 0 || got.History[i].Actor != alice || !strings.HasPrefix(got.History[i].Note, NoteReissuedAsked) {
		t.Fatalf("history %+v: want an %s row by the requester", got.History, ActReissued)
	}
	if !slices.Contains(h.audit.Actions(r.ID), ActReissued) {
		t.Errorf("audit %v: no %s", h.audit.Actions(r.ID), ActReissued)
	}
	if d := h.notifier.delivered; len(d) != 2 || d[1] != r.ID {
		t.Errorf("delivered %v, want the new set delivered", d)
	}
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); !errors.As(err, &no) {
		t.Fatalf("right after a reissue: %v", err)
	}

	// Revoked: none.
	h.clock.Advance(2 * time.Minute)
	if _, err := h.svc.Revoke(ctx, alice, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if err := h.askCredentials(alice, r.ID); !errors.As(err, &inactive) {
		t.Fatalf("revoked: %v", err)
	}
	if n, _, _ := h.granter.counts(); n != issued+1 {
		t.Fatalf("a set was issued after revocation")
	}
	if k := (&Request{ID: r.ID, Requester: alice, Kind: "identity-center", State: StateActive, Window: got.Window}); !errors.As(k.MayReissue(alice, got.Window.ActivatedAt.Add(time.Hour)), &no) {
		t.Errorf("a kind without credentials: %v", k.MayReissue(alice, got.Window.ActivatedAt))
	}
}

// TestReissueReverifies: the worker re-derives the grant before it issues
// new credentials. A requester the policy no longer lets request the
// profile, or a window moved in the store, gets none: ActRefused, an ops
// alert, the requester told; the grant keeps its window.
func TestReissueReverifies(t *testing.T) {
	h := newHarness(t)
	r := h.activeSTS(3 * time.Hour)
	issued, _, _ := h.granter.counts()
	h.clock.Advance(time.Hour)

	// A window moved an hour later, as a tampered table would have it.
	if _, err := (bot.Table[Request]{Store: h.watch, Kind: KindRequest}).Update(ctx, r.ID, func(r *Request) error {
		r.Window.ExpiresAt = r.Window.ExpiresAt.Add(time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.askCredentials(alice, r.ID); err != nil {
		t.Fatal(err)
	}
	got := h.wantState(r.ID, StateActive)
	if n, _, _ := h.granter.counts(); n != issued {
		t.Fatalf("a set was issued for a moved window")
	}
	last := got.History[len(got.History)-1]
	if last.Action != ActRefused || !strings.HasPrefix(last.Note, NoteNewCredentials) || got.Reissue != nil {
		t.Fatalf("last row %+v, reissue %+v", last, got.Reissue)
	}
	if !slices.Contains(h.notifier.alertActions(), "ops:"+ActRefused) || !slices.Contains(h.notifier.toldActions(r.ID), ActRefused) {
		t.Errorf("alerts %v, told %v", h.notifier.alertActions(), h.notifier.toldActions(r.ID))
	}

	// The window put back; the requester may no longer request dev-read.
	if _, err := (bot.Table[Request]{Store: h.watch, Kind: KindRequest}).Update(ctx, r.ID, func(r *Request) error {
		r.Window.ExpiresAt = r.Window.ExpiresAt.Add(-time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.authz[bot.ActionRequest] = []string{bob}
	if err := h.askCredentials(alice, r.ID); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := h.granter.counts(); n != issued {
		t.Fatalf("a set was issued to a requester the policy refuses")
	}
	got = h.get(r.ID)
	if last := got.History[len(got.History)-1]; last.Action != ActRefused || !strings.Contains(last.Note, "may no longer request") {
		t.Fatalf("last row %+v", last)
	}
}

// TestReissueDeliveryRetried: a set that could not be delivered is issued
// again by the retry, recorded as such.
func TestReissueDeliveryRetried(t *testing.T) {
	h := newHarness(t)
	r := h.activeSTS(2 * time.Hour)
	h.clock.Advance(time.Hour)
	h.notifier.failDeliver = 1
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	jobs := h.queue.Take()
	if len(jobs) != 1 || jobs[0].Kind != JobReissue {
		t.Fatalf("jobs %+v", jobs)
	}
	if err := h.mux.HandleJob(ctx, jobs[0]); err == nil {
		t.Fatal("a failed delivery did not fail the job")
	}
	if err := h.mux.HandleJob(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	got := h.get(r.ID)
	var notes []string
	for _, row := range got.History {
		if row.Action == ActReissued {
			notes = append(notes, row.Note)
		}
	}
	if len(notes) != 2 || !strings.HasPrefix(notes[0], NoteReissuedAsked) || !strings.HasPrefix(notes[1], NoteReissuedUndelivered) || got.Reissue != nil {
		t.Fatalf("reissued rows %q, reissue %+v", notes, got.Reissue)
	}
	if n, _, _ := h.granter.counts(); n != 3 {
		t.Fatalf("%d sets issued, want 3 (activation, undelivered, delivered)", n)
	}
}

// TestReissueAndExtension: while an approved extension's fresh credentials
// are being issued, an ask is refused; an ask the worker reaches after the
// extension was applied issues nothing more (the extension's set answers it).
func TestReissueAndExtension(t *testing.T) {
	h := newHarness(t)
	r := h.activeSTS(3 * time.Hour)
	h.clock.Advance(time.Hour)
	if _, err := h.svc.Extend(ctx, alice, r.ID, time.Hour, "the migration runs late"); err != nil {
		t.Fatal(err)
	}
	var no *ErrNoNewCredentials
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); !errors.As(err, &no) || no.Why != whyExtensionUnderway {
		t.Fatalf("while an extension is applied: %v", err)
	}
	h.drain()
	h.clock.Advance(2 * time.Minute)
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	ask := h.queue.Take()
	if _, err := h.svc.Extend(ctx, alice, r.ID, time.Hour, "and later still"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	for _, j := range ask {
		if err := h.mux.HandleJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, _ := h.granter.counts(); n != 3 {
		t.Fatalf("%d sets issued, want 3 (activation and two extensions)", n)
	}
	if got := h.get(r.ID); got.Reissue != nil || !got.Window.ExpiresAt.Equal(r.Window.ExpiresAt.Add(2*time.Hour)) {
		t.Fatalf("reissue %+v, window %+v", got.Reissue, got.Window)
	}
}

// TestReissueInterruptedTakenOver: a run that claimed a reissue and died
// (its lease ran out) is taken over: the sweep enqueues the reissue again,
// the new run issues, recorded as a set issued again after an interrupted
// attempt, by the requester who asked.
func TestReissueInterruptedTakenOver(t *testing.T) {
	h := newHarness(t)
	r := h.activeSTS(3 * time.Hour)
	h.clock.Advance(time.Hour)
	asked := h.clock.Now()
	if _, err := (bot.Table[Request]{Store: h.watch, Kind: KindRequest}).Update(ctx, r.ID, func(r *Request) error {
		r.Reissue = &Activation{Since: asked, By: alice, Claim: "c-dead", ClaimedAt: asked, LeaseUntil: asked.Add(claimLease)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Minute)
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	h.drain()
	got := h.get(r.ID)
	last := got.History[len(got.History)-1]
	if last.Action != ActReissued || last.Actor != alice || !strings.HasPrefix(last.Note, NoteReissuedInterrupted) || got.Reissue != nil {
		t.Fatalf("last row %+v, reissue %+v", last, got.Reissue)
	}
	if n, _, _ := h.granter.counts(); n != 2 {
		t.Fatalf("%d sets issued, want 2", n)
	}
}

// TestReissueForgedJobsIssueAtMostOnePerInterval: reissue jobs sent
// straight to the queue (not through AskCredentials), one saying it was
// asked an hour from now, get no set: the worker holds the ask to the
// same interval and to the present.
func TestReissueForgedJobsIssueAtMostOnePerInterval(t *testing.T) {
	h := newHarness(t)
	r := h.activeSTS(3 * time.Hour)
	issued, _, _ := h.granter.counts()
	for i, asked := range []time.Time{h.clock.Now().Add(time.Second), h.clock.Now().Add(time.Hour)} {
		j, err := bot.NewJob(fmt.Sprintf("reissue/forged/%d", i), JobReissue, jobRef{RequestID: r.ID, By: alice, Asked: asked})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.queue.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(2 * time.Second)
	h.drain()
	if n, _, _ := h.granter.counts(); n != issued {
		t.Fatalf("%d sets issued by forged reissue jobs", n-issued)
	}
	if got := h.get(r.ID); got.Reissue != nil || got.LastIssued() != r.LastIssued() {
		t.Fatalf("reissue %+v, last issued %v", got.Reissue, got.LastIssued())
	}
}
