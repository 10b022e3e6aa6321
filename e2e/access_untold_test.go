package e2e

import (
	"testing"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
)

// TestAccessRequesterDeactivated: the requester's account is deactivated
// while the request waits. The approval does not grant anything to a user
// Slack no longer knows, and the outcome, which Slack refuses to DM, is not
// lost in a log: the operators get one NOT TOLD alert naming the request.
func TestAccessRequesterDeactivated(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-readonly 1h look at the billing console")
	w.slack.DeactivateUser(requester)
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateFailed)
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Fatalf("%d AssumeRole calls for a deactivated requester", n)
	}
	w.channelPost(accessOps, "NOT TOLD", id, "user_disabled")
}
