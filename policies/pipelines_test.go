package policies

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot"
)

func TestParsePipelines(t *testing.T) {
	p, err := ParsePipelines("pipelines.yaml", []byte(`pipelines:
  - match: web-prod
    approver_channel: C0RELEASE1
    approvals: 2
    env: prod
  - match: "*-staging"
    approver_channel: C0RELEASE2
`))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := p.Lookup("web-prod"); !ok || e.Channel != "C0RELEASE1" || e.Approvals != 2 || e.Env != "prod" || e.Line != 2 {
		t.Errorf("web-prod = %+v, %v", e, ok)
	}
	if e, ok := p.Lookup("api-staging"); !ok || e.Channel != "C0RELEASE2" || e.Approvals != 1 {
		t.Errorf("api-staging = %+v, %v (approvals default to 1)", e, ok)
	}
	if _, ok := p.Lookup("infra-prod"); ok {
		t.Error("infra-prod matched")
	}

	_, err = ParsePipelines("pipelines.yaml", []byte(`pipelines:
  - match: "web prod"
    approver_channel: C0RELEASE1
    approvals: 11
  - match: web-prod
    approver_channel: C0RELEASE1
  - match: web-prod
    approver_channel: C0RELEASE1
  - approver_channel: releases
`))
	for _, want := range []string{
		`pipelines.yaml:2: match "web prod": ' ' is not allowed`,
		`pipelines.yaml:4: approvals "11" must be a whole number from 1 to 10`,
		`pipelines.yaml:7: pipeline match "web-prod" is already defined at line 5`,
		`pipelines.yaml:9: approver_channel "releases" must be a Slack channel id`,
		`pipelines.yaml:9: pipeline needs a match`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems %v lack %q", err, want)
		}
	}
}

// TestApproveReleaseRules decides approve_release with the shipped set:
// SRE anywhere (two of them for prod), developers on staging only.
func TestApproveReleaseRules(t *testing.T) {
	s, err := Load(".")
	if err != nil {
		t.Fatal(err)
	}
	ask := func(user, env string) bot.Decision {
		t.Helper()
		d, err := s.Authorize(context.Background(), bot.AuthzQuery{
			Principal: bot.Principal{ID: user}, Action: bot.ActionApproveRelease,
			Context: map[string]string{CtxPipeline: "web-" + env, CtxStage: "Release", CtxEnv: env},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ask("U0SRE00001", "prod"); !d.Allow || d.Approvals != 2 {
		t.Errorf("SRE on prod = %+v, want allowed with 2 approvals", d)
	}
	if d := ask("U0SRE00001", "staging"); !d.Allow || d.Approvals != 0 {
		t.Errorf("SRE on staging = %+v, want allowed, no extra approvals", d)
	}
	if d := ask("U0DEV00001", "staging"); !d.Allow {
		t.Errorf("dev on staging = %+v, want allowed", d)
	}
	if d := ask("U0DEV00001", "prod"); d.Allow || len(d.Reasons) == 0 {
		t.Errorf("dev on prod = %+v, want refused with a reason", d)
	}
	start := func(user string) bool {
		d, err := s.Authorize(context.Background(), bot.AuthzQuery{
			Principal: bot.Principal{ID: user}, Action: bot.ActionStartRelease,
			Context: map[string]string{CtxPipeline: "web-prod", CtxEnv: "prod"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d.Allow
	}
	if !start("U0DEV00001") || !start("U0SRE00001") || start("U0NOBODY01") {
		t.Error("start_release: developers and SRE may start, nobody else")
	}
	if _, err := s.Authorize(context.Background(), bot.AuthzQuery{Principal: bot.Principal{ID: "U0SRE00001"}, Action: bot.ActionApproveRelease}); err == nil {
		t.Error("approve_release without a pipeline did not fail")
	}
}

// TestChannelsNamePipelineApprovers: `tokken policy check` asks Slack about
// the pipelines' approver channels too.
func TestChannelsNamePipelineApprovers(t *testing.T) {
	uses, err := Channels(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uses {
		if u.Channel == "C0RELEASE1" && strings.Contains(u.Use, `pipelines "web-prod" (pipelines.yaml:`) {
			return
		}
	}
	t.Errorf("no approver channel of pipelines.yaml among %v", uses)
}

// Without pipelines, `check` has no topics to remind of.
func TestPipelineReminderWithoutPipelines(t *testing.T) {
	dir := t.TempDir()
	if r := PipelineReminder(dir); r != "" {
		t.Errorf("no pipelines.yaml: reminder %q", r)
	}
	if err := os.WriteFile(filepath.Join(dir, PipelinesFile), []byte("pipelines: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := PipelineReminder(dir); r != "" {
		t.Errorf("empty pipelines.yaml: reminder %q", r)
	}
}
