package main

// Release approvals through tokken's real entry points, in-process: the
// CodePipeline approval notification as an SNS event through the Lambda
// dispatcher, signed clicks and the reject modal through the HTTP handler
// (as Slack sends them), jobs on the in-process queue, CodePipeline played
// by awsfake through the real SDK, Slack by slackfake, and the shipped
// policies deciding: release.cedar lets SRE approve any pipeline (two of
// them for prod) and developers approve staging.

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	releaseChannel = "C0RELEASE1" // the shipped pipelines.yaml's approver channel
	sreOne         = "U0SRE00001" // sre by id
	sreTwo         = "U0SRE00002" // sre by e-mail (alice@example.com)
	devOne         = "U0DEV00001" // dev: staging only
	nobody         = "U0NOBODY01"
)

// releaseWorld is tokken with release approvals against the fakes.
type releaseWorld struct {
	t     *testing.T
	a     *app
	logs  *logbuf.Buffer
	slack *slackfake.Fake
	aws   *awsfake.Fake
	// id is the approval id the card's buttons carried, for clicks on a
	// card Slack still shows with buttons after it was decided.
	id string
}

func newReleaseWorld(t *testing.T) *releaseWorld {
	t.Helper()
	f := awsfake.New(t)
	f.Setenv(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	sl := slackfake.New(t)
	sl.AddChannel(releaseChannel, "releases")
	sl.AddUser(slackfake.User{ID: sreOne, Name: "sre1"})
	sl.AddUser(slackfake.User{ID: sreTwo, Name: "alice", Email: "alice@example.com"})
	sl.AddUser(slackfake.User{ID: devOne, Name: "dev"})
	sl.AddUser(slackfake.User{ID: nobody, Name: "nobody"})
	a, logs, _ := testApp(t, sl, nil)
	a.start()
	return &releaseWorld{t: t, a: a, logs: logs, slack: sl, aws: f}
}

// notify delivers CodePipeline's approval notification for token as an SNS
// event through the Lambda dispatcher, then waits until the work is done.
func (w *releaseWorld) notify(pipeline, stage, token, expires, messageID string) {
	w.t.Helper()
	msg := map[string]any{
		"region":      awsfake.Region,
		"consoleLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/" + pipeline,
		"approval": map[string]any{
			"pipelineName": pipeline, "stageName": stage, "actionName": "Approve", "token": token, "expires": expires,
			"externalEntityLink": "https://github.com/example/web/pull/42",
			"approvalReviewLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/" + pipeline + "/" + stage + "/Approve/approve/" + token,
			"customData":         "Check the <!channel> *dashboard* first",
		},
	}
	body, _ := json.Marshal(msg)
	event, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"EventSource": "aws:sns", "EventVersion": "1.0",
		"EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:tokken-releases:sub",
		"Sns": map[string]any{
			"Type": "Notification", "MessageId": messageID, "TopicArn": "arn:aws:sns:us-east-1:123456789012:tokken-releases",
			"Subject": "APPROVAL NEEDED: AWS CodePipeline " + pipeline + " for action Approve", "Message": string(body),
			"Timestamp": time.Now().UTC().Format(time.RFC3339),
		},
	}}})
	if _, err := w.a.dispatcher.Invoke(context.Background(), event); err != nil {
		w.t.Fatalf("SNS event: %v", err)
	}
	waitIdle(w.t, w.a)
}

// card returns the only card in the approver channel.
func (w *releaseWorld) cards() []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.slack.Messages(releaseChannel) {
		if m.ThreadTS == "" && strings.HasPrefix(m.Text, "Release of ") {
			out = append(out, m)
		}
	}
	return out
}

func (w *releaseWorld) card() slackfake.Message {
	w.t.Helper()
	cs := w.cards()
	if len(cs) != 1 {
		w.t.Fatalf("%d cards in %s, want 1:\n%s", len(cs), releaseChannel, w.slack.Dump(10))
	}
	m, _ := w.slack.Message(releaseChannel, cs[0].TS)
	return m
}

