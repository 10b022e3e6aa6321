package policies

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

const ecsProfiles = `profiles:
  staging-exec:
    kind: ecs-exec
    env: staging
    role_arn: arn:aws:iam::222222222222:role/exec
    ecs:
      cluster: arn:aws:ecs:us-east-1:222222222222:cluster/staging
      services: [web, worker]
      families: [web]
      tags: {Env: staging}
      containers: [app]
    max_duration: 1h
    approvals: 1
`

// Developers may exec into the staging web service without approval.
const ecsRules = `permit (principal in Tokken::Group::"sre", action, resource);
@id("dev-exec-web")
@approvals("0")
permit (principal in Tokken::Group::"ops", action == Tokken::Action::"request", resource)
when { resource.kind == "ecs-exec" && resource.cluster == "staging" && resource.service == "web" && resource.env == "staging" };
`

func TestECSProfile(t *testing.T) {
	s, probs := loadFS(fixture(map[string]string{ProfilesFile: ecsProfiles, "rules.cedar": ecsRules}), "policies")
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	p, ok := s.Profile("staging-exec")
	if !ok || p.Kind != access.KindECSExec {
		t.Fatalf("profile = %+v, %v", p, ok)
	}
	want := access.ECSSelector{Cluster: "arn:aws:ecs:us-east-1:222222222222:cluster/staging", Services: []string{"web", "worker"},
		Families: []string{"web"}, Tags: map[string]string{"Env": "staging"}, Containers: []string{"app"}}
	if p.ECS.Cluster != want.Cluster || strings.Join(p.ECS.Services, ",") != "web,worker" || p.ECS.Tags["Env"] != "staging" ||
		strings.Join(p.ECS.Containers, ",") != "app" || strings.Join(p.ECS.Families, ",") != "web" {
		t.Errorf("ECS = %+v, want %+v", p.ECS, want)
	}
	ask := func(service string) bot.Decision {
		t.Helper()
		c := map[string]string{}
		if service != "" {
			c[CtxECSService] = service
		}
		d, err := s.Authorize(context.Background(), bot.AuthzQuery{
			Principal: bot.Principal{ID: "U0OPS", Email: "sre@example.com"}, Action: bot.ActionRequest,
			Profile: "staging-exec", Duration: 30 * time.Minute, Now: time.Now(), Context: c,
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// sre@example.com is in sre (and ops): allowed either way.
	if d := ask("worker"); !d.Allow {
		t.Errorf("sre on worker: %+v", d)
	}
	s2, probs := loadFS(fixture(map[string]string{ProfilesFile: ecsProfiles, "rules.cedar": ecsRules,
		GroupsFile: "groups:\n  sre:\n    members: [U0SRE]\n  ops:\n    members: [U0OPS]\n"}), "policies")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	s = s2
	if d := ask("web"); !d.Allow || d.Approvals != 1 || !strings.Contains(strings.Join(d.Reasons, ";"), "dev-exec-web") {
		t.Errorf("ops on web: %+v (want allowed by dev-exec-web, the profile's 1 approval kept)", d)
	}
	if d := ask("worker"); d.Allow {
		t.Errorf("ops on worker allowed: %+v", d)
	}
	if d := ask(""); d.Allow {
		t.Errorf("ops without a service allowed: %+v", d)
	}
}

func TestECSProfileProblems(t *testing.T) {
	tests := []struct {
		name, profiles string
		want           []string
	}{
		{"missing ecs", "profiles:\n  e:\n    kind: ecs-exec\n    role_arn: arn:aws:iam::111111111111:role/r\n    max_duration: 1h\n",
			[]string{`policies/profiles.yaml:2: profile "e": ecs-exec profiles need ecs`}},
		{"ecs on sts", "profiles:\n  e:\n    kind: sts\n    role_arn: arn:aws:iam::111111111111:role/r\n    max_duration: 1h\n    ecs: {cluster: c}\n",
			[]string{`policies/profiles.yaml:6: ecs only applies to ecs-exec profiles; profile "e" is sts`}},
		{"bad cluster and names", "profiles:\n  e:\n    kind: ecs-exec\n    role_arn: arn:aws:iam::111111111111:role/r\n    max_duration: 1h\n    ecs:\n      cluster: 'arn:aws:ecs:x'\n      services: ['we b']\n      colour: red\n",
			[]string{`:7: cluster "arn:aws:ecs:x" is neither an ECS cluster name nor a cluster ARN`, `:8: services: "we b" is not an ECS name`, `:9: unknown key "colour" in ecs`}},
		{"no cluster", "profiles:\n  e:\n    kind: ecs-exec\n    role_arn: arn:aws:iam::111111111111:role/r\n    max_duration: 1h\n    ecs:\n      services: [web]\n",
			[]string{`:6: ecs needs a cluster`}},
		{"instances on ecs-exec", "profiles:\n  e:\n    kind: ecs-exec\n    role_arn: arn:aws:iam::111111111111:role/r\n    max_duration: 1h\n    ecs: {cluster: c}\n    instances: {ids: [i-0123456789abcdef0]}\n",
			[]string{`:7: instances only apply to ssm profiles; profile "e" is ecs-exec`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := loadFS(fixture(map[string]string{ProfilesFile: tt.profiles}), "policies")
			got := probs.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems lack %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestECSPolicyCheck runs `tokken policy check` on a directory with an
// ecs-exec profile and a rule on its cluster and service.
func TestECSPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{ProfilesFile: ecsProfiles, GroupsFile: baseGroups, "rules.cedar": ecsRules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := RunCLI(context.Background(), []string{"check", "--dir", dir}, &out, &errOut, CheckOptions{}); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Fatalf("check: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	bad := strings.Replace(ecsRules, `resource.service == "web"`, `resource.services == "web"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "rules.cedar"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := RunCLI(context.Background(), []string{"check", "--dir", dir}, &out, &errOut, CheckOptions{}); code != 1 || !strings.Contains(out.String(), "services") {
		t.Fatalf("check of a rule naming a missing attribute: exit %d\n%s", code, out.String())
	}
}
