package e2e

// Security scenarios: requests that are not Slack's (forged, stale,
// tampered, replayed, oversized) have no effect; user text that reaches
// Slack is inert (no mention, no link, no broken formatting it could
// abuse); a user outside policy clicking any button of any feature is told
// no and changes nothing. The access scenarios run in-process on the
// virtual clock (accessWorld); /domain and alerts run the tokken binary.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/alertui"
	"github.com/tokken/tokken/handlers/domainui"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/mackerelfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// outsider is a workspace member no policy mentions.
const outsider = "U0OUTSIDE01"

// evil is user text that would ping the channel, mention someone, disguise
// a link and break formatting if tokken put it into mrkdwn unescaped. field
// names the input, so the escaped form proves which field reached Slack.
func evil(field string) string {
	return field + " <!channel> <!here> <@U0EVIL0001> <!subteam^S0EVIL0001> <http://evil.example/" + field + "|click> *bold _it `tick & co"
}

// escapedEvil is how evil(field) must reach Slack: as text.
func escapedEvil(field string) string {
	return "&lt;http://evil.example/" + field + "|click&gt;"
}

// activeMarkup is what evil text would turn into if it were not escaped.
var activeMarkup = []string{"<!channel>", "<!here>", "<@U0EVIL0001>", "<!subteam^S0EVIL0001>", "<http://evil.example/"}

// slackSays is everything a recorded Web API call or response_url post asked
// Slack to show, with JSON's HTML escapes undone so mrkdwn reads as Slack
// receives it.
func slackSays(c slackfake.Call) string {
	var b bytes.Buffer
	b.WriteString(c.Text + "\n")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(c.Blocks)
	_ = enc.Encode(c.Attachments)
	for _, k := range []string{"text", "blocks", "attachments", "view"} {
		b.WriteString(c.Fields.Get(k) + "\n")
	}
	// A plain-text input's initial_value is shown as typed text, never as
	// markup (the pre-filled access form quotes an alert this way); it is
	// escaped where it is shown later, which the other calls prove.
	said := inputValue.ReplaceAllString(b.String(), `"initial_value":""`)
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(said)
}

var inputValue = regexp.MustCompile(`"initial_value":"(?:[^"\\]|\\.)*"`)

// checkInert fails when any Slack call carries evil text unescaped, and
// when the escaped text of one of fields never reached Slack (the check
// would then prove nothing).
func checkInert(t *testing.T, f *slackfake.Fake, fields ...string) {
	t.Helper()
	var all strings.Builder
	for _, c := range f.Calls("") {
		said := slackSays(c)
		for _, bad := range activeMarkup {
			if strings.Contains(said, bad) {
				t.Errorf("%s carries %q from user text unescaped:\n%.600s", c.Method, bad, said)
			}
		}
		all.WriteString(said)
	}
	for _, field := range fields {
		if !strings.Contains(all.String(), escapedEvil(field)) {
			t.Errorf("the %s never reached Slack (escaped): nothing proves it is escaped", field)
		}
	}
}

// raw is a captured request: its exact bytes and headers, to send again.
type raw struct {
	url    string
	header http.Header
	body   []byte
}

func capture(t *testing.T, req *http.Request) raw {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return raw{url: req.URL.String(), header: req.Header.Clone(), body: b}
}

func (r raw) send(t *testing.T) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.header.Clone()
	return do(t, req)
}