// click presses a card button as user and waits for the vote to be handled.
func (w *releaseWorld) click(user, actionID string) {
	w.t.Helper()
	m := w.card()
	value := ""
	for _, b := range m.Blocks.BlockSet {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == actionID {
					value = btn.Value
				}
			}
		}
	}
	if value == "" {
		value = w.id
	}
	if value == "" {
		w.t.Fatalf("the card has no %s button:\n%s", actionID, messageText(m))
	}
	w.id = value
	var ic slack.InteractionCallback
	ic.Type = slack.InteractionTypeBlockActions
	ic.User.ID = user
	ic.Channel.ID = releaseChannel
	ic.Container = slack.Container{Type: "message", ChannelID: releaseChannel, MessageTs: m.TS}
	ic.Message.Timestamp = m.TS
	ic.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionID, BlockID: "actions", Value: value}}
	req, _ := w.slack.Interaction(w.t, "http://tokken/slack/interactions", ic)
	serveHTTP(w.t, w.a, req)
	waitIdle(w.t, w.a)
}

// submitReject submits the reject modal opened for user with reason and
// returns the HTTP answer (errors keep the modal open).
func (w *releaseWorld) submitReject(user, reason string) string {
	w.t.Helper()
	var view slackfake.View
	for _, v := range w.slack.Views() {
		if v.User == user && v.Request.CallbackID == "release:reject_reason" {
			view = v
		}
	}
	if view.ID == "" {
		w.t.Fatalf("no reject modal was opened for %s", user)
	}
	var ic slack.InteractionCallback
	ic.Type = slack.InteractionTypeViewSubmission
	ic.User.ID = user
	ic.View = slack.View{ID: view.ID, CallbackID: view.Request.CallbackID, PrivateMetadata: view.Request.PrivateMetadata,
		State: &slack.ViewState{Values: map[string]map[string]slack.BlockAction{"reason": {"reason_input": {Value: reason}}}}}
	req, _ := w.slack.Interaction(w.t, "http://tokken/slack/interactions", ic)
	body := serveHTTP(w.t, w.a, req)
	waitIdle(w.t, w.a)
	return body
}

func (w *releaseWorld) ephemeral(user, want string) {
	w.t.Helper()
	for _, m := range w.slack.Ephemerals(user) {
		if strings.Contains(m.Text, want) {
			return
		}
	}
	w.t.Errorf("no ephemeral to %s containing %q; got %+v", user, want, w.slack.Ephemerals(user))
}

func (w *releaseWorld) audited(action string) {
	w.t.Helper()
	if !strings.Contains(w.logs.String(), `"audit_action":"`+action+`"`) {
		w.t.Errorf("no %s audit line", action)
	}
}

func cardText(m slackfake.Message) string {
	var b strings.Builder
	for _, bl := range m.Blocks.BlockSet {
		if s, ok := bl.(*slack.SectionBlock); ok && s.Text != nil {
			b.WriteString(s.Text.Text + "\n")
		}
	}
	return b.String()
}

