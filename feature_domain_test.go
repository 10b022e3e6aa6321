package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/infra/slackdir"
	"github.com/tokken/tokken/policies"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// testApp builds the app in-process from vars (plus a bolt store in a
// temporary directory, the shipped policies and the fake Slack) with its
// logs and metrics in buffers. Jobs do not run until the test calls start.
func testApp(t *testing.T, fake *slackfake.Fake, vars map[string]string) (*app, *logbuf.Buffer, *logbuf.Buffer) {
	t.Helper()
	all := map[string]string{
		"SLACK_SIGNING_SECRET": fake.SigningSecret(), "SLACK_BOT_TOKEN": fake.Token(), "SLACK_API_URL": fake.APIURL(),
		"TOKKEN_STORE": "bolt:" + filepath.Join(t.TempDir(), "tokken.db"), "TOKKEN_POLICY_DIR": "policies",
		"TOKKEN_LOG_LEVEL": "debug",
	}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := config.Load(func(k string) string { return all[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	var logs, metricsOut logbuf.Buffer
	a, err := buildApp(context.Background(), cfg, newLogger(cfg, &logs), metricsTo(&metricsOut))
	if err != nil {
		t.Fatalf("buildApp: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() { a.close(context.Background()) })
	return a, &logs, &metricsOut
}

// withAWS gives the process an AWS region and static credentials, so the
// features that need AWS are wired; nothing in these tests calls AWS.
func withAWS(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestDomainLogsNameTheFeatureOnce: every log line of the domain feature
// (wiring, the /domain handler) carries "feature":"domain" exactly once,
// never the duplicate JSON key a twice-tagged logger writes.
func TestDomainLogsNameTheFeatureOnce(t *testing.T) {
	withAWS(t)
	fake := slackfake.New(t)
	a, logs, _ := testApp(t, fake, nil)
	req, _ := fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{
		Command: "/domain", Text: "join i-0123456789abcdef0", UserID: "U0WIN00001", ChannelID: "C0DOMAIN01",
	})
	rec := httptest.NewRecorder()
	a.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/domain: %d %s", rec.Code, rec.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.router.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(logs.String(), "\n") {
		if n := strings.Count(l, `"feature":`); n > 1 {
			t.Errorf("%d feature keys: %s", n, l)
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["feature"] == "domain" {
			seen[m["msg"].(string)] = true
		}
	}
	for _, msg := range []string{"domain command queued", "TOKKEN_DOMAIN_CHANNEL is not set: operation messages go to the requester's DM, where approvers cannot see them"} {
		if !seen[msg] {
			t.Errorf("no %q line tagged feature=domain:\n%s", msg, logs.String())
		}
	}
}

// TestDirectoryAuthorizer decides domain approvals with the shipped
// policies and the access UI's directory over the fake Slack: groups.yaml
// entries by Slack user group and by e-mail match, and a failed lookup
// decides on the user id alone.
func TestDirectoryAuthorizer(t *testing.T) {
	fake := slackfake.New(t)
	fake.AddUser(slackfake.User{ID: "U0GRP00001", Name: "grp"})
	fake.AddUser(slackfake.User{ID: "U0ALICE001", Name: "alice", Email: "Alice@example.com"})
	fake.AddUser(slackfake.User{ID: "U0NOBODY01", Name: "nobody", Email: "nobody@example.com"})
	fake.AddUserGroup("S0SREGRP01", "U0GRP00001", "U0GHOST001")
	set, err := policies.Load("policies")
	if err != nil {
		t.Fatal(err)
	}
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), MaxAttempts: 1})
	authz := directoryAuthorizer{set: set, dir: slackdir.New(client, set.SlackUserGroups(), nil), log: slog.New(slog.DiscardHandler)}
	tests := []struct {
		name, user string
		allow      bool
	}{
		{"in the sre Slack user group", "U0GRP00001", true},
		{"listed by e-mail", "U0ALICE001", true},
		{"in no group", "U0NOBODY01", false},
		{"unknown to Slack, listed by id", "U0SRE00001", true},
		{"unknown to Slack, group membership cannot count", "U0GHOST001", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := authz.Authorize(context.Background(), bot.AuthzQuery{
				Principal: bot.Principal{ID: tt.user}, Action: bot.ActionApprove,
				Targets: []bot.Target{{ID: "i-0123456789abcdef0", Tags: map[string]string{"Env": "prod"}}},
				Now:     time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), Context: map[string]string{"requester": "U0WIN00001"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow {
				t.Errorf("allow = %v, want %v (%v)", d.Allow, tt.allow, d.Reasons)
			}
		})
	}
}
