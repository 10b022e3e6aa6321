package e2e

// Release approvals end to end: the tokken binary with an embedded store,
// CodePipeline played by awsfake through tokken's real SDK client, Slack by
// slackfake. The approval notification arrives as an SNS event through
// `tokken invoke` (the sample in testdata/events, pointed at a live token),
// twice, as SNS may deliver it; the approvers click on the card through
// signed requests into `tokken serve`. The shipped policies decide:
// release.cedar asks two SRE for prod (U0SRE00001, and alice by e-mail).

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

	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

const releaseChannel = "C0RELEASE1" // the shipped pipelines.yaml's approver channel

func TestReleaseApprovalViaInvokeAndClicks(t *testing.T) {
	sl, fake := slackfake.New(t), awsfake.New(t)
	sl.AddChannel(releaseChannel, "releases")
	sl.AddUser(slackfake.User{ID: sre, Name: "sre"})
	sl.AddUser(slackfake.User{ID: "U0SRE00002", Name: "alice", Email: "alice@example.com"})
	dir := t.TempDir()
	env := tokkenEnv(sl, dir)
	for k, v := range fake.Env() {
		env = append(env, k+"="+v)
	}
	_, token := fake.CodePipeline().WaitForApproval("web-prod", "Release", "Approve", "StartPipelineExecution", "arn:aws:iam::123456789012:user/ci",
		awsfake.Revision{Name: "Source", RevisionID: "9f8e7d6c5b4a", Summary: "Release 1.4: faster checkout", URL: "https://github.com/example/web/commit/9f8e7d6c5b4a"})

	sample, err := os.ReadFile(filepath.Join("..", "testdata", "events", "sns-codepipeline-approval.json"))
	if err != nil {
		t.Fatal(err)
	}
	event := strings.ReplaceAll(string(sample), "1a2b3c4d-573f-4ea7-a67e-0123456789ab", token)
	event = strings.ReplaceAll(event, "2030-03-10T10:00Z", time.Now().Add(24*time.Hour).UTC().Format("2006-01-02T15:04Z"))
	path := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(path, []byte(event), 0o600); err != nil {
		t.Fatal(err)
	}
	invoke := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "invoke", path)
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("tokken invoke: %v\n%s", err, stderr.String())
		}
		return stderr.String()
	}
	logs := invoke()
	logs += invoke() // SNS delivers at least once
	var cards []slackfake.Message
	for _, m := range sl.Messages(releaseChannel) {
		if strings.HasPrefix(m.Text, "Release of web-prod") {
			cards = append(cards, m)
		}
	}
	if len(cards) != 1 {
		t.Fatalf("%d cards after two deliveries, want 1:\n%s", len(cards), logs)
	}
	if !strings.Contains(blocksJSON(t, cards[0]), "Release 1.4: faster checkout") {
		t.Errorf("the card lacks the commit message: %s", blocksJSON(t, cards[0]))
	}
	if !strings.Contains(logs, `"audit_action":"release.requested"`) {
		t.Errorf("intake not audited:\n%s", logs)
	}

	srv := startServeIn(t, dir, env)
	click := func(user string) {
		t.Helper()
		m, _ := sl.Message(releaseChannel, cards[0].TS)
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
			t.Fatalf("the card has no Approve button: %s", blocksJSON(t, m))
		}
		var ic slack.InteractionCallback
		ic.Type = slack.InteractionTypeBlockActions
		ic.User.ID = user
		ic.Channel.ID = releaseChannel
		ic.Container = slack.Container{Type: "message", ChannelID: releaseChannel, MessageTs: m.TS}
		ic.Message.Timestamp = m.TS
		ic.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: "release:approve", BlockID: "actions", Value: value}}
		req, _ := sl.Interaction(t, srv.base+"/slack/interactions", ic)
		if status, body := do(t, req); status != 200 {
			t.Fatalf("click: %d %q", status, body)
		}
	}
	click(sre)
	sl.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		m, _ := f.Message(releaseChannel, cards[0].TS)
		return strings.Contains(blocksJSON(t, m), "1 of 2 distinct approvers")
	})
	click("U0SRE00002")
	sl.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		m, _ := f.Message(releaseChannel, cards[0].TS)
		return strings.Contains(blocksJSON(t, m), "Approved by \\u003c@U0SRE00001\\u003e, \\u003c@U0SRE00002\\u003e")
	})
	res, ok := fake.CodePipeline().Result("web-prod", token)
	if !ok || res.Status != "Approved" || !strings.Contains(res.Summary, "U0SRE00001, U0SRE00002") {
		t.Fatalf("PutApprovalResult = %+v, %v", res, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := srv.logs.Wait(ctx, func(l string) bool { return strings.Contains(l, `"audit_action":"release.approved"`) }); err != nil {
		t.Errorf("the decision was not audited: %v", err)
	}
}