func TestReleaseQuorumOfDistinctApprovers(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	exID, token := cp.WaitForApproval("web-prod", "Release", "Approve", "StartPipelineExecution", "arn:aws:iam::123456789012:user/ci",
		awsfake.Revision{Name: "Source", RevisionID: "0123abcdef99", Summary: "Fix <b>checkout</b> & <!here>", URL: "https://github.com/example/web/commit/0123abcdef99"})
	expires := time.Now().Add(7 * 24 * time.Hour).UTC().Format("2006-01-02T15:04Z")

	// SNS delivers at least once: two deliveries, one card.
	w.notify("web-prod", "Release", token, expires, "m-1")
	w.notify("web-prod", "Release", token, expires, "m-1")
	text := cardText(w.card())
	for _, want := range []string{
		"`web-prod`", "`Release`", "`prod`", "Waiting for approval",
		"Check the &lt;!channel&gt; *dashboard* first",                                // custom data, escaped
		"Fix &lt;b&gt;checkout&lt;/b&gt; &amp; &lt;!here&gt;",                         // commit message, escaped
		"<https://github.com/example/web/commit/0123abcdef99|0123abcdef99>",           // revision link
		"<https://github.com/example/web/pull/42|the change>",                         // externalEntityLink
		"review in the console", exID, "StartPipelineExecution", "*Expires:* <!date^", // execution, expiry
		"0 of 1 distinct approvers",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "<!channel>") || strings.Contains(text, "<!here>") {
		t.Errorf("pipeline text reached the card unescaped:\n%s", text)
	}

	// Not allowed: developers approve staging only; strangers nothing.
	w.click(devOne, "release:approve")
	w.ephemeral(devOne, "You may not approve or reject releases of web-prod")
	w.click(nobody, "release:approve")
	w.ephemeral(nobody, "You may not")
	w.audited("release.refused")

	// The first SRE: prod's rule asks for two distinct approvers.
	w.click(sreOne, "release:approve")
	w.ephemeral(sreOne, "1 of 2 distinct approvers")
	if text := cardText(w.card()); !strings.Contains(text, "1 of 2 distinct approvers") || !strings.Contains(text, "Approved by <@"+sreOne+">") {
		t.Errorf("card after one approval:\n%s", text)
	}
	w.click(sreOne, "release:approve")
	w.ephemeral(sreOne, "already approved")
	if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 0 {
		t.Fatalf("PutApprovalResult called before the quorum: %d", n)
	}

	// The second SRE (in the group by e-mail) completes the quorum.
	w.click(sreTwo, "release:approve")
	res, ok := cp.Result("web-prod", token)
	if !ok || res.Status != "Approved" || !strings.Contains(res.Summary, sreOne) || !strings.Contains(res.Summary, sreTwo) || len(res.Summary) > 512 {
		t.Fatalf("PutApprovalResult = %+v, %v; want Approved naming both approvers", res, ok)
	}
	m := w.card()
	if text := cardText(m); !strings.Contains(text, "Approved by <@"+sreOne+">, <@"+sreTwo+">") {
		t.Errorf("card not updated to approved:\n%s", text)
	}
	for _, b := range m.Blocks.BlockSet {
		if _, ok := b.(*slack.ActionBlock); ok {
			t.Error("a decided card still has buttons")
		}
	}
	for _, a := range []string{"release.requested", "release.approval", "release.approved"} {
		w.audited(a)
	}
	// A late click (a card still showing its buttons somewhere) is told,
	// and nothing is sent again.
	w.click(sreOne, "release:reject")
	w.submitReject(sreOne, "too late")
	w.ephemeral(sreOne, "already approved")
	if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 1 {
		t.Errorf("PutApprovalResult called %d times, want 1", n)
	}
}

func TestReleaseRejectAsksForAReason(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
	w.notify("web-staging", "Deploy", token, "", "m-2")
	if text := cardText(w.card()); !strings.Contains(text, "`staging`") || strings.Contains(text, "Expires") {
		t.Errorf("staging card:\n%s", text)
	}

	w.click(devOne, "release:reject")
	if body := w.submitReject(devOne, "   "); !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, "Say why") {
		t.Errorf("a blank reason was accepted: %s", body)
	}
	if _, ok := cp.Result("web-staging", token); ok {
		t.Fatal("a rejection without a reason reached CodePipeline")
	}
	w.submitReject(devOne, "Breaks <login> & *signup*")
	res, ok := cp.Result("web-staging", token)
	if !ok || res.Status != "Rejected" || !strings.Contains(res.Summary, devOne) || !strings.Contains(res.Summary, "Breaks <login> & *signup*") {
		t.Fatalf("PutApprovalResult = %+v, %v; want Rejected with the reason and who", res, ok)
	}
	text := cardText(w.card())
	if !strings.Contains(text, "Rejected by <@"+devOne+">: Breaks &lt;login&gt; &amp; *signup*") {
		t.Errorf("card not updated to rejected:\n%s", text)
	}
	w.audited("release.rejection")
	w.audited("release.rejected")
	if !strings.Contains(w.logs.String(), `"reason":"Breaks <login> & *signup*"`) {
		t.Error("the audit line lacks the rejection reason")
	}
}

func TestReleaseDecidedInTheConsole(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
	w.notify("web-staging", "Deploy", token, "", "m-3")
	cp.Decide("web-staging", token, "Approved")
	w.click(devOne, "release:approve")
	if text := cardText(w.card()); !strings.Contains(text, "Already decided in the console") {
		t.Errorf("card after ApprovalAlreadyCompletedException:\n%s", text)
	}
	w.audited("release.decided_elsewhere")
	// Clicking again is answered, not sent.
	w.click(devOne, "release:approve")
	w.ephemeral(devOne, "decided outside Slack")
	if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 1 {
		t.Errorf("PutApprovalResult called %d times, want 1", n)
	}
}

