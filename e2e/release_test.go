package e2e

// Release approvals end to end: the tokken binary with an embedded store,
// CodePipeline played by awsfake through tokken's real SDK client, Slack by
// slackfake. Approval notifications arrive as SNS events through `tokken
// invoke` (the sample in testdata/events, pointed at a live token), the
// /release command and the approvers' clicks as signed requests into
// `tokken serve`. The shipped policies decide: release.cedar asks two SRE
// for prod (U0SRE00001, and alice by e-mail), lets developers approve
// staging, and lets developers and SRE start any pipeline.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	releaseChannel = "C0RELEASE1" // the shipped pipelines.yaml's approver channel
	alice          = "U0SRE00002" // sre by e-mail
)

// releaseWorld is tokken with release approvals against the fakes, over
// one store directory: `tokken invoke` for the SNS notifications and
// `tokken serve` for Slack, never both at once (they share the store).
type releaseWorld struct {
	t     *testing.T
	slack *slackfake.Fake
	aws   *awsfake.Fake
	dir   string
	env   []string
	srv   *server // nil while tokken serve is not running
}

func newReleaseWorld(t *testing.T) *releaseWorld {
	t.Helper()
	w := &releaseWorld{t: t, slack: slackfake.New(t), aws: awsfake.New(t), dir: t.TempDir()}
	w.slack.AddChannel(releaseChannel, "releases")
	w.slack.AddUser(slackfake.User{ID: sre, Name: "sre"})
	w.slack.AddUser(slackfake.User{ID: alice, Name: "alice", Email: "alice@example.com"})
	w.slack.AddUser(slackfake.User{ID: devUser, Name: "dev"})
	w.slack.AddUser(slackfake.User{ID: outsider, Name: "outsider"})
	w.env = tokkenEnv(w.slack, w.dir)
	for k, v := range w.aws.Env() {
		w.env = append(w.env, k+"="+v)
	}
	return w
}

// invoke delivers CodePipeline's approval notification for token of
// pipeline's stage through `tokken invoke` and returns its log.
func (w *releaseWorld) invoke(pipeline, stage, token string) string {
	w.t.Helper()
	if w.srv != nil {
		w.t.Fatal("invoke while tokken serve holds the store")
	}
	sample, err := os.ReadFile(filepath.Join("..", "testdata", "events", "sns-codepipeline-approval.json"))
	if err != nil {
		w.t.Fatal(err)
	}
	event := strings.NewReplacer(
		"1a2b3c4d-573f-4ea7-a67e-0123456789ab", token,
		"2030-03-10T10:00Z", time.Now().Add(24*time.Hour).UTC().Format("2006-01-02T15:04Z"),
		"web-prod", pipeline,
		`\"stageName\": \"Release\"`, `\"stageName\": \"`+stage+`\"`,
		"/Release/Approve/", "/"+stage+"/Approve/",
	).Replace(string(sample))
	path := filepath.Join(w.t.TempDir(), "event.json")
	if err := os.WriteFile(path, []byte(event), 0o600); err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "invoke", path)
	cmd.Dir, cmd.Env = w.dir, w.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		w.t.Fatalf("tokken invoke: %v\n%s", err, stderr.String())
	}
	return stderr.String()
}

// serve starts tokken serve over the world's store.
func (w *releaseWorld) serve() {
	w.t.Helper()
	w.srv = startServeIn(w.t, w.dir, w.env)
}

// stop stops tokken serve gracefully.
func (w *releaseWorld) stop() {
	w.t.Helper()
	w.srv.stop()
	w.srv = nil
}

// crash kills tokken serve with SIGKILL: no shutdown, no drain.
func (w *releaseWorld) crash() {
	w.t.Helper()
	if err := w.srv.cmd.Process.Kill(); err != nil {
		w.t.Fatal(err)
	}
	<-w.srv.done
	w.srv = nil
}

// cards returns the approval cards of pipeline in the approver channel.
func (w *releaseWorld) cards(pipeline string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range w.slack.Messages(releaseChannel) {
		if strings.HasPrefix(m.Text, "Release of "+pipeline) {
			out = append(out, m)
		}
	}
	return out
}

// card returns the one card of pipeline as Slack shows it now.
func (w *releaseWorld) card(pipeline string) slackfake.Message {
	w.t.Helper()
	cs := w.cards(pipeline)
	if len(cs) != 1 {
		w.t.Fatalf("%d cards of %s, want 1:\n%s", len(cs), pipeline, w.slack.Dump(10))
	}
	m, _ := w.slack.Message(releaseChannel, cs[0].TS)
	return m
}

