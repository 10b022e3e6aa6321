package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestServeRefusesBadFeatureConfiguration: a bad feature variable, or a
// broken routes.yaml, stops `tokken serve` at start with exit code 2 and a
// message naming the variable; nothing is served, and no secret is echoed.
func TestServeRefusesBadFeatureConfiguration(t *testing.T) {
	fake := slackfake.New(t)
	badRoutes := t.TempDir()
	for _, f := range []string{"profiles.yaml", "groups.yaml", "access.cedar", "alerts.cedar", "domain.cedar", "hours.cedar", "tokken.cedarschema"} {
		data, err := os.ReadFile(filepath.Join("policies", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(badRoutes, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(badRoutes, "routes.yaml"), []byte("routs: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars map[string]string
		want []string // in stderr
	}{
		{"domain timeout in words", map[string]string{"TOKKEN_DOMAIN_TIMEOUT": "soon"}, []string{`TOKKEN_DOMAIN_TIMEOUT: want a duration between 1s and 24h such as 20m, got "soon"`}},
		{"short webhook password", map[string]string{"MACKEREL_WEBHOOK_USER": "mackerel", "MACKEREL_WEBHOOK_PASSWORD": "tiny-pw"},
			[]string{"MACKEREL_WEBHOOK_PASSWORD: want at least 16 characters"}},
		{"channel names, every one reported", map[string]string{"TOKKEN_AUDIT_CHANNEL": "#audit", "TOKKEN_DOMAIN_CHANNEL": "#domain", "TOKKEN_OPS_CHANNEL": "ops"},
			[]string{"TOKKEN_AUDIT_CHANNEL: want a Slack channel id", "TOKKEN_DOMAIN_CHANNEL: want", "TOKKEN_OPS_CHANNEL: want"}},
		{"broken routes.yaml", map[string]string{"TOKKEN_POLICY_DIR": badRoutes}, []string{"TOKKEN_POLICY_DIR", "routes.yaml"}},
		{"the .env.example placeholder bot token", map[string]string{"SLACK_BOT_TOKEN": "xoxb-"},
			[]string{`SLACK_BOT_TOKEN: want the whole bot token: "xoxb-" followed by the rest of it`, "placeholder from .env.example"}},
		{"a three-character signing secret", map[string]string{"SLACK_SIGNING_SECRET": "abc"}, []string{"SLACK_SIGNING_SECRET: want the whole signing secret"}},
		{"a policy directory that does not exist", map[string]string{"TOKKEN_POLICY_DIR": "no-such-dir"}, []string{"TOKKEN_POLICY_DIR no-such-dir", "no such directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{
				"SLACK_SIGNING_SECRET": fake.SigningSecret(), "SLACK_BOT_TOKEN": fake.Token(), "SLACK_API_URL": fake.APIURL(),
				"TOKKEN_STORE": "bolt:" + filepath.Join(t.TempDir(), "tokken.db"), "TOKKEN_POLICY_DIR": "policies",
				"TOKKEN_ADDR": "127.0.0.1:0",
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			var stdout, stderr bytes.Buffer
			e := testEnv(vars, &stdout, &stderr)
			e.ready = func(addr string) { t.Errorf("serve listened on %s despite the bad configuration", addr) }
			if code := run(context.Background(), []string{"serve"}, e); code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s", code, exitUsage, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "tiny-pw") {
				t.Errorf("stderr echoes the webhook password:\n%s", stderr.String())
			}
		})
	}
}

// TestHelpListsEveryVariable: `tokken --help` shows every variable of
// config.Vars once, the features' included.
func TestHelpListsEveryVariable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, testEnv(nil, &stdout, &stderr)); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	help := stdout.String()
	for _, v := range config.Vars() {
		if n := strings.Count(help, "\n  "+v.Name+"\n"); n != 1 {
			t.Errorf("%s listed %d times in --help", v.Name, n)
		}
	}
	for _, name := range []string{
		"TOKKEN_AUDIT_CHANNEL", "TOKKEN_OPS_CHANNEL", "TOKKEN_ALERT_CHANNEL", "TOKKEN_DOMAIN_CHANNEL", "TOKKEN_DOMAIN_TIMEOUT",
		"TOKKEN_DOMAIN_CHECK_EVERY", "TOKKEN_DOMAIN_APPROVAL_TIMEOUT", "MACKEREL_WEBHOOK_USER", "MACKEREL_WEBHOOK_PASSWORD",
		"MACKEREL_API_KEY", "MACKEREL_API_URL",
	} {
		if !strings.Contains(help, "\n  "+name+"\n") {
			t.Errorf("--help does not list the feature variable %s", name)
		}
	}
}

// TestUnknownCommandStaysOnScreen: a mistyped command prints its error and
// a one-line hint, not the whole help under which the error would scroll
// away; so does no command at all.
func TestUnknownCommandStaysOnScreen(t *testing.T) {
	for _, args := range [][]string{{"serv"}, nil} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, testEnv(nil, &stdout, &stderr)); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[1], "tokken help") {
			t.Errorf("%q: want the error and a hint naming `tokken help`, got %d lines:\n%s", args, len(lines), stderr.String())
		}
		if len(args) > 0 && !strings.Contains(lines[0], `unknown command "serv"`) {
			t.Errorf("%q: first line %q does not name the command", args, lines[0])
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout %q", args, stdout.String())
		}
	}
}

// TestPolicyCheckInTheWrongFolder: `tokken policy check` run where there is
// no policies/ directory, or pointed at a folder without policy files,
// names the directory and what it looked for, not "every action would be
// denied".
func TestPolicyCheckInTheWrongFolder(t *testing.T) {
	empty := t.TempDir()
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"policy", "check"}, []string{"policies: no such directory", "TOKKEN_POLICY_DIR"}},
		{[]string{"policy", "check", "--dir", empty}, []string{empty + ": not a policy directory: no profiles.yaml, groups.yaml or *.cedar files"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, testEnv(nil, &stdout, &stderr)); code != exitFailed {
			t.Errorf("%q: exit %d, want %d", tt.args, code, exitFailed)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%q: output does not contain %q:\n%s", tt.args, w, stdout.String())
			}
		}
		if strings.Contains(stdout.String(), "every action would be denied") {
			t.Errorf("%q: blames the rules:\n%s", tt.args, stdout.String())
		}
	}
}