// TestReleaseDecisionWhoseAnswerWasLost: CodePipeline takes tokken's
// decision but its answer is lost, so the SDK's retry meets
// ApprovalAlreadyCompletedException. The decision was recorded before it
// was sent, and CodePipeline shows tokken's own summary on the action:
// the card says approved by the Slack approver, not decided in the
// console.
func TestReleaseDecisionWhoseAnswerWasLost(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
	w.notify("web-staging", "Deploy", token, "", "m-lost")
	w.aws.Fail(awsfake.CodePipelineService, "PutApprovalResult", 1, awsfake.LostResponse)
	w.click(devOne, "release:approve")

	if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 2 {
		t.Fatalf("PutApprovalResult called %d times, want the lost one and the SDK's retry", n)
	}
	if res, ok := cp.Result("web-staging", token); !ok || res.Status != "Approved" || !strings.Contains(res.Summary, devOne) {
		t.Fatalf("PutApprovalResult = %+v, %v", res, ok)
	}
	text := cardText(w.card())
	if !strings.Contains(text, "*State:* Approved by <@"+devOne+">") {
		t.Errorf("card after the lost answer:\n%s", text)
	}
	w.audited("release.approved")
	if !strings.Contains(w.logs.String(), `"confirmed":"CodePipeline shows tokken's decision"`) {
		t.Error("the approval audit line does not say CodePipeline confirmed tokken's decision")
	}
	if strings.Contains(w.logs.String(), `"audit_action":"release.decided_elsewhere"`) {
		t.Error("tokken's own decision was audited as decided elsewhere")
	}
}