// waitCard waits until the card of pipeline contains want (in its blocks'
// JSON) and returns that JSON.
func (w *releaseWorld) waitCard(pipeline, want string) string {
	w.t.Helper()
	var last string
	w.slack.WaitFor(w.t, waitLong, func(*slackfake.Fake) bool {
		cs := w.cards(pipeline)
		if len(cs) != 1 {
			return false
		}
		m, _ := w.slack.Message(releaseChannel, cs[0].TS)
		last = blocksJSON(w.t, m)
		return strings.Contains(last, want)
	})
	return last
}

// click presses Approve on the card of pipeline as user.
func (w *releaseWorld) click(pipeline, user string) {
	w.t.Helper()
	m := w.card(pipeline)
	value := ""
	for _, b := range m.Blocks.BlockSet {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == "release:approve" {
					value = btn.Value
				}
			}
		}
	}
	if value == "" {
		w.t.Fatalf("the card has no Approve button: %s", blocksJSON(w.t, m))
	}
	var ic slack.InteractionCallback
	ic.Type = slack.InteractionTypeBlockActions
	ic.User.ID = user
	ic.Channel.ID = releaseChannel
	ic.Container = slack.Container{Type: "message", ChannelID: releaseChannel, MessageTs: m.TS}
	ic.Message.Timestamp = m.TS
	ic.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: "release:approve", BlockID: "actions", Value: value}}
	req, _ := w.slack.Interaction(w.t, w.srv.base+"/slack/interactions", ic)
	if status, body := do(w.t, req); status != 200 {
		w.t.Fatalf("click: %d %q", status, body)
	}
}

// release runs /release text as user and returns the immediate answer
// and the one that follows on the command's response_url.
func (w *releaseWorld) release(user, text string) (now, later string) {
	w.t.Helper()
	req, cmd := w.slack.SlashCommand(w.t, w.srv.base+"/slack/commands", slack.SlashCommand{Command: "/release", Text: text, UserID: user, ChannelID: releaseChannel})
	status, body := do(w.t, req)
	if status != 200 {
		w.t.Fatalf("/release %s: %d %q", text, status, body)
	}
	rid := cmd.ResponseURL[strings.LastIndex(cmd.ResponseURL, "/")+1:]
	w.slack.WaitFor(w.t, waitLong, func(f *slackfake.Fake) bool { return len(f.ResponsePosts(rid)) > 0 })
	return body, w.slack.ResponsePosts(rid)[0].Text
}

// waitLog waits until tokken serve has logged a line containing all of want.
func (w *releaseWorld) waitLog(want ...string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var line string
	err := w.srv.logs.Wait(ctx, func(written string) bool {
		for _, l := range strings.Split(written, "\n") {
			if containsAll(l, want...) {
				line = l
				return true
			}
		}
		return false
	})
	if err != nil {
		w.t.Fatalf("no log line with %q: %v\n%s", want, err, w.srv.Logs())
	}
	return line
}

func TestReleaseApprovalViaInvokeAndClicks(t *testing.T) {
	w := newReleaseWorld(t)
	_, token := w.aws.CodePipeline().WaitForApproval("web-prod", "Release", "Approve", "StartPipelineExecution", "arn:aws:iam::123456789012:user/ci",
		awsfake.Revision{Name: "Source", RevisionID: "9f8e7d6c5b4a", Summary: "Release 1.4: faster checkout", URL: "https://github.com/example/web/commit/9f8e7d6c5b4a"})

	logs := w.invoke("web-prod", "Release", token)
	logs += w.invoke("web-prod", "Release", token) // SNS delivers at least once
	if n := len(w.cards("web-prod")); n != 1 {
		t.Fatalf("%d cards after two deliveries, want 1:\n%s", n, logs)
	}
	if !strings.Contains(blocksJSON(t, w.card("web-prod")), "Release 1.4: faster checkout") {
		t.Errorf("the card lacks the commit message: %s", blocksJSON(t, w.card("web-prod")))
	}
	if !strings.Contains(logs, `"audit_action":"release.requested"`) {
		t.Errorf("intake not audited:\n%s", logs)
	}

	w.serve()
	w.click("web-prod", sre)
	w.waitCard("web-prod", "1 of 2 distinct approvers")
	w.click("web-prod", alice)
	w.waitCard("web-prod", "Approved by \\u003c@U0SRE00001\\u003e, \\u003c@U0SRE00002\\u003e")
	res, ok := w.aws.CodePipeline().Result("web-prod", token)
	if !ok || res.Status != "Approved" || !strings.Contains(res.Summary, "U0SRE00001, U0SRE00002") {
		t.Fatalf("PutApprovalResult = %+v, %v", res, ok)
	}
	w.waitLog(`"audit_action":"release.approved"`)
}