// TestSecurityReplayedRequests re-sends captured signed requests inside the
// 5-minute window: a slash command does not file a second request, a click
// does not act twice.
func TestSecurityReplayedRequests(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	req, _ := w.slack.SlashCommand(t, w.srv.URL+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: "prod-readonly 1h rotate the keys", UserID: requester, ChannelID: "C0RANDOM01",
	})
	cmd := capture(t, req)
	status, body := cmd.send(t)
	if status != http.StatusOK || !strings.Contains(body, "Checking your request") {
		t.Fatalf("first delivery: %d %q", status, body)
	}
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool { return len(f.Messages(approverChannel)) == 1 })
	for range 2 {
		status, body := cmd.send(t)
		if status != http.StatusOK || !strings.Contains(body, router.MsgRepeatedCommand) {
			t.Fatalf("replayed command: %d %q", status, body)
		}
	}
	// A later request by the same requester proves the queue moved past
	// anything the replays could have enqueued.
	second := w.request(requester, "staging-admin 1h a later request")
	if n := len(w.slack.Messages(approverChannel)); n != 1 {
		t.Fatalf("%d requests in the approver channel after two replays, want 1", n)
	}
	ids := requestIDRE.FindAllString(w.slack.Dump(100), -1)
	filed := map[string]bool{}
	for _, id := range ids {
		if id != second {
			filed[id] = true
		}
	}
	if len(filed) != 1 {
		t.Fatalf("requests filed: %v, want one", filed)
	}
	var id string
	for k := range filed {
		id = k
	}

	// A captured Approve replayed: one approval, one grant.
	m := w.get(id).Message
	click, _ := w.clickRequest(approver1, accessui.ActionApprove, id, m.Channel, m.TS)
	approve := capture(t, click)
	if status, body := approve.send(t); status != http.StatusOK {
		t.Fatalf("approve: %d %q", status, body)
	}
	w.waitState(id, access.StateActive)
	w.credentials(requester, id, 1)
	ephemerals := len(w.slack.Ephemerals(approver1))
	for range 2 {
		if status, body := approve.send(t); status != http.StatusOK || body != "" {
			t.Fatalf("replayed click: %d %q", status, body)
		}
	}
	// Revoke by the approver is a signal that the replays were handled.
	w.clickOn(approver1, accessui.ActionRevoke, id)
	w.waitState(id, access.StateRevoked)
	if r := w.get(id); len(r.Approvals) != 1 {
		t.Errorf("approvals %v after replays", r.Approvers())
	}
	assumed := 0
	for _, a := range w.aws.STS().AssumedRoles() {
		if a.RoleSessionName == id {
			assumed++
		}
	}
	if assumed != 1 {
		t.Errorf("%d AssumeRole calls for %s, want 1", assumed, id)
	}
	if n := len(w.slack.Ephemerals(approver1)); n != ephemerals {
		t.Errorf("the replayed clicks were answered (%d ephemerals, was %d): they ran", n, ephemerals)
	}
	if !strings.Contains(w.logs.String(), "repeated command ignored") || !strings.Contains(w.logs.String(), "duplicate interaction ignored") {
		t.Error("replays are not logged")
	}
}

// TestSecurityRejectedOnEveryRoute sends forged, stale, future, tampered,
// unsigned and oversized requests to every Slack route of the binary, and
// an oversized body to the Mackerel webhook: each is refused with its
// reason and has no effect.
func TestSecurityRejectedOnEveryRoute(t *testing.T) {
	t.Parallel()
	fake := alertsFake(t)
	mk := mackerelfake.New(t, "")
	s := startServe(t, fake, alertsEnv(t, mk)...)
	secret := fake.SigningSecret()
	now := time.Now()
	bodies := map[string][]byte{
		"/slack/commands":     []byte("command=%2Falerts&text=list&user_id=" + alertsOnCall + "&channel_id=C1&trigger_id=1.2.3"),
		"/slack/interactions": []byte(`payload=%7B%22type%22%3A%22block_actions%22%7D`),
		"/slack/options":      []byte(`payload=%7B%22type%22%3A%22block_suggestion%22%7D`),
		"/slack/events":       []byte(`{"type":"url_verification","challenge":"c-1"}`),
	}
	for path, body := range bodies {
		tests := []struct {
			name   string
			req    *http.Request
			status int
			reason string
		}{
			{"forged", signed(t, "not-the-signing-secret", s.base+path, body, now), 401, "signature mismatch"},
			{"stale", signed(t, secret, s.base+path, body, now.Add(-slacksig.MaxSkew-time.Minute)), 401, "outside the 5-minute window"},
			{"from the future", signed(t, secret, s.base+path, body, now.Add(slacksig.MaxSkew+time.Minute)), 401, "outside the 5-minute window"},
			{"tampered", func() *http.Request {
				r := signed(t, secret, s.base+path, body, now)
				b := append(append([]byte{}, body...), '&', 'x')
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				return r
			}(), 401, "signature mismatch"},
			{"unsigned", func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(body))
				return r
			}(), 401, "missing signature"},
			{"oversized", signed(t, secret, s.base+path, bytes.Repeat([]byte("a"), slacksig.MaxBody+1), now), 413, "larger than 1 MiB"},
		}
		for _, tt := range tests {
			if status, got := do(t, tt.req); status != tt.status || !strings.Contains(got, tt.reason) {
				t.Errorf("%s %s: %d %q, want %d %q", tt.name, path, status, got, tt.status, tt.reason)
			}
		}
	}
	big := append([]byte(`{"event":"alert","memo":"`), bytes.Repeat([]byte("a"), httpapi.MaxWebhookBody+1)...)
	if status, got := postWebhook(t, s, append(big, `"}`...), alertsHookUser, alertsHookPass); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized Mackerel webhook: %d %q, want 413", status, got)
	}
	// The genuine request still works: nothing above poisoned anything.
	req, _ := fake.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{Command: "/alerts", Text: "list", UserID: alertsOnCall, ChannelID: alertsChannel})
	if status, body := do(t, req); status != 200 || !strings.Contains(body, "No open alerts") {
		t.Errorf("/alerts list after the refusals: %d %q", status, body)
	}
	s.stop()
	for _, method := range []string{"chat.postMessage", "chat.postEphemeral", "chat.update", "views.open"} {
		if n := len(fake.Calls(method)); n != 0 {
			t.Errorf("refused requests made %d %s calls", n, method)
		}
	}
}

