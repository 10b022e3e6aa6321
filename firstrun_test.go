package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/slackfake"
)

// withoutAWS hides any AWS configuration of the machine running the test,
// as on a fresh laptop: no region, no profile, no credentials files.
func withoutAWS(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// policiesWithout copies the shipped policy set without the named files,
// e.g. the working-hours rule so that a test does not depend on the hour.
func policiesWithout(t *testing.T, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".go") || slices.Contains(skip, e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join("policies", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serveHTTP sends req to the app and returns the answer's body.
func serveHTTP(t *testing.T, a *app, req *http.Request) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", req.URL.Path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// command runs a signed slash command as user and returns the text of
// its immediate answer.
func command(t *testing.T, a *app, fake *slackfake.Fake, user, cmd, text string) string {
	t.Helper()
	req, _ := fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: cmd, Text: text, UserID: user, ChannelID: "C0GENERAL1"})
	var msg slack.Msg
	if body := serveHTTP(t, a, req); json.Unmarshal([]byte(body), &msg) != nil {
		t.Fatalf("%s %s: answer %q", cmd, text, body)
	}
	return msg.Text
}

var requestIDRE = regexp.MustCompile(`r-[0-9a-z]{12}`)

// TestAccessWithoutAWS is the README followed on a fresh laptop: only the
// Slack credentials, no AWS region or credentials. /access takes a
// request, posts it to the approvers, takes the approval, and when it
// comes to granting tells the requester that AWS is not configured and
// how to configure it. /domain, which cannot do anything without EC2,
// says so in the same words.
func TestAccessWithoutAWS(t *testing.T) {
	withoutAWS(t)
	fake := slackfake.New(t)
	fake.AddChannel("C0GENERAL1", "general")
	fake.AddChannel("C0PRODAPPR", "prod-approvals")
	fake.AddUser(slackfake.User{ID: "U0SRE00001", Name: "requester"})
	fake.AddUser(slackfake.User{ID: "U0SRE00002", Name: "approver"})
	fake.AddUserGroup("S0SREGRP01", "U0SRE00002")
	a, logs, _ := testApp(t, fake, map[string]string{"TOKKEN_POLICY_DIR": policiesWithout(t, "hours.cedar")})
	a.start()

	if got := command(t, a, fake, "U0SRE00001", "/access", "prod-readonly 1h trying tokken out"); !strings.Contains(got, "Checking your request") {
		t.Fatalf("/access answered %q", got)
	}
	waitIdle(t, a)
	posted := fake.Messages("C0PRODAPPR")
	if len(posted) != 1 {
		t.Fatalf("approver channel: %+v", posted)
	}
	id := requestIDRE.FindString(messageText(posted[0]))
	if id == "" {
		t.Fatalf("no request id in the approver message: %s", messageText(posted[0]))
	}
	req, _ := fake.Interaction(t, "http://tokken/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "U0SRE00002"},
		Container:      slack.Container{Type: "message", ChannelID: "C0PRODAPPR", MessageTs: posted[0].TS},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: accessui.ActionApprove, Value: id}}},
	})
	serveHTTP(t, a, req)
	waitIdle(t, a)

	r, err := a.accessUI.Service().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != access.StateFailed || len(r.Approvals) != 1 {
		t.Fatalf("request %s is %s with approvals %v, want failed after one approval", id, r.State, r.Approvers())
	}
	var told bool
	for _, m := range fake.DMs("U0SRE00001") {
		told = told || strings.Contains(messageText(m), "set AWS_REGION and AWS credentials")
	}
	if !told {
		t.Errorf("the requester was not told that granting needs AWS; DMs: %+v", fake.DMs("U0SRE00001"))
	}
	if !strings.Contains(logs.String(), "no AWS region: access can be requested and approved") {
		t.Errorf("no start-up line saying what works without AWS:\n%s", logs.String())
	}

	got := command(t, a, fake, "U0SRE00001", "/domain", "join i-0123456789abcdef0")
	if !strings.Contains(got, "set AWS_REGION and AWS credentials") {
		t.Errorf("/domain answered %q", got)
	}
}

