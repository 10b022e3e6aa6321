package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestAccessUnpostedRequest: the approver channel answers not_in_channel.
// The requester is told at once what went wrong and what to do (not that
// the request "is waiting"), the request is marked (in /access list and
// the audit), ops get an alert naming the channel and the profile, and
// nothing is retried in vain. Once the bot is invited, the sweep posts
// the card and the requester hears it is visible.
func TestAccessUnpostedRequest(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	w.slack.SetBotMember(approverChannel, false)

	r, rid := w.command(requester, "prod-readonly 1h look at the billing console")
	if !strings.Contains(r.Text, "Checking your request") {
		t.Fatalf("answer %q", r.Text)
	}
	answer := w.lateAnswer(rid)
	id := requestIDRE.FindString(answer)
	if id == "" || strings.Contains(answer, "is waiting in") ||
		!containsAll(answer, "could not be posted in <#"+approverChannel+">", "not a member", "/invite @tokken") {
		t.Fatalf("the requester was told %q", answer)
	}
	got := w.waitFor(id, func(r access.Request) bool { return r.Unposted != nil })
	if got.Unposted.Channel != approverChannel || got.Unposted.Code != "not_in_channel" || !got.Message.IsZero() {
		t.Fatalf("request %+v", got)
	}
	w.dmWith(requester, "could not be posted in <#"+approverChannel+">")

	// Ops are alerted, naming the channel and the profile.
	var alert string
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(accessOps) {
			if j := messageJSON(m); strings.Contains(j, accessui.NotPostedText) && strings.Contains(j, id) {
				alert = j
				return true
			}
		}
		return false
	})
	if !containsAll(alert, "<#"+approverChannel+">", "prod-readonly", "not_in_channel", "/invite @tokken") {
		t.Errorf("ops alert %s", alert)
	}
	// The audit trail says so.
	if line := w.auditLine(id, access.ActUnposted); !strings.Contains(line, approverChannel+": not_in_channel") {
		t.Errorf("audit line %q", line)
	}
	// /access list shows it.
	if l, _ := w.command(requester, "list"); !containsAll(l.Text, id, accessui.NotPostedText, "<#"+approverChannel+">") {
		t.Errorf("/access list: %q", l.Text)
	}
	// Retrying cannot help: one attempt at the channel, one alert.
	attempts := 0
	for _, c := range w.slack.Calls("chat.postMessage") {
		if c.Channel == approverChannel {
			attempts++
		}
	}
	if attempts != 1 {
		t.Errorf("%d posts to the approver channel, want 1", attempts)
	}

	// A sweep while the bot is still outside changes nothing and alerts
	// nobody again.
	w.clock.Advance(2 * time.Minute)
	w.sweep("sweep/1")
	w.slack.SetBotMember(approverChannel, true) // someone ran /invite @tokken
	w.sweep("sweep/2")
	posted := w.waitFor(id, func(r access.Request) bool { return !r.Message.IsZero() })
	if posted.Unposted != nil || posted.Message.Channel != approverChannel || posted.State != access.StatePending {
		t.Fatalf("after the invitation: %+v", posted)
	}
	w.waitMessage(id, "Waiting for approval", accessui.ActionApprove)
	w.dmWith(requester, "is now posted in <#"+approverChannel+">")
	w.auditLine(id, access.ActPosted)
	n := 0
	for _, m := range w.slack.Messages(accessOps) {
		if strings.Contains(messageJSON(m), id) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d ops alerts about %s, want 1", n, id)
	}
	events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	if want := []string{access.ActRequested, access.ActUnposted, access.ActPosted}; strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit trail %v, want %v", actions, want)
	}
	// It works from here on like any request.
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
}

// sweepKind is the kind of the reconcile sweep job (template.yaml's
// SweepSchedule input).
const sweepKind = "sweep"