// TestSecurityAccessTextIsInert puts evil text in every field of the access
// flow that reaches Slack: the request reason (one-liner and modal), the
// ticket, the deny reason, the extend reason, the revoke reason and the
// break-glass reason.
func TestSecurityAccessTextIsInert(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)

	denied := w.request(requester, "prod-readonly 1h "+evil("request-reason"))
	w.clickOn(approver1, accessui.ActionDeny, denied)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool { return len(f.Views()) == 1 })
	if body := w.submitView(approver1, accessui.CallbackDeny, denied, map[string]slack.BlockAction{"reason": {Value: evil("deny-reason")}}); body != "" {
		t.Fatalf("deny: %q", body)
	}
	w.waitState(denied, access.StateDenied)
	w.dmWith(requester, "was denied by")

	// From the modal, with a ticket; approved, extended, revoked.
	r, _ := w.command(requester, "")
	if r.Text != "" {
		t.Fatalf("/access answered %q instead of opening the modal", r.Text)
	}
	if body := w.submitView(requester, accessui.CallbackRequest, "", map[string]slack.BlockAction{
		"profile":  {SelectedOption: slack.OptionBlockObject{Value: "prod-readonly"}},
		"duration": {SelectedOption: slack.OptionBlockObject{Value: "1h"}},
		"reason":   {Value: evil("modal-reason")},
		"ticket":   {Value: evil("ticket")},
	}); body != "" {
		t.Fatalf("request modal: %q", body)
	}
	var id string
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(approverChannel) {
			if got := requestIDRE.FindString(m.Text); got != "" && got != denied {
				id = got
			}
		}
		return id != ""
	})
	w.waitFor(id, func(r access.Request) bool { return !r.Message.IsZero() })
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	w.credentials(requester, id, 1)
	dmCh, _ := w.slack.DMChannel(requester)
	w.click(requester, accessui.ActionExtend, id, dmCh, "1.1")
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		vs := f.Views()
		return len(vs) > 0 && vs[len(vs)-1].Request.CallbackID == accessui.CallbackExtend
	})
	if body := w.submitView(requester, accessui.CallbackExtend, id, map[string]slack.BlockAction{
		"duration": {SelectedOption: slack.OptionBlockObject{Value: "1h"}}, "reason": {Value: evil("extend-reason")},
	}); body != "" {
		t.Fatalf("extend: %q", body)
	}
	w.waitMessage(id, "Extension asked")
	if ans, _ := w.command(approver1, "revoke "+id+" "+evil("revoke-reason")); ans.ResponseType != "ephemeral" {
		t.Fatalf("/access revoke answered %+v", ans)
	}
	w.waitState(id, access.StateRevoked)

	// Break-glass from the modal by on-call.
	w.command(oncall, "")
	if body := w.submitView(oncall, accessui.CallbackRequest, "", map[string]slack.BlockAction{
		"profile":     {SelectedOption: slack.OptionBlockObject{Value: "prod-ssm"}},
		"targets":     {SelectedOptions: []slack.OptionBlockObject{{Value: prodWeb}}},
		"duration":    {SelectedOption: slack.OptionBlockObject{Value: "30m"}},
		"reason":      {Value: evil("break-glass-reason")},
		"break_glass": {SelectedOptions: []slack.OptionBlockObject{{Value: "yes"}}},
	}); body != "" {
		t.Fatalf("break-glass: %q", body)
	}
	bg := requestIDRE.FindString(w.dmWith(oncall, "is being granted"))
	w.waitState(bg, access.StateActive)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(auditChannel) {
			if strings.Contains(messageJSON(m), "BREAK-GLASS") {
				return true
			}
		}
		return false
	})
	w.close() // every Slack call has been made
	checkInert(t, w.slack, "request-reason", "deny-reason", "modal-reason", "ticket", "extend-reason", "revoke-reason", "break-glass-reason")
}

