package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/alertui"
	"github.com/tokken/tokken/testkit/mackerelfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// The alert scenarios run the tokken binary with the repository's
// policies and routes (policies/routes.yaml: unmatched alerts go to
// C0ALERTS), the fake Slack and the fake Mackerel API.

const (
	alertsChannel  = "C0ALERTS"
	alertsHookUser = "mackerel"
	alertsHookPass = "e2e-webhook-password-0123"
	alertsOnCall   = "U0SRE00001" // sre in policies/groups.yaml
	alertsDev      = "U0DEV00001" // dev: may not act on alerts
)

// alertsEnv is the environment enabling alerts on top of tokkenEnv.
func alertsEnv(t *testing.T, mk *mackerelfake.Fake) []string {
	t.Helper()
	policyDir, err := filepath.Abs(filepath.Join("..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"TOKKEN_POLICY_DIR=" + policyDir,
		"MACKEREL_WEBHOOK_USER=" + alertsHookUser, "MACKEREL_WEBHOOK_PASSWORD=" + alertsHookPass,
		"MACKEREL_API_KEY=" + mk.APIKey(), "MACKEREL_API_URL=" + mk.URL(),
		"TOKKEN_ALERT_CHANNEL=" + alertsChannel,
	}
}

func alertsFake(t *testing.T) *slackfake.Fake {
	fake := slackfake.New(t)
	for _, ch := range alertsChannels {
		fake.AddChannel(ch, strings.ToLower(ch))
	}
	fake.AddUser(slackfake.User{ID: alertsOnCall, Name: "oncall", Email: "oncall@example.com"})
	fake.AddUser(slackfake.User{ID: alertsDev, Name: "dev", Email: "dev@example.com"})
	return fake
}

func alertsFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "handlers", "alertui", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func postWebhook(t *testing.T, s *server, body []byte, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+"/webhooks/mackerel", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	return do(t, req)
}

var alertsChannels = []string{alertsChannel, "C0PRODALERTS", "C0STAGING", "C0TOKKENOPS", "C0DEVALERTS"}

// alertMessage finds the top-level message whose text contains marker, in
// any of the routes' channels.
func alertMessage(f *slackfake.Fake, marker string) (slackfake.Message, bool) {
	for _, ch := range alertsChannels {
		for _, m := range f.Messages(ch) {
			if m.ThreadTS == "" && strings.Contains(m.Text, marker) {
				return m, true
			}
		}
	}
	return slackfake.Message{}, false
}

// postCritical delivers the Mackerel host-critical sample (alert
// mackerel:4Fbh2K6yWfe, CPU % on app01) to s's webhook and waits for the
// alert's message in Slack.
func postCritical(t *testing.T, s *server, fake *slackfake.Fake) slackfake.Message {
	t.Helper()
	if status, body := postWebhook(t, s, alertsFixture(t, "mackerel-host-critical.json"), alertsHookUser, alertsHookPass); status != http.StatusAccepted {
		t.Fatalf("webhook: %d %q", status, body)
	}
	var msg slackfake.Message
	fake.WaitFor(t, 20*time.Second, func(f *slackfake.Fake) bool {
		var ok bool
		msg, ok = alertMessage(f, "CRITICAL: CPU % — app01")
		return ok
	})
	return msg
}

func pressAlertButton(t *testing.T, s *server, fake *slackfake.Fake, user, actionID, key string, m slackfake.Message) {
	t.Helper()
	cb := slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		Channel:   slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: m.Channel}}},
		Container: slack.Container{ChannelID: m.Channel, MessageTs: m.TS},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{
			ActionID: actionID, BlockID: alertui.BlockActions, Value: key, ActionTs: fmt.Sprint(time.Now().UnixNano()),
		}}},
	}
	req, _ := fake.Interaction(t, s.base+"/slack/interactions", cb)
	if status, body := do(t, req); status != http.StatusOK {
		t.Fatalf("%s by %s: %d %q", actionID, user, status, body)
	}
}