// TestReleaseStartedBySlashCommand: /release into the real binary. A
// developer starts web-staging (StartPipelineExecution, as the worker);
// when that execution's approval arrives over SNS, the card names the
// starter, whose own Approve is refused, and an SRE's approval decides it.
// Someone no rule lets start is told so privately, and a pipeline
// pipelines.yaml does not name is refused with the ones it does; neither
// starts anything.
func TestReleaseStartedBySlashCommand(t *testing.T) {
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	cp.AddPipeline("web-staging")
	cp.AddPipeline("infra-prod")
	w.serve()

	now, later := w.release(devUser, "web-staging")
	if !strings.Contains(now, `"response_type":"ephemeral"`) || !strings.Contains(now, "Starting web-staging") {
		t.Errorf("/release web-staging answered %q", now)
	}
	execs := cp.Executions("web-staging")
	if len(execs) != 1 || !strings.Contains(later, "Started web-staging (execution "+execs[0]+")") {
		t.Fatalf("/release web-staging: executions %v, answer %q", execs, later)
	}
	if calls := w.aws.Calls(awsfake.CodePipelineService, "StartPipelineExecution"); len(calls) != 1 || calls[0].Caller != awsfake.CallerARN {
		t.Errorf("StartPipelineExecution calls %+v, want one by the worker", calls)
	}
	w.waitLog(`"audit_action":"release.started"`, devUser)

	_, refused := w.release(outsider, "web-staging")
	if !strings.Contains(refused, "You may not start web-staging") {
		t.Errorf("/release by a user no rule lets start answered %q", refused)
	}
	_, unknown := w.release(devUser, "infra-prod")
	if !strings.Contains(unknown, "pipelines.yaml does not name it") || !strings.Contains(unknown, "Pipelines it takes: web-prod, *-staging.") {
		t.Errorf("/release of a pipeline tokken does not take answered %q", unknown)
	}
	if n := len(cp.Executions("web-staging")) + len(cp.Executions("infra-prod")); n != 1 {
		t.Errorf("%d executions after two refused starts, want 1", n)
	}

	// The started execution reaches its approval; the notification comes
	// over SNS (tokken invoke, which needs the store serve holds).
	w.stop()
	token := cp.AwaitApproval("web-staging", execs[0], "Deploy", "Approve")
	w.invoke("web-staging", "Deploy", token)
	if j := blocksJSON(t, w.card("web-staging")); !strings.Contains(j, "Started in Slack by:* \\u003c@"+devUser+"\\u003e") {
		t.Errorf("the card does not name who started the release: %s", j)
	}
	w.serve()
	w.click("web-staging", devUser)
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.Ephemerals(devUser) {
			if strings.Contains(m.Text, "You started this release; someone else must approve it.") {
				return true
			}
		}
		return false
	})
	w.waitLog(`"audit_action":"release.refused"`, "started the release")
	if _, ok := cp.Result("web-staging", token); ok {
		t.Fatal("the starter's own approval reached CodePipeline")
	}
	w.click("web-staging", sre)
	w.waitCard("web-staging", "*State:* Approved by \\u003c@"+sre+"\\u003e")
	res, ok := cp.Result("web-staging", token)
	if !ok || res.Status != "Approved" || !strings.Contains(res.Summary, sre) || strings.Contains(res.Summary, devUser) {
		t.Fatalf("PutApprovalResult = %+v, %v; want approved by the SRE alone", res, ok)
	}
}

// TestReleaseCrashAfterDecisionSent kills tokken serve after CodePipeline
// took its decision (the answer held back so the kill lands in between)
// and before tokken recorded it. The restarted tokken retries the vote,
// meets ApprovalAlreadyCompletedException and, since it recorded the
// decision before sending it, concludes it as its own: the card says
// approved by the Slack approver, never "decided in the console". With
// the approval still shown by CodePipeline the audit says confirmed; when
// a newer execution has replaced it on the stage, tokken's earlier
// recorded attempt is taken as the decision, audited as unconfirmed.
func TestReleaseCrashAfterDecisionSent(t *testing.T) {
	for name, tc := range map[string]struct {
		replaced  bool
		confirmed string
	}{
		"confirmed by CodePipeline":      {confirmed: `"confirmed":"CodePipeline shows tokken's decision"`},
		"approval replaced on the stage": {replaced: true, confirmed: `"confirmed":"unconfirmed: an earlier attempt of tokken's`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newReleaseWorld(t)
			cp := w.aws.CodePipeline()
			_, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "push")
			w.invoke("web-staging", "Deploy", token)
			w.serve()

			w.aws.SetResponseLatency(awsfake.CodePipelineService, "PutApprovalResult", 10*time.Minute)
			w.click("web-staging", devUser)
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := w.aws.WaitFor(ctx, func() bool { _, ok := cp.Result("web-staging", token); return ok }); err != nil {
				t.Fatalf("the decision never reached CodePipeline: %v", err)
			}
			w.crash()
			w.aws.SetResponseLatency(awsfake.CodePipelineService, "PutApprovalResult", 0)
			if tc.replaced {
				cp.WaitForApproval("web-staging", "Deploy", "Approve", "Webhook", "a newer push")
			}
			w.serve()

			w.waitCard("web-staging", "*State:* Approved by \\u003c@"+devUser+"\\u003e")
			line := w.waitLog(`"audit_action":"release.approved"`)
			if !strings.Contains(line, tc.confirmed) {
				t.Errorf("approval audit line %s, want %s", line, tc.confirmed)
			}
			if strings.Contains(w.srv.Logs(), "release.decided_elsewhere") {
				t.Error("tokken's own decision was taken for one made in the console")
			}
			if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 2 {
				t.Errorf("PutApprovalResult called %d times, want the one cut short by the crash and the retry", n)
			}
			if res, _ := cp.Result("web-staging", token); res.Status != "Approved" || !strings.Contains(res.Summary, devUser) {
				t.Errorf("CodePipeline holds %+v", res)
			}
		})
	}
}