// TestSecurityAccessOutsiderClicksEveryButton has users outside policy
// press every /access button in every state that shows it: each gets an
// ephemeral refusal and the request does not change.
func TestSecurityAccessOutsiderClicksEveryButton(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	w.slack.AddUser(slackfake.User{ID: outsider, Name: "outsider"})
	snapshot := func(id string) string {
		b, err := json.Marshal(w.get(id))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// press has each intruder click action on request id's message and
	// waits for their refusal.
	press := func(id, action, channel, ts string, intruders ...string) {
		t.Helper()
		before := snapshot(id)
		for _, u := range intruders {
			n := len(w.slack.Ephemerals(u))
			w.click(u, action, id, channel, ts)
			w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool { return len(f.Ephemerals(u)) > n })
			if e := w.slack.Ephemerals(u)[n]; !strings.Contains(e.Text, "not allowed") && !strings.Contains(e.Text, "Only the requester") && !strings.Contains(e.Text, "cannot") {
				t.Errorf("%s by %s answered %q, not a refusal", action, u, e.Text)
			}
		}
		if after := snapshot(id); after != before {
			t.Errorf("%s by outsiders changed request %s:\nbefore %s\nafter  %s", action, id, before, after)
		}
	}
	on := func(id, action string, intruders ...string) {
		m := w.get(id).Message
		press(id, action, m.Channel, m.TS, intruders...)
	}

	id := w.request(requester, "prod-readonly 1h outsider test")
	on(id, accessui.ActionApprove, devUser, outsider)
	on(id, accessui.ActionDeny, devUser, outsider)
	if n := len(w.slack.Views()); n != 0 {
		t.Errorf("an outsider's Deny opened %d modals", n)
	}
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	w.credentials(requester, id, 1)
	on(id, accessui.ActionRevoke, devUser, outsider)
	dmCh, _ := w.slack.DMChannel(requester)
	press(id, accessui.ActionDone, dmCh, "1.1", devUser, outsider, approver2)
	press(id, accessui.ActionExtend, dmCh, "1.1", devUser, outsider, approver2)

	// A pending extension: outsiders may neither approve nor deny it.
	w.click(requester, accessui.ActionExtend, id, dmCh, "1.1")
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		vs := f.Views()
		return len(vs) > 0 && vs[len(vs)-1].Request.CallbackID == accessui.CallbackExtend
	})
	w.submitView(requester, accessui.CallbackExtend, id, map[string]slack.BlockAction{
		"duration": {SelectedOption: slack.OptionBlockObject{Value: "1h"}}, "reason": {Value: "more time"},
	})
	w.waitMessage(id, "Extension asked", accessui.ActionApproveExtension)
	views := len(w.slack.Views())
	on(id, accessui.ActionApproveExtension, devUser, outsider)
	on(id, accessui.ActionDenyExtension, devUser, outsider)
	if n := len(w.slack.Views()); n != views {
		t.Errorf("an outsider's Deny on the extension opened a modal")
	}

	// Break-glass awaiting review: outsiders may not mark it reviewed.
	w.command(oncall, "")
	w.submitView(oncall, accessui.CallbackRequest, "", map[string]slack.BlockAction{
		"profile":     {SelectedOption: slack.OptionBlockObject{Value: "prod-ssm"}},
		"targets":     {SelectedOptions: []slack.OptionBlockObject{{Value: prodWeb}}},
		"duration":    {SelectedOption: slack.OptionBlockObject{Value: "30m"}},
		"reason":      {Value: "sev1"},
		"break_glass": {SelectedOptions: []slack.OptionBlockObject{{Value: "yes"}}},
	})
	bg := requestIDRE.FindString(w.dmWith(oncall, "is being granted"))
	w.waitState(bg, access.StateActive)
	w.waitMessage(bg, accessui.ActionReview)
	on(bg, accessui.ActionReview, devUser, outsider)
	if n := len(w.aws.STS().AssumedRoles()); n != 2 {
		t.Errorf("%d AssumeRole calls, want 2 (the request and the break-glass)", n)
	}
}