func TestAlertsMackerelEndToEnd(t *testing.T) {
	fake := alertsFake(t)
	mk := mackerelfake.New(t, "")
	mk.AddAlert("4Fbh2K6yWfe")
	s := startServe(t, fake, alertsEnv(t, mk)...)
	const key = "mackerel:4Fbh2K6yWfe"

	if status, body := postWebhook(t, s, alertsFixture(t, "mackerel-host-critical.json"), alertsHookUser, "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("wrong credentials: %d %q", status, body)
	}
	msg := postCritical(t, s, fake)

	// A developer may not act; on-call acknowledges.
	pressAlertButton(t, s, fake, alertsDev, alertui.ActionAck, key, msg)
	fake.WaitFor(t, 10*time.Second, func(f *slackfake.Fake) bool { return len(f.Ephemerals(alertsDev)) == 1 })
	if eph := fake.Ephemerals(alertsDev)[0].Text; !strings.Contains(eph, "may not act") {
		t.Errorf("refusal: %q", eph)
	}
	pressAlertButton(t, s, fake, alertsOnCall, alertui.ActionAck, key, msg)
	fake.WaitFor(t, 10*time.Second, func(f *slackfake.Fake) bool {
		m, _ := f.Message(msg.Channel, msg.TS)
		return m.Edits == 1 && strings.Contains(m.Shown(), "Acknowledged")
	})

	// Close asks Mackerel; Mackerel's close webhook turns the message green.
	pressAlertButton(t, s, fake, alertsOnCall, alertui.ActionClose, key, msg)
	fake.WaitFor(t, 10*time.Second, func(*slackfake.Fake) bool { _, ok := mk.Closed("4Fbh2K6yWfe"); return ok })
	if status, body := postWebhook(t, s, alertsFixture(t, "mackerel-manual-close.json"), alertsHookUser, alertsHookPass); status != http.StatusAccepted {
		t.Fatalf("close webhook: %d %q", status, body)
	}
	fake.WaitFor(t, 20*time.Second, func(f *slackfake.Fake) bool {
		m, _ := f.Message(msg.Channel, msg.TS)
		return strings.Contains(m.Text, "OK: CPU %") && strings.Contains(m.Shown(), alertui.ColorResolved)
	})
	top := 0
	for _, m := range fake.Messages(alertsChannel) {
		if m.ThreadTS == "" {
			top++
		}
	}
	if top != 1 {
		t.Errorf("%d top-level messages for one alert", top)
	}
	// The thread tells the story: acknowledged, close requested, resolved.
	fake.WaitFor(t, 20*time.Second, func(f *slackfake.Fake) bool {
		var all []string
		for _, r := range f.Thread(msg.Channel, msg.TS) {
			all = append(all, r.Text)
		}
		text := strings.Join(all, "\n")
		return strings.Contains(text, "Acknowledged by <@"+alertsOnCall+">") &&
			strings.Contains(text, "asked Mackerel to close") && strings.Contains(text, "*OK*")
	})

	req, _ := fake.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{Command: "/alerts", Text: "list", UserID: alertsOnCall, ChannelID: alertsChannel})
	if status, body := do(t, req); status != http.StatusOK || !strings.Contains(body, "No open alerts") {
		t.Errorf("/alerts list: %d %q", status, body)
	}
	s.stop()
}

// withID rewrites a Lambda SNS or EventBridge sample's message id (the
// samples share one) and writes it to dir.
func withID(t *testing.T, dir, name, id string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(alertsFixture(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	if recs, ok := doc["Records"].([]any); ok {
		for _, r := range recs {
			r.(map[string]any)["Sns"].(map[string]any)["MessageId"] = id
		}
	} else {
		doc["id"] = id
	}
	b, _ := json.Marshal(doc)
	p := filepath.Join(dir, id+".json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAlertsInvokeCloudWatch(t *testing.T) {
	fake := alertsFake(t)
	mk := mackerelfake.New(t, "")
	dir := t.TempDir()
	invoke := func(path string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "invoke", path)
		cmd.Dir = dir
		cmd.Env = tokkenEnv(fake, dir, alertsEnv(t, mk)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("tokken invoke %s: %v\n%s", filepath.Base(path), err, stderr.String())
		}
	}
	invoke(withID(t, dir, "sns-alarm-single-metric.json", "sns-1"))
	if m, ok := alertMessage(fake, "CRITICAL: EXAMPLE"); !ok || !strings.Contains(m.Shown(), "CloudWatch") {
		t.Fatalf("SNS alarm not posted:\n%s", fake.Dump(10))
	}
	invoke(withID(t, dir, "eventbridge-alarm.json", "eb-1"))
	alarm, ok := alertMessage(fake, "CRITICAL: ServerCpuTooHigh")
	if !ok {
		t.Fatalf("EventBridge alarm not posted:\n%s", fake.Dump(10))
	}
	invoke(withID(t, dir, "eventbridge-ok.json", "eb-2"))
	m, _ := fake.Message(alarm.Channel, alarm.TS)
	if m.Edits != 1 || !strings.Contains(m.Text, "OK: ServerCpuTooHigh") {
		t.Errorf("alarm OK not shown in place: edits %d %q", m.Edits, m.Text)
	}
}
