package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/sqsqueue"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestLambdaNewCredentials: the worker as Lambda runs it issues the new
// credentials the ingress enqueued for a two-hour grant: a second
// AssumeRole for the same session name, source identity and session
// policy, lasting no longer than the window, delivered in a new DM and
// audited as a reissue by the requester. The same job delivered again
// (SQS delivers at least once) issues nothing more.
func TestLambdaNewCredentials(t *testing.T) {
	t.Parallel()
	w := newLambdaWorld(t, lambdaOptions{})
	w.accessRequest(developer, "staging-admin", 2*time.Hour, "rotate the staging keys")
	var id string
	w.waitSlack("credentials", func(f *slackfake.Fake) bool {
		for _, m := range f.DMs(developer) {
			if j := messageJSON(m); strings.Contains(j, "export AWS_SECRET_ACCESS_KEY") && strings.Contains(j, accessui.ActionNewCredentials) {
				id = requestIDRE.FindString(j)
				return true
			}
		}
		return false
	})
	first := w.aws.STS().AssumedRoles()[0]
	// Told once the grant is recorded active, when the ingress takes an ask.
	w.waitSlack("active", func(f *slackfake.Fake) bool { return hasText(f.DMs(developer), id, "is active until") })

	// The ingress checked the ask and enqueued this job (Service.AskCredentials).
	// The worker issues at most one set per ReissueInterval, so the ask is
	// made, and delivered, once that much has passed since the first set.
	asked := time.Now().Add(access.ReissueInterval + time.Second)
	j, err := bot.NewJob("reissue/"+id+"/1", access.JobReissue, map[string]any{
		"request_id": id, "by": developer, "asked": asked.UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	body, err := sqsqueue.Encode(j)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.aws.SQS().SendDelayed(lambdaJobs, body, time.Until(asked)+time.Second); err != nil {
		t.Fatal(err)
	}
	w.slack.WaitFor(t, waitLong+access.ReissueInterval, func(f *slackfake.Fake) bool {
		n := 0
		for _, m := range f.DMs(developer) {
			if strings.Contains(messageJSON(m), "export AWS_SECRET_ACCESS_KEY") {
				n++
			}
		}
		return n == 2
	})
	w.waitSlack("audit", func(f *slackfake.Fake) bool {
		return hasText(f.Messages(auditChannel), "*"+access.ActReissued+"*", id, "by <@"+developer+">")
	})
	roles := w.aws.STS().AssumedRoles()
	if len(roles) != 2 {
		t.Fatalf("%d AssumeRole calls, want 2", len(roles))
	}
	second := roles[1]
	if second.RoleSessionName != id || second.SourceIdentity != developer || second.Policy != first.Policy ||
		second.DurationSeconds > access.MaxSessionSeconds || second.AccessKeyID == first.AccessKeyID {
		t.Errorf("second set %+v, first %+v", second, first)
	}

	// Delivered again: nothing more is issued.
	from := time.Now()
	w.enqueue(j)
	w.waitSlack("the duplicate job run", func(*slackfake.Fake) bool { return w.jobsRun(lambdaJobs, access.JobReissue, from) >= 1 })
	w.waitSlack("the duplicate job done", func(*slackfake.Fake) bool {
		return !slices.ContainsFunc(w.aws.SQS().Messages(lambdaJobs), func(m awsfake.Message) bool {
			return strings.Contains(m.Body, `"`+access.JobReissue+`"`)
		})
	})
	if n := len(w.aws.STS().AssumedRoles()); n != 2 {
		t.Errorf("%d AssumeRole calls after a duplicate delivery, want 2", n)
	}
}