func TestReleaseTokenNoLongerValid(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
	w.notify("web-staging", "Deploy", token, time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04Z"), "m-4")
	cp.Expire("web-staging", token) // CodePipeline dropped the token before tokken's expiry
	w.click(devOne, "release:approve")
	if text := cardText(w.card()); !strings.Contains(text, "No longer current") {
		t.Errorf("card after InvalidApprovalTokenException:\n%s", text)
	}
	w.audited("release.token_invalid")
}

func TestReleaseExpired(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
	// The notification arrives after its expiry (a stuck subscription):
	// the expiry timer fires at once and the card says so.
	w.notify("web-staging", "Deploy", token, time.Now().Add(-time.Minute).UTC().Format("2006-01-02T15:04Z"), "m-5")
	w.slack.WaitFor(t, 20*time.Second, func(*slackfake.Fake) bool {
		cs := w.cards()
		if len(cs) != 1 {
			return false
		}
		m, _ := w.slack.Message(releaseChannel, cs[0].TS)
		return strings.Contains(cardText(m), "Expired")
	})
	w.audited("release.expired")
	w.id = release.ApprovalID("web-staging", "Deploy", "Approve", token) // a card still showing its buttons
	w.click(devOne, "release:approve")
	w.ephemeral(devOne, "expired")
	if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 0 {
		t.Errorf("an expired approval was sent to CodePipeline (%d calls)", n)
	}
}

func TestReleaseUnconfiguredPipelineAndOtherSNS(t *testing.T) {
	w := newReleaseWorld(t)
	_, token := w.aws.CodePipeline().WaitForApproval("infra-prod", "Deploy", "Approve", "Webhook", "push")
	w.notify("infra-prod", "Deploy", token, "", "m-6")
	if n := len(w.cards()); n != 0 {
		t.Errorf("%d cards for a pipeline pipelines.yaml does not name", n)
	}
	if !strings.Contains(w.logs.String(), "pipelines.yaml does not name") {
		t.Error("the dropped notification was not logged")
	}

	// A CloudWatch alarm on SNS still goes to alerts, not to releases.
	alarm, err := os.ReadFile("testdata/events/sns-alarm-sandbox.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.a.dispatcher.Invoke(context.Background(), alarm); err != nil {
		t.Fatalf("alarm: %v", err)
	}
	waitIdle(t, w.a)
	if strings.Contains(w.logs.String(), "CodePipeline approval notification dropped") || !strings.Contains(w.logs.String(), `"feature":"alerts","alert":"cloudwatch:arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:sandbox-cpu-high"`) {
		t.Errorf("the alarm did not reach alerts:\n%s", w.logs.String())
	}
}

func TestReleaseStartedInSlackIsApprovedBySomeoneElse(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	cp.AddPipeline("web-staging")
	cp.AddPipeline("infra-prod")

	if got := command(t, w.a, w.slack, devOne, "/release", "web-*"); !strings.Contains(got, "is not a pipeline name") {
		t.Errorf("/release web-*: %q", got)
	}
	if got := command(t, w.a, w.slack, devOne, "/release", "web-staging"); !strings.Contains(got, "Starting web-staging") {
		t.Fatalf("/release web-staging: %q", got)
	}
	waitIdle(t, w.a)
	execs := cp.Executions("web-staging")
	if len(execs) != 1 {
		t.Fatalf("executions of web-staging: %v", execs)
	}
	w.audited("release.started")
	// Refusals: a pipeline tokken does not take, a user no rule lets start.
	for user, want := range map[string]string{devOne: "pipelines.yaml does not name it), so it does not start it either. Pipelines it takes: web-prod, *-staging.", nobody: "You may not start web-staging"} {
		pipeline := map[string]string{devOne: "infra-prod", nobody: "web-staging"}[user]
		req, cmd := w.slack.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/release", Text: pipeline, UserID: user, ChannelID: releaseChannel})
		serveHTTP(t, w.a, req)
		waitIdle(t, w.a)
		posts := w.slack.ResponsePosts(cmd.ResponseURL[strings.LastIndex(cmd.ResponseURL, "/")+1:])
		if len(posts) != 1 || !strings.Contains(posts[0].Text, want) {
			t.Errorf("/release %s by %s answered %+v, want %q", pipeline, user, posts, want)
		}
	}
	if n := len(cp.Executions("infra-prod")) + len(cp.Executions("web-staging")); n != 1 {
		t.Errorf("%d executions after two refused starts, want 1", n)
	}

	token := cp.AwaitApproval("web-staging", execs[0], "Deploy", "Approve")
	w.notify("web-staging", "Deploy", token, "", "m-7")
	if text := cardText(w.card()); !strings.Contains(text, "Started in Slack by:* <@"+devOne+">") {
		t.Errorf("the card does not say who started the release:\n%s", text)
	}
	w.click(devOne, "release:approve")
	w.ephemeral(devOne, "You started this release; someone else must approve it.")
	if _, ok := cp.Result("web-staging", token); ok {
		t.Fatal("the starter's own approval reached CodePipeline")
	}
	w.click(sreOne, "release:approve")
	if res, ok := cp.Result("web-staging", token); !ok || res.Status != "Approved" || strings.Contains(res.Summary, devOne) {
		t.Fatalf("PutApprovalResult = %+v, %v; want approved by the SRE alone", res, ok)
	}
}

// TestReleaseGivenUpVote: a vote job the queue gives up while the decision
// was being sent fails the approval, and the card says to decide in the
// console.
func TestReleaseGivenUpVote(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
	w.notify("web-staging", "Deploy", token, "", "m-8")
	id := release.ApprovalID("web-staging", "Deploy", "Approve", token)
	// The vote that reached the quorum, its PutApprovalResult never accepted.
	if _, err := (bot.Table[release.Approval]{Store: w.a.store, Kind: release.KindApproval}).Update(context.Background(), id, func(a *release.Approval) error {
		a.State, a.Approvals = release.StateDeciding, []release.Vote{{By: devOne, At: time.Now()}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	job, _ := bot.NewJob("rv-1", release.KindVote, release.VoteRequest{ID: id, By: bot.Principal{ID: devOne}, Approve: true})
	if handled, err := w.a.jobs.GiveUp(context.Background(), job, "receive count 5"); !handled || err != nil {
		t.Fatalf("GiveUp = %v, %v", handled, err)
	}
	if text := cardText(w.card()); !strings.Contains(text, "decide in the CodePipeline console") {
		t.Errorf("card after a given-up vote:\n%s", text)
	}
	w.audited("release.failed")
}
