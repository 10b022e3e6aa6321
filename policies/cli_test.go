package policies

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

func TestExplain(t *testing.T) {
	s := loadExample(t)
	ex := Explain(s, bot.AuthzQuery{
		Principal: bot.Principal{ID: "U0SRE00001"}, Action: bot.ActionRequest, Profile: "prod-ssm",
		Duration: 30 * time.Minute, Now: tue22,
	})
	if ex.Err != nil || ex.Decision.Allow {
		t.Fatalf("Explain = %+v", ex)
	}
	// Both the permit that matched and the forbid that won are shown.
	if len(ex.Matched) != 2 || ex.Matched[0].Rule != rSRERequest || ex.Matched[1].Rule != rHours {
		t.Errorf("Matched = %+v", ex.Matched)
	}
	if !strings.HasPrefix(ex.Matched[1].Text, `@id("prod-working-hours")`) || !strings.HasSuffix(ex.Matched[1].Text, "};") {
		t.Errorf("rule text = %q", ex.Matched[1].Text)
	}
	out := ex.String()
	for _, want := range []string{
		"DENY: U0SRE00001 request prod-ssm for 30m\n",
		"  - " + rHours + "\n",
		"principal U0SRE00001 is in groups: sre\n",
		"  hour: 22\n",
		`  weekday: "Tue"` + "\n",
		"  on profile \"prod-ssm\": " + rSRERequest + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}
	if ex := Explain(s, bot.AuthzQuery{Action: bot.ActionRequest}); ex.Err == nil || !strings.Contains(ex.String(), "error: authorize request: no principal") {
		t.Errorf("bad query: %+v", ex)
	}
}