// messageText is everything a Slack message shows, as JSON text.
func messageText(m slackfake.Message) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// waitIdle waits until the app's handlers and in-process jobs are done.
func waitIdle(t *testing.T, a *app) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.router.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.local.Idle(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNoEventHandlerWithoutSubscription: the manifests subscribe to no
// Events API event, and tokken answers none: an @-mention delivered
// anyway (an app configured by hand) is acknowledged and posts nothing,
// rather than a handler nobody can reach in a correctly set-up app.
func TestNoEventHandlerWithoutSubscription(t *testing.T) {
	for _, f := range []string{"slackapp/manifest.yaml", "slackapp/manifest.socket-mode.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Settings struct {
				EventSubscriptions *struct {
					BotEvents []string `yaml:"bot_events"`
				} `yaml:"event_subscriptions"`
			} `yaml:"settings"`
		}
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if e := m.Settings.EventSubscriptions; e != nil && len(e.BotEvents) > 0 {
			t.Errorf("%s subscribes to %v: this test assumes none", f, e.BotEvents)
		}
	}

	fake := slackfake.New(t)
	fake.AddChannel("C0GENERAL1", "general")
	a, _, _ := testApp(t, fake, nil)
	a.start()
	body := []byte(`{"type":"event_callback","event_id":"Ev0MENTION1","event_time":1767225600,"team_id":"T0TEAM0001",` +
		`"event":{"type":"app_mention","user":"U0SRE00001","text":"<@U0TOKKEN1> hi","ts":"1767225600.000100","channel":"C0GENERAL1"}}`)
	req := httptest.NewRequest(http.MethodPost, "http://tokken/slack/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	slacksig.SignRequest(req, []byte(fake.SigningSecret()), time.Now(), body)
	rec := httptest.NewRecorder()
	a.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/slack/events: %d %s", rec.Code, rec.Body)
	}
	waitIdle(t, a)
	if msgs := fake.Messages("C0GENERAL1"); len(msgs) != 0 {
		t.Errorf("an event no manifest subscribes to was answered: %+v", msgs)
	}
}

// TestAccessHelpListsRequestableProfiles: `/access help` lists the
// profiles the policies let this user request, with their descriptions
// (escaped), and nothing else; someone who may request nothing is told so.
// The help asks Slack about the user once, break-glass profiles included,
// and a second help within a minute (slackdir.UserTTL) not at all.
func TestAccessHelpListsRequestableProfiles(t *testing.T) {
	withoutAWS(t)
	dir := policiesWithout(t, "hours.cedar")
	path := filepath.Join(dir, "profiles.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const desc = "Administrator in the staging account, except IAM and Organizations."
	if !bytes.Contains(data, []byte(desc)) {
		t.Fatalf("profiles.yaml no longer describes staging-admin as %q", desc)
	}
	data = bytes.Replace(data, []byte(desc), []byte("Staging admin <!channel> & *all*."), 1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fake := slackfake.New(t)
	fake.AddChannel("C0GENERAL1", "general")
	for _, u := range []string{"U0DEV00001", "U0SRE00001", "U0NOBODY01"} {
		fake.AddUser(slackfake.User{ID: u, Name: strings.ToLower(u)})
	}
	a, _, _ := testApp(t, fake, map[string]string{"TOKKEN_POLICY_DIR": dir})

	asked := len(fake.Calls("users.info"))
	dev := command(t, a, fake, "U0DEV00001", "/access", "help")
	if n := len(fake.Calls("users.info")) - asked; n != 1 {
		t.Errorf("one help asked Slack about the user %d times, want once", n)
	}
	if again := command(t, a, fake, "U0DEV00001", "/access", "help"); again != dev {
		t.Errorf("a second help within a minute differs:\n%s", again)
	}
	if n := len(fake.Calls("users.info")) - asked; n != 1 {
		t.Errorf("a second help within a minute asked Slack about the user again (%d calls in all); the listing answers from the directory's cache", n)
	}
	for _, want := range []string{"`/access list`", "*Profiles you may request:*", "• `staging-admin` (no approval needed, up to 8h): Staging admin &lt;!channel&gt; &amp; *all*."} {
		if !strings.Contains(dev, want) {
			t.Errorf("help for a developer does not contain %q:\n%s", want, dev)
		}
	}
	if strings.Contains(dev, "• `prod-") || strings.Contains(dev, "<!channel>") {
		t.Errorf("help for a developer lists a profile they may not request, or an unescaped description:\n%s", dev)
	}

	sre := command(t, a, fake, "U0SRE00001", "/access", "help")
	for _, want := range []string{
		"• `prod-readonly` (1 approval(s), up to 4h): Read-only console and CLI access to the production account.",
		"• `prod-ssm` (1 approval(s), up to 4h): A shell on production instances through SSM Session Manager.",
		"• `staging-admin`",
	} {
		if !strings.Contains(sre, want) {
			t.Errorf("help for an SRE does not contain %q:\n%s", want, sre)
		}
	}

	if nobody := command(t, a, fake, "U0NOBODY01", "/access", "help"); !strings.Contains(nobody, "You may not request any profile yet") || strings.Contains(nobody, "`staging-admin`") {
		t.Errorf("help for someone in no group:\n%s", nobody)
	}
}
