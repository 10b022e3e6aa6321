package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/testkit/slackfake"
)

var draftIDRE = regexp.MustCompile(`"value":"(b-[0-9a-z]{12})"`)

// commandBody runs a slash command and returns the raw synchronous answer.
func (w *accessWorld) commandBody(user, text, rid string) string {
	w.t.Helper()
	req, _ := w.slack.SlashCommand(w.t, w.srv.URL+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: text, UserID: user, ChannelID: "C0RANDOM01", ResponseURL: w.slack.ResponseURL(rid),
	})
	status, body := do(w.t, req)
	if status != http.StatusOK {
		w.t.Fatalf("/access %s: %d %q", text, status, body)
	}
	return body
}

// clickWithResponseURL clicks a button on an ephemeral message, as Slack
// sends it: with the response_url that can replace that message.
func (w *accessWorld) clickWithResponseURL(user, actionID, value, rid string) {
	w.t.Helper()
	req, _ := w.slack.Interaction(w.t, w.srv.URL+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user}, ResponseURL: w.slack.ResponseURL(rid),
		Container:      slack.Container{Type: "message", ChannelID: "C0RANDOM01", IsEphemeral: true},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: actionID, Value: value}}},
	})
	if status, body := do(w.t, req); status != http.StatusOK {
		w.t.Fatalf("click %s by %s: %d %q", actionID, user, status, body)
	}
}

// responsePostWith waits for a post to response_url rid whose text holds
// want, and returns that post.
func (w *accessWorld) responsePostWith(rid, want string) slackfake.Call {
	w.t.Helper()
	var found slackfake.Call
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		for _, c := range f.ResponsePosts(rid) {
			if strings.Contains(c.Text, want) {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// TestAccessBreakGlassOneLiner: an on-call engineer refused a plain
// request is told that break-glass is open to them and the exact command;
// `/access --break-glass …` asks for confirmation (nothing is requested
// before), and Confirm files it as break-glass: active at once, announced,
// awaiting review. Help lists the flag; profiles without break-glass and
// people the policy does not allow are refused at once.
func TestAccessBreakGlassOneLiner(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	w.slack.AddChannel("C0RANDOM01", "random") // where the commands are typed

	r, _ := w.command(oncall, "help")
	if !strings.Contains(r.Text, "/access --break-glass &lt;profile&gt;") {
		t.Errorf("/access help does not say how to break glass: %q", r.Text)
	}

	// The plain request is refused, and the refusal shows the way.
	r, rid := w.command(oncall, "prod-ssm 30m "+prodWeb+" db down")
	if !strings.Contains(r.Text, "Checking your request") {
		t.Fatalf("answer %q", r.Text)
	}
	refusal := w.lateAnswer(rid)
	wantCmd := "/access --break-glass prod-ssm 30m " + prodWeb + " db down"
	if !containsAll(refusal, "You are not allowed to request here", "break glass", "`"+wantCmd+"`") {
		t.Errorf("refusal %q does not offer %q", refusal, wantCmd)
	}

	// Profiles without break-glass, and people who may not, are refused
	// before any confirmation.
	for _, tt := range []struct{ user, text, want string }{
		{requester, "--break-glass prod-readonly 30m billing down", "Profile prod-readonly does not allow break-glass"},
		{devUser, "--break-glass prod-ssm 30m " + prodWeb + " db down", "You are not allowed to"},
		{oncall, "--break-glass nosuch 30m db down", `You may request: prod-ssm.`},
		{oncall, "--break-glass list", "goes with a request"},
	} {
		body := w.commandBody(tt.user, tt.text, fmt.Sprintf("R%d", time.Now().UnixNano()))
		if !strings.Contains(body, tt.want) || strings.Contains(body, accessui.ActionConfirmBreakGlass) {
			t.Errorf("/access %s by %s: %s, want %q and no confirmation", tt.text, tt.user, body, tt.want)
		}
	}

	// The flag asks for confirmation; Cancel files nothing.
	cancelRID := "Rcancel"
	body := w.commandBody(oncall, "--break-glass prod-ssm 30m "+prodWeb+" db down", cancelRID)
	m := draftIDRE.FindStringSubmatch(body)
	if m == nil || !containsAll(body, accessui.ActionConfirmBreakGlass, accessui.ActionCancelBreakGlass, "Break glass on prod-ssm for 30m", "ephemeral") {
		t.Fatalf("no confirmation: %s", body)
	}
	w.clickWithResponseURL(oncall, accessui.ActionCancelBreakGlass, m[1], "Rcancel-click")
	if c := w.responsePostWith("Rcancel-click", "Cancelled: nothing was requested"); c.Fields.Get("replace_original") != "true" {
		t.Errorf("the confirmation was not replaced: %v", c.Fields)
	}
	w.clickWithResponseURL(oncall, accessui.ActionConfirmBreakGlass, m[1], "Rcancel-click2")
	w.responsePostWith("Rcancel-click2", "expired or was already used")

	// Confirm files it as break-glass, once however often it is clicked.
	confirmRID := "Rconfirm"
	body = w.commandBody(oncall, "prod-ssm 30m "+prodWeb+" db down --break-glass", confirmRID)
	m = draftIDRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no confirmation: %s", body)
	}
	if n := len(w.slack.Messages(approverChannel)); n != 0 {
		t.Fatalf("%d requests posted before confirmation", n)
	}
	w.clickWithResponseURL(approver1, accessui.ActionConfirmBreakGlass, m[1], "Rother")
	w.ephemeralTo(approver1, "Only the requester can do this")
	w.clickWithResponseURL(oncall, accessui.ActionConfirmBreakGlass, m[1], "Rclick1")
	w.responsePostWith("Rclick1", "Breaking glass on *prod-ssm*")
	w.clickWithResponseURL(oncall, accessui.ActionConfirmBreakGlass, m[1], "Rclick2")
	w.responsePostWith("Rclick2", "expired or was already used")
	answer := w.lateAnswerWith(confirmRID, "is being granted")
	id := requestIDRE.FindString(answer)
	got := w.waitState(id, access.StateActive)
	if got.BreakGlass == nil || !got.BreakGlass.NeedsReview() || got.BreakGlass.Reason != "db down" || got.Requester != oncall {
		t.Fatalf("request %+v is not an unreviewed break-glass by on-call", got)
	}
	w.credentials(oncall, id, 1)
	w.waitMessage(id, "Break-glass", accessui.NeedsReviewText)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(auditChannel) {
			if j := messageJSON(m); strings.Contains(j, "BREAK-GLASS") && strings.Contains(j, id) {
				return true
			}
		}
		return false
	})
	if n := len(w.aws.STS().AssumedRoles()); n != 1 {
		t.Errorf("%d AssumeRole calls for one confirmed break-glass, want 1", n)
	}
}

// lateAnswerWith waits for a post to response_url rid containing want.
func (w *accessWorld) lateAnswerWith(rid, want string) string {
	w.t.Helper()
	return w.responsePostWith(rid, want).Text
}
