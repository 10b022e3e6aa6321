package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/testkit/awsfake"
)

// windowDecision evaluates an issued session policy for a read at instant
// at, as IAM would (awsfake's evaluator).
func windowDecision(t *testing.T, policy string, at time.Time) awsfake.Decision {
	t.Helper()
	d, err := awsfake.EvaluatePolicy(policy, awsfake.PolicyRequest{
		Action: "s3:ListBucket", Resource: "arn:aws:s3:::prod-logs",
		Context: map[string]string{"aws:CurrentTime": at.UTC().Format(time.RFC3339)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAccessNewCredentials: a three-hour sts grant gets one-hour
// credentials (STS's cap for chained roles) in a DM with a "New
// credentials" button. Only the requester may use it, not twice within a
// minute; each use is a new AssumeRole for the same session name, source
// identity and session policy, lasting what remains of the window and
// denied after it, delivered in a new DM and audited as a reissue by the
// requester. `/access creds <id>` does the same; after revocation both
// are refused.
func TestAccessNewCredentials(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id, first := w.approvedRequest("prod-readonly 3h audit the bucket policies")
	end := w.get(id).Window.ExpiresAt
	if first.DurationSeconds != access.MaxSessionSeconds || !first.Expiration.Before(end) {
		t.Fatalf("first set: %d s until %s, window until %s", first.DurationSeconds, first.Expiration, end)
	}
	dm := w.dmWith(requester, accessui.ActionNewCredentials)
	if !containsAll(dm, id, "export AWS_SECRET_ACCESS_KEY", "/access creds "+id, "New credentials") {
		t.Errorf("the credentials DM does not offer new credentials: %s", dm)
	}
	dmCh, _ := w.slack.DMChannel(requester)

	// Someone else's click, and the requester's right away, get no set.
	w.click(approver1, accessui.ActionNewCredentials, id, dmCh, "1.1")
	w.ephemeralTo(approver1, "Only the requester can do this")
	w.click(requester, accessui.ActionNewCredentials, id, dmCh, "1.1")
	w.ephemeralTo(requester, "ask again from")

	// 50 minutes on: the button gives a new set for the same session.
	w.clock.Advance(50 * time.Minute)
	w.click(requester, accessui.ActionNewCredentials, id, dmCh, "1.1")
	w.ephemeralTo(requester, "are being issued")
	second, link := w.credentials(requester, id, 2)
	w.signIn(link, second)
	if second.Policy != first.Policy || second.DurationSeconds != access.MaxSessionSeconds || second.AccessKeyID == first.AccessKeyID {
		t.Errorf("second set %+v: want the first's session policy, %d s and new keys", second, access.MaxSessionSeconds)
	}

	// 30 minutes before the end: `/access creds` gives a set that ends
	// with the window (to STS's second) and is denied after it.
	w.waitFor(id, func(r access.Request) bool { return r.Reissue == nil }) // the second set recorded delivered
	w.clock.Advance(end.Sub(w.clock.Now()) - 30*time.Minute)
	r, _ := w.command(requester, "creds "+id)
	if !strings.Contains(r.Text, "are being issued") {
		t.Fatalf("/access creds answered %q", r.Text)
	}
	third, _ := w.credentials(requester, id, 3)
	if third.Policy != first.Policy || third.DurationSeconds > 1800 || third.DurationSeconds < 1790 || third.Expiration.After(end.Add(time.Second)) {
		t.Errorf("third set: %d s until %s; window until %s", third.DurationSeconds, third.Expiration, end)
	}
	if got := windowDecision(t, third.Policy, end.Add(-time.Minute)); got != awsfake.Allowed {
		t.Errorf("a minute before the window end: %s", got)
	}
	if got := windowDecision(t, third.Policy, end.Add(time.Second)); got != awsfake.ExplicitDeny {
		t.Errorf("a second after the window end: %s", got)
	}

	// Audited: one access.reissued line per set, by the requester.
	if line := w.auditLine(id, access.ActReissued); !strings.Contains(line, "by <@"+requester+">") || !strings.Contains(line, access.NoteReissuedAsked) {
		t.Errorf("audit line %q", line)
	}
	events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
	if err != nil {
		t.Fatal(err)
	}
	reissued := 0
	for _, e := range events {
		if e.Action == access.ActReissued {
			reissued++
			if e.Actor != requester {
				t.Errorf("reissue audited as by %s", e.Actor)
			}
		}
	}
	if reissued != 2 {
		t.Errorf("%d %s events, want 2", reissued, access.ActReissued)
	}

	// Revoked: neither the button nor the command gives another set.
	w.waitFor(id, func(r access.Request) bool { return r.Reissue == nil })
	w.clock.Advance(2 * time.Minute)
	w.command(requester, "revoke "+id)
	w.waitState(id, access.StateRevoked)
	w.click(requester, accessui.ActionNewCredentials, id, dmCh, "1.1")
	w.ephemeralTo(requester, "This request is revoked, not active")
	if r, _ := w.command(requester, "creds "+id); !strings.Contains(r.Text, "revoked, not active") {
		t.Errorf("/access creds after revocation answered %q", r.Text)
	}
	if n := len(w.aws.STS().AssumedRoles()); n != 3 {
		t.Errorf("%d AssumeRole calls, want 3", n)
	}
	w.checkNoLeaks(requester)
}

// TestAccessNewCredentialsSSMUntilExpiry: an ssm grant's new set names the
// same instances and session; once the window is over, `/access creds`
// and the button say so and issue nothing; a typo gets the usage.
func TestAccessNewCredentialsSSMUntilExpiry(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id, first := w.approvedRequest("prod-ssm 2h " + prodWeb + " rebuild the search index")
	w.clock.Advance(61 * time.Minute)
	if r, _ := w.command(requester, "creds "+id); !strings.Contains(r.Text, "are being issued") {
		t.Fatalf("/access creds answered %q", r.Text)
	}
	second, _ := w.credentials(requester, id, 2)
	if second.Policy != first.Policy || !strings.Contains(second.Policy, prodWeb) || second.DurationSeconds != access.MaxSessionSeconds-60 {
		t.Errorf("second set: %d s, policy %s", second.DurationSeconds, second.Policy)
	}
	w.dmWith(requester, "aws ssm start-session --target "+prodWeb)

	w.clock.Advance(time.Hour)
	w.waitState(id, access.StateExpired)
	if r, _ := w.command(requester, "creds "+id); !strings.Contains(r.Text, "expired, not active") {
		t.Errorf("/access creds after expiry answered %q", r.Text)
	}
	dmCh, _ := w.slack.DMChannel(requester)
	w.click(requester, accessui.ActionNewCredentials, id, dmCh, "1.1")
	w.ephemeralTo(requester, "expired, not active")
	if r, _ := w.command(requester, "creds"); !strings.Contains(r.Text, "Which request? Use `/access creds") {
		t.Errorf("/access creds without an id answered %q", r.Text)
	}
	if n := len(w.aws.STS().AssumedRoles()); n != 2 {
		t.Errorf("%d AssumeRole calls, want 2", n)
	}
}
