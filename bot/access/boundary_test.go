package access

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	adminRole     = "arn:aws:iam::111122223333:role/tokken-admin"
	grantBoundary = "arn:aws:iam::111122223333:policy/tokken-grant-boundary"
)

// A role without tokken's permissions boundary is refused when the request
// is submitted, before any approver sees it: the requester is told which
// role lacks which boundary, the refusal is audited, nothing is stored.
func TestSubmitRefusesARoleWithoutTheBoundary(t *testing.T) {
	h := newHarness(t)
	h.granter.checkRole = &ErrRoleNotGrantable{Role: adminRole, Boundary: grantBoundary, Why: "it has no permissions boundary"}
	_, err := h.svc.Submit(ctx, SubmitInput{Requester: alice, Profile: "prod-admin", Duration: time.Hour, Reason: "deploy"})
	msg, ok := Explain(err)
	if !ok || !strings.Contains(msg, adminRole) || !strings.Contains(msg, "it has no permissions boundary") || !strings.Contains(msg, grantBoundary) {
		t.Fatalf("Explain(%v) = %q, %v; want the role, what is wrong and the boundary", err, msg, ok)
	}
	var refused int
	for _, e := range h.audit.Events() {
		if e.Action == ActRoleRefused {
			refused++
			if e.Actor != alice || e.Profile != "prod-admin" || e.Detail["role"] != adminRole || e.Detail["boundary"] != grantBoundary {
				t.Errorf("audit event %+v", e)
			}
		}
	}
	if refused != 1 {
		t.Errorf("%d %s audit events, want 1: %+v", refused, ActRoleRefused, h.audit.Events())
	}
	if jobs := h.queue.Take(); len(jobs) != 0 {
		t.Errorf("a refused request queued jobs: %v", jobs)
	}
	if issued, _, _ := h.granter.counts(); issued != 0 {
		t.Errorf("issued %d grants", issued)
	}

	// Failing to find out (IAM unreachable) is not a refusal: the submit
	// job is retried.
	h.granter.checkRole = errors.New("check role: ServiceFailure")
	_, err = h.svc.Submit(ctx, SubmitInput{Requester: alice, Profile: "prod-admin", Duration: time.Hour, Reason: "deploy"})
	if _, ok := Explain(err); ok || err == nil {
		t.Errorf("a failed check must be an error to retry, got %v (explained %v)", err, ok)
	}
}

// The boundary is checked again before AssumeRole: a role whose boundary
// was removed after approval fails the activation at once (no retry can
// help), and the card says which role and boundary.
func TestActivationRefusesARoleThatLostTheBoundary(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-admin", Duration: time.Hour})
	for _, approver := range []string{bob, carol} { // prod-admin needs two
		if _, err := h.svc.Approve(ctx, approver, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.granter.checkRole = &ErrRoleNotGrantable{Role: adminRole, Boundary: grantBoundary, Why: "its permissions boundary is arn:aws:iam::aws:policy/AdministratorAccess"}
	for _, j := range h.queue.Take() {
		if err := h.mux.HandleJob(ctx, j); err != nil {
			t.Fatalf("activation job: %v", err)
		}
	}
	got := h.wantState(r.ID, StateFailed)
	if f := got.Failure; f == nil || !strings.Contains(f.What, adminRole) || !strings.Contains(f.What, "AdministratorAccess") || !strings.Contains(f.Do, grantBoundary) {
		t.Fatalf("failure %+v, want the role, the wrong boundary and the one required", got.Failure)
	}
	if issued, _, _ := h.granter.counts(); issued != 0 {
		t.Errorf("issued %d grants", issued)
	}
	if !slices.Contains(h.audit.Actions(r.ID), ActFailed) {
		t.Errorf("failure not audited: %v", h.audit.Actions(r.ID))
	}
}
