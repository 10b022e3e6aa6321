package access

import (
	"context"
	"slices"
	"testing"
	"time"
)

// heldOf is request id's Held record, and whether there is one.
func (h *harness) heldOf(id string) (Held, bool) {
	h.t.Helper()
	v, found, err := h.svc.holding(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return v, found
}

// rewrite rewrites request id's item as a compromised ingress could.
func (h *harness) rewrite(id string, fn func(*Request)) {
	h.t.Helper()
	if _, err := h.svc.requests.Update(context.Background(), id, func(r *Request) error { fn(r); return nil }); err != nil {
		h.t.Fatal(err)
	}
}

// sweep runs the sweep and fails the test on its error.
func (h *harness) sweep() {
	h.t.Helper()
	if err := h.svc.Sweep(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.drain()
}

// An active identity-center grant whose item is rewritten in every way
// that used to keep access (marked ended, the assignment said to have
// existed before, another user named, the window moved) still loses the
// assignment tokken made once its window has passed, and ops are told.
func TestHeldEndsIDCDespiteForgedRecord(t *testing.T) {
	h := newIDCHarness(t)
	r := h.activeIDC(time.Hour)
	held, found := h.heldOf(r.ID)
	if !found || held.IDC == nil || !held.IDC.Owned() || held.IDC.UserID != "u-alice" || !held.ends().Equal(r.Window.ExpiresAt) {
		t.Fatalf("held %+v (found %v), want tokken's assignment for u-alice until %s", held, found, r.Window.ExpiresAt)
	}
	h.rewrite(r.ID, func(r *Request) {
		r.State = StateExpired
		r.IDC.Preexisting, r.IDC.UserID = true, "u-bob"
		r.Window.ExpiresAt = r.Window.ExpiresAt.Add(30 * 24 * time.Hour)
	})

	h.advance(time.Hour + retryQuiet + time.Second)
	if !h.idc.has(aliceAdmin222) {
		t.Fatal("the assignment was removed before the sweep: the test no longer exercises the held record")
	}
	h.sweep()
	if h.idc.has(aliceAdmin222) {
		t.Fatal("the assignment outlived its window behind a rewritten request item")
	}
	if !slices.Contains(h.notifier.alertActions(), "ops:"+ActHeldEnded) {
		t.Errorf("ops not alerted: %v", h.notifier.alertActions())
	}
	if _, found := h.heldOf(r.ID); found {
		t.Error("the held record stayed after its access ended")
	}
}

// The same for an ssm grant: its live sessions, which outlive the
// credentials, are terminated as the grant it really was (the role and
// session name activation used), not as the rewritten item says.
func TestHeldEndsSessionsDespiteForgedRecord(t *testing.T) {
	h := newHarness(t)
	r := h.active(30 * time.Minute)
	h.rewrite(r.ID, func(r *Request) {
		r.State = StateRevoked
		r.RoleARN = "arn:aws:iam::123456789012:role/somewhere-else"
		r.Window.ExpiresAt = r.Window.ExpiresAt.Add(time.Hour)
	})
	h.granter.mu.Lock()
	h.granter.sessions = 2
	h.granter.mu.Unlock()

	h.advance(30*time.Minute + retryQuiet + time.Second)
	h.sweep()
	h.granter.mu.Lock()
	terminated := slices.Clone(h.granter.terminated)
	h.granter.mu.Unlock()
	if len(terminated) != 1 || terminated[0].RequestID != r.ID || terminated[0].RoleARN != r.RoleARN {
		t.Fatalf("terminated %+v, want the sessions of %s as %s", terminated, r.ID, r.RoleARN)
	}
	if !slices.Contains(h.notifier.alertActions(), "ops:"+ActHeldEnded) {
		t.Errorf("ops not alerted: %v", h.notifier.alertActions())
	}
}

// When the request's own path ends access, as it does unless its item was
// tampered with, the held record goes with it and nobody is alarmed; an
// extension the worker applied moves the record's window end.
func TestHeldFollowsTheRequest(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := h.active(30 * time.Minute)
	if held, found := h.heldOf(r.ID); !found || held.Grant.RoleARN != r.RoleARN || !held.ends().Equal(r.Window.ExpiresAt) {
		t.Fatalf("held %+v (found %v) for active %s", held, found, r.ID)
	}
	if _, err := h.svc.Extend(ctx, alice, r.ID, 20*time.Minute, "still debugging"); err != nil {
		t.Fatal(err)
	}
	cur := h.get(r.ID)
	if _, err := h.svc.ApproveExtension(ctx, bob, r.ID, cur.PendingExtension().ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateActive)
	if held, _ := h.heldOf(r.ID); !held.ends().Equal(r.Window.ExpiresAt) || !held.ends().After(r.Window.ActivatedAt.Add(30*time.Minute)) {
		t.Fatalf("held window end %s, want the extended %s", held.ends(), r.Window.ExpiresAt)
	}

	h.advance(50*time.Minute + retryQuiet + time.Second)
	h.wantState(r.ID, StateExpired)
	if _, found := h.heldOf(r.ID); found {
		t.Error("the held record stayed after the grant expired")
	}
	h.sweep()
	if slices.Contains(h.notifier.alertActions(), "ops:"+ActHeldEnded) {
		t.Errorf("an ordinary expiry alarmed ops: %v", h.notifier.alertActions())
	}
}

// A grant revoked early drops its held record once access has ended.
func TestHeldDroppedOnRevoke(t *testing.T) {
	h := newHarness(t)
	r := h.active(30 * time.Minute)
	if _, err := h.svc.Revoke(context.Background(), admin, r.ID, "incident over"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateRevoked)
	if _, found := h.heldOf(r.ID); found {
		t.Error("the held record stayed after the grant was revoked")
	}
}