func TestRunCLI(t *testing.T) {
	bad := t.TempDir()
	for name, data := range map[string]string{
		ProfilesFile:  "profiles:\n  p:\n    kind: sts\n    role_arn: arn:aws:iam::111111111111:role/r\n    default_duration: 4h\n    max_duration: 2h\n",
		"rules.cedar": "permit (principal, action, resource)\n",
		RoutesFile:    "routs: []\n",
	} {
		if err := os.WriteFile(filepath.Join(bad, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		args     []string
		env      string
		code     int
		stdout   []string // substrings
		stderr   []string
		noStdout bool
	}{
		{name: "no args", code: 2, stderr: []string{"usage:"}},
		{name: "unknown command", args: []string{"lint"}, code: 2, stderr: []string{`unknown policy command "lint"`}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"tokken policy check"}},
		{name: "check ok", args: []string{"check", "--dir", "."}, code: 0, stdout: []string{".: ok",
			`pipelines.yaml takes approvals of pipelines "web-prod" (pipelines.yaml:12), "*-staging" (pipelines.yaml:16): their manual approval actions must notify the stack's ReleaseApprovalTopicArn output or a topic listed in its ReleaseTopicArns parameter, and their ARNs must be in ReleasePipelineArns`}},
		{name: "check default dir from env", args: []string{"check"}, env: ".", code: 0, stdout: []string{".: ok"}},
		{name: "check problems, routes included", args: []string{"check", "--dir", bad}, code: 1,
			stdout: []string{
				filepath.Join(bad, "profiles.yaml") + `:6: max_duration "2h" is less than default_duration "4h"`,
				filepath.Join(bad, "rules.cedar") + `:2: Cedar syntax error at end of file: expected ";"`,
				filepath.Join(bad, "routes.yaml") + `:1: unknown key "routs"`,
			},
			stderr: []string{"4 problem(s) in " + bad}},
		{name: "check bad flag", args: []string{"check", "--dri", "."}, code: 2, stderr: []string{"flag provided but not defined: -dri"}},
		{name: "check extra arg", args: []string{"check", "x"}, code: 2, stderr: []string{`unexpected argument "x"`}},
		{name: "check --aws without AWS", args: []string{"check", "--dir", ".", "--aws"}, code: 2, stderr: []string{"--aws is not available here"}},
		{name: "explain allow", code: 0,
			args:   []string{"explain", "--dir", ".", "--user", "U0SRE00001", "--action", "request", "--profile", "prod-ssm", "--duration", "30m", "--target", "i-0123456789abcdef0,Env=prod", "--at", "2026-03-03T10:00:00Z"},
			stdout: []string{"ALLOW: U0SRE00001 request prod-ssm i-0123456789abcdef0 for 30m", "needs 1 approval(s)", "permit access.cedar:18 (sre-request)", `target_tags: ["Env=prod"]`}},
		{name: "explain deny", code: 1,
			args:   []string{"explain", "--dir", ".", "--user", "U0DEV00001", "--action", "request", "--profile", "prod-ssm", "--duration", "30m", "--at", "2026-03-03T10:00:00Z"},
			stdout: []string{"DENY", `no rule permits request on profile "prod-ssm" for U0DEV00001`, "no rule matches."}},
		{name: "explain break-glass via slack group and context", code: 0,
			args:   []string{"explain", "--dir", ".", "--user", "U0X", "--slack-group", "S0ONCALL01", "--action", "request", "--profile", "prod-ssm", "--duration", "30m", "--context", "break_glass=true", "--at", "2026-03-03T23:00:00Z"},
			stdout: []string{"ALLOW", "oncall-break-glass", "groups: oncall"}},
		{name: "explain by email", code: 0,
			args:   []string{"explain", "--dir", ".", "--user", "U0X", "--email", "alice@example.com", "--action", "approve", "--profile", "prod-ssm"},
			stdout: []string{"ALLOW", "sre-approve"}},
		{name: "explain needs user", args: []string{"explain", "--action", "request"}, code: 2, stderr: []string{"--user is required"}},
		{name: "explain bad action", args: []string{"explain", "--user", "U0X", "--action", "sudo"}, code: 2, stderr: []string{`--action "sudo" is not one of request, approve`}},
		{name: "explain bad duration", args: []string{"explain", "--user", "U0X", "--action", "request", "--duration", "ten"}, code: 2, stderr: []string{`invalid value "ten" for flag -duration`}},
		{name: "explain bad target", args: []string{"explain", "--user", "U0X", "--action", "domain_join", "--target", "web-01"}, code: 2, stderr: []string{`"web-01" is not an instance id`}},
		{name: "explain bad tag", args: []string{"explain", "--user", "U0X", "--action", "domain_join", "--target", "i-0123456789abcdef0,Env"}, code: 2, stderr: []string{`tag "Env" is not Key=Value`}},
		{name: "explain bad at", args: []string{"explain", "--user", "U0X", "--action", "request", "--at", "tomorrow"}, code: 2, stderr: []string{`--at "tomorrow" is not an RFC 3339 time`}},
		{name: "explain bad context", args: []string{"explain", "--dir", ".", "--user", "U0X", "--action", "request", "--profile", "p", "--context", "colour=blue"}, code: 2, stderr: []string{`unknown context key "colour"`}},
		{name: "explain broken dir", args: []string{"explain", "--dir", bad, "--user", "U0X", "--action", "request", "--profile", "p"}, code: 1, stderr: []string{"max_duration", "does not load"}, noStdout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TOKKEN_POLICY_DIR", tt.env)
			var stdout, stderr bytes.Buffer
			code := RunCLI(context.Background(), tt.args, &stdout, &stderr, CheckOptions{})
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if tt.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout not empty:\n%s", stdout.String())
			}
		})
	}
}

// check --aws looks each profile's role up once and fails on any role that
// may not be granted.
func TestCheckRoles(t *testing.T) {
	var asked []string
	roles := func(_ context.Context, arn string) error {
		asked = append(asked, arn)
		if strings.Contains(arn, "staging-admin") {
			return errors.New("role " + arn + " may not be granted: it has no permissions boundary")
		}
		return nil
	}
	var stdout, stderr bytes.Buffer
	code := RunCLI(context.Background(), []string{"check", "--dir", ".", "--aws"}, &stdout, &stderr, CheckOptions{Roles: roles})
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"profile prod-readonly: role arn:aws:iam::111111111111:role/tokken-prod-readonly: may be granted\n",
		"profile staging-admin: role arn:aws:iam::222222222222:role/tokken-staging-admin: role arn:aws:iam::222222222222:role/tokken-staging-admin may not be granted: it has no permissions boundary\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "1 role(s) in . may not be granted") {
		t.Errorf("stderr %q", stderr.String())
	}
	if len(asked) != 3 {
		t.Errorf("asked about %v, want each of the 3 roles once", asked)
	}
	asked = nil
	stdout.Reset()
	if code := RunCLI(context.Background(), []string{"check", "--dir", ".", "--aws"}, &stdout, &stderr, CheckOptions{Roles: func(context.Context, string) error { return nil }}); code != 0 || !strings.Contains(stdout.String(), ".: ok") {
		t.Errorf("all roles fine: exit %d\n%s", code, stdout.String())
	}
}
