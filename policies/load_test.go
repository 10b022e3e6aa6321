package policies

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tokken/tokken/bot/access"
)

// Fixture files; tests override some of them.
const (
	baseProfiles = `profiles:
  prod-ssm:
    kind: ssm
    role_arn: arn:aws:iam::111111111111:role/ssm
    instances:
      tags: {Env: prod}
    max_duration: 4h
    approvals: 1
    break_glass: true
  staging:
    kind: sts
    role_arn: arn:aws:iam::222222222222:role/admin
    max_duration: 8h
`
	baseGroups = `groups:
  sre:
    members: [U0SRE, sre@example.com]
  oncall:
    slack_usergroups: [S0ONCALL]
  ops:
    include: [sre]
`
	baseRules = `permit (principal in Tokken::Group::"sre", action, resource);
`
)

// fixture is a policy directory named "policies" with the base files, some
// replaced (or removed, with "").
func fixture(over map[string]string) fstest.MapFS {
	files := map[string]string{
		ProfilesFile:  baseProfiles,
		GroupsFile:    baseGroups,
		"rules.cedar": baseRules,
	}
	for k, v := range over {
		files[k] = v
	}
	fsys := fstest.MapFS{}
	for k, v := range files {
		if v != "" {
			fsys[k] = &fstest.MapFile{Data: []byte(v)}
		}
	}
	return fsys
}

