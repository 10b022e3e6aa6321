package e2e

// Fault scenarios: Slack answering 429 with Retry-After and 5xx, AWS
// throttling and failing with 500 on every call tokken makes. Each flow
// still completes, nothing is lost, nothing is done twice. DynamoDB
// conditional conflicts are covered by the store contract suite
// (bot/storetest, run against DynamoDB Local and bbolt), not here.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// checkRetryAfter fails when a call of method that was answered 429 was
// retried (the same text to the same channel) sooner than the Retry-After
// it was given.
func checkRetryAfter(t *testing.T, f *slackfake.Fake, method string, retryAfter time.Duration) {
	t.Helper()
	calls := f.Calls(method)
	limited := 0
	for i, c := range calls {
		if c.Status != http.StatusTooManyRequests {
			continue
		}
		limited++
		for _, next := range calls[i+1:] {
			if next.Channel != c.Channel || next.Text != c.Text {
				continue
			}
			// Slack's ts and the fake's clock have millisecond precision.
			if gap := next.At.Sub(c.At); gap < retryAfter-50*time.Millisecond {
				t.Errorf("%s to %s retried %v after a 429 with Retry-After %v", method, c.Channel, gap, retryAfter)
			}
			break
		}
	}
	if limited == 0 {
		t.Errorf("no %s call was rate limited: the fault was not exercised", method)
	}
}

// TestFaultsSlackDuringAccessFlow rate-limits and fails the Slack calls of
// a whole access flow (post the request, update it in place, open the DM,
// post credentials and notices): it completes, with every message in its
// final state, credentials delivered once, and Retry-After honoured.
func TestFaultsSlackDuringAccessFlow(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	w.slack.RateLimit("chat.postMessage", 2, time.Second)
	w.slack.FailNext("conversations.open", 1, http.StatusServiceUnavailable)
	id := w.request(requester, "prod-ssm 30m "+prodWeb+" faults on the way")

	w.slack.RateLimit("chat.update", 2, time.Second)
	w.slack.FailNext("chat.update", 1, http.StatusInternalServerError)
	w.slack.FailNext("chat.postMessage", 1, http.StatusBadGateway)
	w.slack.RateLimit("conversations.open", 1, time.Second)
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	issued, _ := w.credentials(requester, id, 1)
	w.waitMessage(id, "Active", "<@"+approver1+">")
	w.dmWith(requester, ":white_check_mark: Your access")
	w.aws.SSM().OpenSession(prodWeb, issued.AssumedRoleARN)

	w.slack.FailNext("chat.update", 2, http.StatusServiceUnavailable)
	w.slack.RateLimit("chat.postMessage", 1, time.Second)
	w.clock.Advance(31 * time.Minute)
	w.waitState(id, access.StateExpired)
	w.waitMessage(id, "Expired", "1 SSM session terminated")
	w.dmWith(requester, "expired")

	creds := 0
	for _, m := range w.slack.DMs(requester) {
		if strings.Contains(messageJSON(m), "export AWS_SECRET_ACCESS_KEY") {
			creds++
		}
	}
	if n := len(w.aws.STS().AssumedRoles()); creds != 1 || n != 1 {
		t.Errorf("%d credentials DMs and %d AssumeRole calls, want 1 and 1", creds, n)
	}
	if top := len(w.slack.Messages(approverChannel)); top != 1 {
		t.Errorf("%d messages in the approver channel, want the one tracked in place", top)
	}
	checkRetryAfter(t, w.slack, "chat.postMessage", time.Second)
	checkRetryAfter(t, w.slack, "chat.update", time.Second)
	checkRetryAfter(t, w.slack, "conversations.open", time.Second)
}

// TestFaultsAWSDuringAccessFlow throttles and fails each AWS call of the
// access flow: DescribeInstances (checking the targets), AssumeRole, the
// federation endpoint (console link), DescribeSessions and TerminateSession
// (ending sessions), GetRolePolicy and PutRolePolicy (revoking early).
func TestFaultsAWSDuringAccessFlow(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	faults := []struct {
		service, op string
	}{
		{awsfake.EC2Service, "DescribeInstances"},
		{awsfake.STSService, "AssumeRole"},
		{awsfake.FederationService, "getSigninToken"},
		{awsfake.SSMService, "DescribeSessions"},
		{awsfake.SSMService, "TerminateSession"},
		{awsfake.IAMService, "GetRolePolicy"},
		{awsfake.IAMService, "PutRolePolicy"},
	}
	for _, f := range faults {
		w.aws.Fail(f.service, f.op, 1, awsfake.Throttle)
		w.aws.Fail(f.service, f.op, 1, awsfake.Internal)
	}
	id, issued := w.approvedRequest("prod-ssm 1h " + prodWeb + " throttled everywhere")
	_, link := w.credentials(requester, id, 1)
	w.signIn(link, issued)
	w.aws.SSM().OpenSession(prodWeb, issued.AssumedRoleARN)
	w.clickOn(approver1, accessui.ActionRevoke, id)
	r := w.waitState(id, access.StateRevoked)
	if n := len(w.aws.SSM().ActiveSessions()); n != 0 || r.End.Sessions != 1 {
		t.Errorf("%d sessions active, %d terminated", n, r.End.Sessions)
	}
	if doc, ok := w.aws.IAM().RolePolicy("tokken-prod-ssm", awsgrant.RevokedPolicyName); !ok || !strings.Contains(doc, id) {
		t.Errorf("credentials not revoked in IAM: %q", doc)
	}
	for _, f := range faults {
		var failed, ok int
		for _, c := range w.aws.Calls(f.service, f.op) {
			if c.ErrorCode != "" {
				failed++
			} else {
				ok++
			}
		}
		if failed < 2 || ok == 0 {
			t.Errorf("%s %s: %d failed and %d good calls; the faults were not exercised and overcome", f.service, f.op, failed, ok)
		}
	}
	if n := len(w.aws.STS().AssumedRoles()); n != 1 {
		t.Errorf("%d grants issued, want 1", n)
	}
	w.waitMessage(id, "Revoked")
}

// TestFaultsAWSDuringDomainJoin throttles and fails every EC2 call of a
// domain join through the binary: DescribeInstances, CreateTags and
// RebootInstances. The join completes with one reboot.
func TestFaultsAWSDuringDomainJoin(t *testing.T) {
	t.Parallel()
	w := newDomainWorld(t)
	const id = "i-0a1b2c3d4e5f6071f"
	w.addWindows(id, "win-flaky-01", map[string]string{"Env": "staging"})
	w.instance(id, succeeds)
	for _, op := range []string{"DescribeInstances", "CreateTags", "RebootInstances"} {
		w.aws.Fail(awsfake.EC2Service, op, 1, awsfake.Throttle)
		w.aws.Fail(awsfake.EC2Service, op, 1, awsfake.Internal)
	}
	_, resp := w.command(winAdmin, "join win-flaky-01")
	w.lateReply(resp, "Started d-")
	ts := w.opMessage(id)
	w.waitThread(ts, "win-flaky-01 ("+id+") is joined.")
	if n := w.aws.EC2().RebootCount(id); n != 1 {
		t.Errorf("%d reboots, want 1", n)
	}
	for _, op := range []string{"DescribeInstances", "CreateTags", "RebootInstances"} {
		failed := 0
		for _, c := range w.aws.Calls(awsfake.EC2Service, op) {
			if c.ErrorCode != "" {
				failed++
			}
		}
		if failed < 2 {
			t.Errorf("%s: %d failed calls; the faults were not exercised", op, failed)
		}
	}
}