// TestSecurityDomainAndAlertsOutsidersAndText runs the binary with /domain
// and alerts: evil text in /domain arguments, an /alerts silence reason and
// a Mackerel webhook's memo, monitor and host names reaches Slack inert;
// a user outside policy pressing every domain and alert button is refused
// and nothing changes.
func TestSecurityDomainAndAlertsOutsidersAndText(t *testing.T) {
	t.Parallel()
	mk := mackerelfake.New(t, "")
	mk.AddAlert("4Fbh2K6yWfe")
	w := newDomainWorld(t, alertsEnv(t, mk)...)
	for _, ch := range alertsChannels {
		if ch != opsChannel {
			w.slack.AddChannel(ch, strings.ToLower(ch))
		}
	}
	const prod = "i-0e00000000000003a"
	w.addWindows(prod, "win-prod-03", map[string]string{"Env": "prod"})

	// /domain arguments.
	_, resp := w.command(winAdmin, "join "+evil("domain-args"))
	w.lateReply(resp, "No instance is named")

	// A prod join waits for approval: outsiders press Approve, Deny, Cancel.
	_, resp = w.command(winAdmin, "join win-prod-03")
	w.lateReply(resp, "needs approval")
	ts := w.opMessage(prod)
	w.waitMessage(ts, "pending approval")
	before, _ := w.slack.Message(domainChannel, ts)
	refused := func(n int) bool {
		return len(w.slack.Ephemerals(developer))+len(w.slack.DMs(developer)) > n
	}
	for _, action := range []string{domainui.ActionApprove, domainui.ActionCancel, domainui.ActionDeny} {
		n := len(w.slack.Ephemerals(developer)) + len(w.slack.DMs(developer))
		w.click(developer, ts, action)
		if action == domainui.ActionDeny {
			// The ingress has no policy: Deny opens the reason modal and the
			// worker refuses the submission.
			w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { return len(f.Views()) == 1 })
			v := w.slack.Views()[0]
			var sub slack.InteractionCallback
			sub.Type, sub.User.ID = slack.InteractionTypeViewSubmission, developer
			sub.View = slack.View{ID: v.ID, Hash: v.Hash, CallbackID: v.Request.CallbackID, PrivateMetadata: v.Request.PrivateMetadata,
				State: &slack.ViewState{Values: map[string]map[string]slack.BlockAction{"reason": {"reason_input": {Value: evil("domain-deny")}}}}}
			req, _ := w.slack.Interaction(t, w.srv.base+"/slack/interactions", sub)
			if status, body := do(t, req); status != 200 || body != "" {
				t.Fatalf("deny submission: %d %q", status, body)
			}
		}
		w.slack.WaitFor(t, waitLong, func(*slackfake.Fake) bool { return refused(n) })
	}
	if after, _ := w.slack.Message(domainChannel, ts); after.Edits != before.Edits || w.aws.EC2().Tags(prod)["domain"] != "" {
		t.Errorf("outsiders' clicks changed the operation: edits %d→%d, tags %v", before.Edits, after.Edits, w.aws.EC2().Tags(prod))
	}

	// A Mackerel alert whose memo, monitor and host names are evil.
	var hook map[string]any
	if err := json.Unmarshal(alertsFixture(t, "mackerel-host-critical.json"), &hook); err != nil {
		t.Fatal(err)
	}
	hook["memo"] = evil("memo")
	hook["message"] = evil("message")
	hook["host"].(map[string]any)["name"] = evil("host-name")
	hook["host"].(map[string]any)["memo"] = evil("host-memo")
	hook["alert"].(map[string]any)["monitorName"] = evil("monitor-name")
	body, _ := json.Marshal(hook)
	if status, got := postWebhook(t, w.srv, body, alertsHookUser, alertsHookPass); status != http.StatusAccepted {
		t.Fatalf("webhook: %d %q", status, got)
	}
	var alert slackfake.Message
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		var ok bool
		alert, ok = alertMessage(f, "monitor-name")
		return ok
	})
	edits, views := alert.Edits, len(w.slack.Calls("views.open"))
	// Every button, Request access included, is checked against the alert
	// rules (alert_act): an outsider is refused and nothing opens or is
	// filed.
	posts := len(w.slack.Calls("chat.postMessage"))
	for _, action := range []string{alertui.ActionAck, alertui.ActionSilence1h, alertui.ActionSilence4h, alertui.ActionSilenceTomorrow, alertui.ActionClose, alertui.ActionRequestAccess} {
		n := len(w.slack.Ephemerals(developer))
		pressAlertButton(t, w.srv, w.slack, developer, action, "mackerel:4Fbh2K6yWfe", alert)
		w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { return len(f.Ephemerals(developer)) > n })
		if e := w.slack.Ephemerals(developer)[n].Text; !strings.Contains(e, "may not") {
			t.Errorf("%s by an outsider answered %q", action, e)
		}
	}
	if n := len(w.slack.Calls("views.open")); n != views {
		t.Errorf("request access by an outsider opened %d views", n-views)
	}
	if n := len(w.slack.Calls("chat.postMessage")); n != posts {
		t.Errorf("outsiders' clicks posted %d messages: something was filed", n-posts)
	}
	if m, _ := w.slack.Message(alert.Channel, alert.TS); m.Edits != edits || len(w.slack.Thread(alert.Channel, alert.TS)) != 0 {
		t.Errorf("outsiders' clicks changed the alert: %d edits (was %d), thread %d", m.Edits, edits, len(w.slack.Thread(alert.Channel, alert.TS)))
	}
	if _, closed := mk.Closed("4Fbh2K6yWfe"); closed {
		t.Error("an outsider closed the alert in Mackerel")
	}

	// An /alerts silence reason.
	req, _ := w.slack.SlashCommand(t, w.srv.base+"/slack/commands", slack.SlashCommand{
		Command: "/alerts", Text: "silence host:app01 2h " + evil("silence-reason"), UserID: alertsOnCall, ChannelID: alertsChannel,
	})
	if status, got := do(t, req); status != 200 {
		t.Fatalf("/alerts silence: %d %q", status, got)
	}
	req, _ = w.slack.SlashCommand(t, w.srv.base+"/slack/commands", slack.SlashCommand{Command: "/alerts", Text: "list", UserID: alertsOnCall, ChannelID: alertsChannel})
	status, list := do(t, req)
	if status != 200 {
		t.Fatalf("/alerts list: %d %q", status, list)
	}
	var answer struct{ Text string }
	if err := json.Unmarshal([]byte(list), &answer); err != nil {
		t.Fatalf("/alerts list answered %q", list)
	}
	for _, bad := range activeMarkup {
		if strings.Contains(answer.Text, bad) {
			t.Errorf("/alerts list shows %q from a silence reason unescaped: %s", bad, answer.Text)
		}
	}
	if !strings.Contains(answer.Text, escapedEvil("silence-reason")) {
		t.Errorf("/alerts list does not show the silence reason (escaped): %s", answer.Text)
	}
	w.srv.stop()
	checkInert(t, w.slack, "domain-args", "memo", "host-name", "monitor-name")
}
