package e2e

// Grantable roles carry tokken's permissions boundary: a role without it is
// refused at submit and again before activation.

import (
	"strings"
	"testing"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
)

const (
	prodSSMRole     = "arn:aws:iam::111111111111:role/tokken-prod-ssm"
	prodBoundaryARN = "arn:aws:iam::111111111111:policy/tokken-grant-boundary"
)

// A request for a role without tokken's permissions boundary is refused
// when it is submitted: the requester is told which role lacks which
// boundary, the audit channel has the refusal, and no approver is asked.
func TestAccessRefusesARoleWithoutTheBoundary(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	w.aws.IAM().SetPermissionsBoundary("tokken-prod-ssm", "")
	r, rid := w.command(requester, "prod-ssm 30m "+prodWeb+" investigating 5xx")
	if !strings.Contains(r.Text, "Checking your request") {
		t.Fatalf("immediate answer %q", r.Text)
	}
	got := w.lateAnswer(rid)
	for _, want := range []string{"The role " + prodSSMRole + " cannot be granted: it has no permissions boundary", prodBoundaryARN} {
		if !strings.Contains(got, want) {
			t.Errorf("answer %q lacks %q", got, want)
		}
	}
	audited := false
	for _, m := range w.slack.Messages(auditChannel) {
		audited = audited || strings.Contains(m.Text, access.ActRoleRefused) && strings.Contains(m.Text, "<@"+requester+">")
	}
	if !audited {
		t.Errorf("no %s line in the audit channel: %+v", access.ActRoleRefused, w.slack.Messages(auditChannel))
	}
	if n := len(w.slack.Messages(approverChannel)); n != 0 {
		t.Errorf("%d messages to the approvers for a refused request", n)
	}
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Errorf("%d AssumeRole calls", n)
	}
}

// The boundary is checked again before AssumeRole: removed after the
// request was filed, it fails the activation at once, and the card says
// which role and which boundary.
func TestAccessBoundaryRemovedBeforeActivation(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-ssm 30m "+prodWeb+" investigating 5xx")
	w.waitMessage(id, "Waiting for approval")
	w.aws.IAM().SetPermissionsBoundary("tokken-prod-ssm", "arn:aws:iam::aws:policy/AdministratorAccess")
	w.clickOn(approver1, accessui.ActionApprove, id)
	r := w.waitState(id, access.StateFailed)
	if f := r.Failure; f == nil || !strings.Contains(f.What, prodSSMRole) || !strings.Contains(f.What, "AdministratorAccess") || !strings.Contains(f.Do, prodBoundaryARN) {
		t.Errorf("failure %+v", r.Failure)
	}
	w.waitMessage(id, prodSSMRole, "tokken-grant-boundary")
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Errorf("%d AssumeRole calls for a role that lost its boundary", n)
	}
}