// storeDo runs fn on the world's store while tokken serve is stopped, as
// someone who may write the table (the ingress) could.
func (w *releaseWorld) storeDo(fn func(bot.Store)) {
	w.t.Helper()
	if w.srv != nil {
		w.t.Fatal("store opened while tokken serve holds it")
	}
	store, err := boltstore.Open(filepath.Join(w.dir, "tokken.db"))
	if err != nil {
		w.t.Fatal(err)
	}
	fn(store)
	if err := store.Close(); err != nil {
		w.t.Fatal(err)
	}
}

// TestReleaseForgedQuorumRefused: an approval item rewritten in the store
// (one SRE's approval, "required: 1", already deciding, with the summary
// that approval makes) for web-prod, which pipelines.yaml says needs two.
// The SRE's click retries the decision; the worker counts again, refuses
// to send it, never calls PutApprovalResult, and the card says to decide
// in the console.
func TestReleaseForgedQuorumRefused(t *testing.T) {
	t.Parallel()
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	_, token := cp.WaitForApproval("web-prod", "Release", "Approve", "Webhook", "push")
	w.invoke("web-prod", "Release", token)
	w.storeDo(func(store bot.Store) {
		id := release.ApprovalID("web-prod", "Release", "Approve", token)
		_, err := bot.Table[release.Approval]{Store: store, Kind: release.KindApproval}.Update(context.Background(), id, func(a *release.Approval) error {
			a.Approvals = []release.Vote{{By: sre, At: time.Now()}}
			a.Required, a.State = 1, release.StateDeciding
			a.Sending = &release.Sending{Approved: true, Summary: release.Summary(*a)}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	w.serve()
	w.click("web-prod", sre)
	line := w.waitLog(`"audit_action":"release.refused"`)
	if !strings.Contains(line, "1 of the 2 distinct approvers needed count") {
		t.Errorf("refusal audit line %s", line)
	}
	w.waitCard("web-prod", "tokken refused to send this decision")
	if n := len(w.aws.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 0 {
		t.Errorf("PutApprovalResult called %d times for a forged quorum", n)
	}
	if _, ok := cp.Result("web-prod", token); ok {
		t.Error("the forged quorum reached CodePipeline")
	}
}

// TestReleaseStarterRecordedLateNeverApproves: the approval notification
// of an execution arrives before the record of who started it with
// /release (written here straight into the store, as the start job does
// after StartPipelineExecution answers). The starter's click is refused
// all the same: the worker looks the starter up again.
func TestReleaseStarterRecordedLateNeverApproves(t *testing.T) {
	t.Parallel()
	w := newReleaseWorld(t)
	cp := w.aws.CodePipeline()
	exec, token := cp.WaitForApproval("web-staging", "Deploy", "Approve", "StartPipelineExecution", "arn:aws:iam::123456789012:role/tokken-worker")
	w.invoke("web-staging", "Deploy", token)
	w.storeDo(func(store bot.Store) {
		err := bot.Table[release.Started]{Store: store, Kind: release.KindStarted}.Create(context.Background(),
			release.StartKey("web-staging", exec), release.Started{By: devUser, At: time.Now()}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	})
	w.serve()
	w.click("web-staging", devUser)
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.Ephemerals(devUser) {
			if strings.Contains(m.Text, "You started this release; someone else must approve it.") {
				return true
			}
		}
		return false
	})
	if _, ok := cp.Result("web-staging", token); ok {
		t.Fatal("the starter's own approval reached CodePipeline")
	}
}