// sweep runs the reconcile sweep job through the queue, as the schedule
// does, and waits until it has run.
func (w *accessWorld) sweep(jobID string) {
	w.t.Helper()
	if err := w.queue.Enqueue(context.Background(), bot.Job{ID: jobID, Kind: sweepKind}); err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitAccess)
	defer cancel()
	want := `"job_id":"` + jobID + `"`
	if err := w.logs.Wait(ctx, func(logs string) bool {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, want) && strings.Contains(l, `"msg":"job done"`) {
				return true
			}
		}
		return false
	}); err != nil {
		w.t.Fatalf("sweep %s did not run: %v", jobID, err)
	}
}

// TestAccessCardUpdateRetriedAfterSlackOutage: Slack answers 503 to every
// attempt the client makes at updating the card (an outage longer than
// its retries); the update is retried through the queue and the card
// ends up showing the denial, instead of "Waiting for approval" forever.
func TestAccessCardUpdateRetriedAfterSlackOutage(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-readonly 1h look at the billing console")
	w.waitMessage(id, "Waiting for approval")
	w.clickOn(approver1, accessui.ActionDeny, id)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool { return len(f.Views()) == 1 })
	updates := len(w.slack.Calls("chat.update"))
	w.slack.FailNext("chat.update", 4, 503) // every attempt of one call
	if body := w.submitView(approver1, accessui.CallbackDeny, id, map[string]slack.BlockAction{"reason": {Value: "use the dashboard"}}); body != "" {
		t.Fatalf("deny answered %q", body)
	}
	w.waitState(id, access.StateDenied)
	w.waitMessage(id, "Denied", "use the dashboard")
	failed := 0
	for _, c := range w.slack.Calls("chat.update")[updates:] {
		if c.Status == 503 {
			failed++
		}
	}
	if failed != 4 {
		t.Errorf("%d failed updates, want the 4 the fault injected", failed)
	}
	w.dmWith(requester, "was denied by")
}

// TestAccessCardRefusedAfterPosting: the request's card was posted, then
// the approver channel was archived. The update the approval makes is
// refused: the requester is told what went wrong and what to do, the
// request is marked NOT POSTED (in the audit trail), and ops get one
// alert naming the channel and the profile, not one per refused update.
func TestAccessCardRefusedAfterPosting(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-readonly 1h look at the billing console")
	w.waitMessage(id, "Waiting for approval")
	w.slack.ArchiveChannel(approverChannel)

	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	got := w.waitFor(id, func(r access.Request) bool { return r.Unposted != nil })
	if got.Unposted.Channel != approverChannel || got.Unposted.Code != "is_archived" {
		t.Fatalf("unposted %+v", got.Unposted)
	}
	w.dmWith(requester, "can no longer be updated")
	if line := w.auditLine(id, access.ActUnposted); !strings.Contains(line, approverChannel+": is_archived") {
		t.Errorf("audit line %q", line)
	}
	alerts := func() (n int, text string) {
		for _, m := range w.slack.Messages(accessOps) {
			if j := messageJSON(m); strings.Contains(j, accessui.NotPostedText) && strings.Contains(j, id) {
				n, text = n+1, j
			}
		}
		return n, text
	}
	w.slack.WaitFor(t, waitAccess, func(*slackfake.Fake) bool { n, _ := alerts(); return n > 0 })
	if _, text := alerts(); !containsAll(text, "<#"+approverChannel+">", "prod-readonly", "is_archived") {
		t.Errorf("ops alert %s", text)
	}

	// The sweep tries the card again: refused again, the same problem,
	// so nobody is told twice.
	w.clock.Advance(2 * time.Minute)
	w.sweep("sweep/1")
	if n, _ := alerts(); n != 1 {
		t.Errorf("%d ops alerts about %s, want 1", n, id)
	}
	tries := 0
	for _, c := range w.slack.Calls("chat.update") {
		if c.Channel == approverChannel && c.Error == "is_archived" {
			tries++
		}
	}
	if tries < 2 {
		t.Errorf("%d refused card updates, want the approval's and the sweep's", tries)
	}
}