func TestLoadFixture(t *testing.T) {
	s, probs := loadFS(fixture(nil), "policies")
	if len(probs) > 0 {
		t.Fatalf("base fixture: %v", probs)
	}
	p, ok := s.Profile("prod-ssm")
	want := access.Profile{
		Name: "prod-ssm", Kind: access.KindSSM, RoleARN: "arn:aws:iam::111111111111:role/ssm",
		Instances:       access.InstanceSelector{Tags: map[string]string{"Env": "prod"}},
		DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour, Approvals: 1, BreakGlass: true,
	}
	if !ok || p.Name != want.Name || p.Kind != want.Kind || p.RoleARN != want.RoleARN ||
		p.Instances.Tags["Env"] != "prod" || p.DefaultDuration != want.DefaultDuration ||
		p.MaxDuration != want.MaxDuration || p.Approvals != 1 || !p.BreakGlass {
		t.Errorf("Profile(prod-ssm) = %+v, %v; want %+v", p, ok, want)
	}
	if _, ok := s.Profile("nope"); ok {
		t.Error("Profile(nope) found")
	}
	var names []string
	for _, p := range s.Profiles() {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"prod-ssm", "staging"}) {
		t.Errorf("Profiles() = %v, want file order [prod-ssm staging]", names)
	}
	// Copies: mutating a returned profile leaves the Set alone.
	p.Instances.Tags["Env"] = "dev"
	if q, _ := s.Profile("prod-ssm"); q.Instances.Tags["Env"] != "prod" {
		t.Error("Profile returned shared state")
	}
	if g := s.Groups(); !slices.Equal(g, []string{"oncall", "ops", "sre"}) {
		t.Errorf("Groups() = %v", g)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "max below default",
			files: map[string]string{ProfilesFile: `profiles:
  p:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    default_duration: 4h
    max_duration: 2h
`},
			want: []string{`policies/profiles.yaml:6: max_duration "2h" is less than default_duration "4h"`},
		},
		{
			name: "unknown keys",
			files: map[string]string{ProfilesFile: `profiles:
  p:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 2h
    aprovals: 1
`, GroupsFile: `groups:
  sre:
    member: [U0SRE]
colour: blue
`},
			want: []string{
				`policies/groups.yaml:3: unknown key "member" in group "sre" (allowed: description, members, slack_usergroups, include)`,
				`policies/groups.yaml:4: unknown key "colour" (allowed: groups, identity_center_users)`,
				`policies/profiles.yaml:6: unknown key "aprovals" in profile "p" (allowed: description, kind, env, role_arn, instances, ecs, default_duration, max_duration, presets, approvals, approver_channel, break_glass, session_policy, accounts, permission_set, group)`,
			},
		},
		{
			name: "bad durations",
			files: map[string]string{ProfilesFile: `profiles:
  p:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    default_duration: 10 minutes
    max_duration: 13h
    presets: [30s, 90s, 1h]
`},
			want: []string{
				`policies/profiles.yaml:5: default_duration "10 minutes" is not a duration (write it like 10m, 1h or 1h30m)`,
				`policies/profiles.yaml:6: max_duration "13h" exceeds the maximum 12h`,
				`policies/profiles.yaml:7: preset "30s" is shorter than the minimum 1m`,
				`policies/profiles.yaml:7: preset "90s" is not a whole number of minutes`,
			},
		},
		{
			name: "preset above max",
			files: map[string]string{ProfilesFile: `profiles:
  p:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
    presets:
      - 30m
      - 2h
`},
			want: []string{`policies/profiles.yaml:8: preset "2h" exceeds max_duration "1h"`},
		},
		{
			name: "kind, role, approvals, channel, break_glass",
			files: map[string]string{ProfilesFile: `profiles:
  p:
    kind: iam
    max_duration: 1h
    approvals: -1
    approver_channel: "#prod"
    break_glass: yes please
  q:
    role_arn: arn:aws:iam::1111:role/r
    max_duration: 1h
    approvals: 11
  r:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
    approvals: [1]
    break_glass: {}
`},
			want: []string{
				`policies/profiles.yaml:2: profile "p": missing role_arn`,
				`policies/profiles.yaml:3: unknown kind "iam" (allowed: sts, ssm, ecs-exec, identity-center)`,
				`policies/profiles.yaml:5: approvals -1 is negative (0 means no approval needed)`,
				`policies/profiles.yaml:6: approver_channel "#prod" is not a Slack channel id (C… or G…)`,
				`policies/profiles.yaml:7: break_glass "yes please" must be true or false`,
				`policies/profiles.yaml:8: profile "q": missing kind (sts, ssm, ecs-exec or identity-center)`,
				`policies/profiles.yaml:9: role_arn "arn:aws:iam::1111:role/r" is not an IAM role ARN (arn:aws:iam::123456789012:role/name)`,
				`policies/profiles.yaml:11: approvals 11 exceeds the maximum 10`,
				`policies/profiles.yaml:16: approvals must be a single value`,
				`policies/profiles.yaml:17: break_glass must be a single value`,
			},
		},
		{
			name: "instances",
			files: map[string]string{ProfilesFile: `profiles:
  a:
    kind: ssm
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
  b:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
    instances: {ids: [i-0123456789abcdef0]}
  c:
    kind: ssm
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
    instances:
      ids: [web-01]
`},
			want: []string{
				`policies/profiles.yaml:2: profile "a": ssm profiles need instances (ids or tags)`,
				`policies/profiles.yaml:10: instances only apply to ssm profiles; profile "b" is sts`,
				`policies/profiles.yaml:15: instances selects nothing: give ids or tags`,
				`policies/profiles.yaml:16: "web-01" is not an EC2 instance id (i-0123456789abcdef0)`,
			},
		},
		{
			name: "session policy",
			files: map[string]string{ProfilesFile: `profiles:
  p:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
    session_policy: '{"Version": "2012-10-17"'
  q:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
    session_policy: '{"Version": "2012-10-17"}'
`},
			want: []string{
				`policies/profiles.yaml:6: session_policy is not a JSON object: unexpected end of JSON input`,
				`policies/profiles.yaml:11: session_policy has no Statement`,
			},
		},
		{
			name: "names and duplicates",
			files: map[string]string{ProfilesFile: `profiles:
  Prod_SSM:
    kind: sts
  p:
    kind: sts
    role_arn: arn:aws:iam::111111111111:role/r
    max_duration: 1h
  p:
    kind: sts
`},
			want: []string{
				`policies/profiles.yaml:2: profile name "Prod_SSM" must be lower-case letters, digits and dashes (1-63, not starting with a dash)`,
				`policies/profiles.yaml:8: duplicate key "p" (first at line 4)`,
			},
		},
		{
			name: "yaml syntax",
			files: map[string]string{
				ProfilesFile: "profiles:\n  p:\n    kind: sts\n   role_arn: x\n",
				GroupsFile:   "groups:\n  sre:\n    members: [U0SRE]\n\tinclude: []\n",
			},
			want: []string{
				`policies/groups.yaml:4: invalid YAML: found character that cannot start any token`,
				`policies/profiles.yaml:4: invalid YAML: did not find expected key`,
				`policies/rules.cedar:1: unknown group "sre" (groups.yaml defines: none)`,
			},
		},
		{
			name: "groups: members, unknown include, cycle",
			files: map[string]string{GroupsFile: `groups:
  sre:
    members: [U0SRE, alice, sre@example.com]
    slack_usergroups: [oncall]
    include: [ops, nobody]
  ops:
    include:
      - sre
  self:
    include: [self]
`},
			want: []string{
				`policies/groups.yaml:3: member "alice" is neither a Slack user id (U…/W…) nor an e-mail address`,
				`policies/groups.yaml:4: "oncall" is not a Slack user group id (S…)`,
				`policies/groups.yaml:5: group "sre" includes unknown group "nobody" (known: ops, self, sre)`,
				`policies/groups.yaml:8: group include cycle: sre -> ops -> sre`,
				`policies/groups.yaml:10: group "self" includes itself`,
			},
		},
		{
			name: "cedar syntax",
			files: map[string]string{"rules.cedar": `// a comment
permit (principal, action, resource);

permit (
  principal,
  action == ,
  resource
);
`},
			// Cedar reports the token after the missing entity.
			want: []string{`policies/rules.cedar:7: Cedar syntax error at column 3 "resource": expected ident`},
		},
		{
			name: "cedar references",
			files: map[string]string{"rules.cedar": `permit (principal in Tokken::Group::"sre", action == Tokken::Action::"request", resource);

permit (
  principal in Tokken::Group::"sres",
  action == Tokken::Action::"request",
  resource == Tokken::Profile::"prod-ssm"
);

permit (
  principal,
  action == Tokken::Action::"request",
  resource
) when {
  principal in Tokken::Group::"oncall" &&
  resource == Tokken::Profile::"prod-sm"
};

permit (principal, action == Tokken::Action::"aprove", resource);
permit (principal == Tokken::User::"alice@example.com", action, resource);
permit (principal, action == Tokken::Action::"domain_join", resource == Tokken::Instance::"web-01");
`},
			want: []string{
				`policies/rules.cedar:4: unknown group "sres" (groups.yaml defines: oncall, ops, sre)`,
				`policies/rules.cedar:15: unknown profile "prod-sm" (profiles.yaml defines: prod-ssm, staging)`,
				"policies/rules.cedar:18: unrecognized action `Tokken::Action::\"aprove\"`",
				`policies/rules.cedar:18: unable to find an applicable action given the policy scope constraints`,
				`policies/rules.cedar:19: user "alice@example.com" is not a Slack user id (U…/W…); put e-mails in groups.yaml`,
				`policies/rules.cedar:20: "web-01" is not an EC2 instance id`,
			},
		},
		{
			name: "cedar types",
			files: map[string]string{"rules.cedar": `permit (principal, action == Tokken::Action::"request", resource)
when {
  context.duration_minutes <= 60 &&
  context.duraton < 3
};

permit (principal, action == Tokken::Action::"approve", resource)
when { context.requester == principal };
`},
			want: []string{
				"policies/rules.cedar:4: attribute `duraton` in context for Tokken::Action::\"request\" not found",
				"policies/rules.cedar:8: unable to guarantee safety of access to optional attribute `requester` in context for Tokken::Action::\"approve\"",
			},
		},
		{
			name: "annotations",
			files: map[string]string{"rules.cedar": `@id("a")
permit (principal, action == Tokken::Action::"request", resource);

@id("a")
@approval("1")
permit (principal, action == Tokken::Action::"approve", resource);

@approvals("two")
permit (principal, action == Tokken::Action::"domain_join", resource);

@approvals("1")
forbid (principal, action == Tokken::Action::"domain_leave", resource);
`},
			want: []string{
				`policies/rules.cedar:4: @id("a") is already used at policies/rules.cedar:1`,
				`policies/rules.cedar:4: unknown annotation @approval (allowed: @id, @reason, @approvals)`,
				`policies/rules.cedar:8: @approvals("two") must be a whole number from 0 to 10`,
				`policies/rules.cedar:11: @approvals on a forbid rule means nothing: forbid always denies`,
			},
		},
		{
			name:  "no rules",
			files: map[string]string{"rules.cedar": ""},
			want:  []string{`policies: no *.cedar rules: every action would be denied`},
		},
		{
			name:  "missing groups file makes group references unknown",
			files: map[string]string{GroupsFile: ""},
			want:  []string{`policies/rules.cedar:1: unknown group "sre" (groups.yaml defines: none)`},
		},
		{
			name:  "wrong shapes",
			files: map[string]string{ProfilesFile: "- a\n- b\n", GroupsFile: "groups: [sre]\n"},
			want: []string{
				`policies/groups.yaml:1: groups must be a mapping of names to definitions`,
				`policies/profiles.yaml:1: expected a mapping with key "profiles"`,
				`policies/rules.cedar:1: unknown group "sre" (groups.yaml defines: none)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, probs := loadFS(fixture(tt.files), "policies")
			got := make([]string, len(probs))
			for i, p := range probs {
				got[i] = p.String()
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if s != nil {
				t.Error("a Set was returned despite problems")
			}
		})
	}
}

func TestLoadReturnsProblems(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 1 || probs[0].File != dir {
		t.Fatalf("Load(empty dir) = %v, want one Problems entry for %s", err, dir)
	}
	if got := Check(dir); len(got) != 1 {
		t.Errorf("Check(empty dir) = %v", got)
	}
}
