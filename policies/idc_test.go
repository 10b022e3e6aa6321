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
	"github.com/tokken/tokken/bot/access"
)

const idcProfiles = `profiles:
  prod-idc:
    kind: identity-center
    env: prod
    accounts: [111111111111, 222222222222]
    permission_set: AdministratorAccess
    max_duration: 2h
    approvals: 1
  dev-group:
    kind: identity-center
    accounts: 333333333333
    permission_set: arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef
    group: Dev Admins
    max_duration: 4h
`

// Developers may ask for the second account only, without approval.
const idcRules = `permit (principal in Tokken::Group::"sre", action, resource);
@id("dev-idc-222")
@approvals("0")
permit (principal in Tokken::Group::"ops", action == Tokken::Action::"request", resource)
when { resource.kind == "identity-center" && resource.account == "222222222222" && resource.permission_set == "AdministratorAccess" };
`

func TestIDCProfile(t *testing.T) {
	s, probs := loadFS(fixture(map[string]string{ProfilesFile: idcProfiles, "rules.cedar": idcRules,
		GroupsFile: "groups:\n  sre:\n    members: [U0SRE]\n  ops:\n    members: [U0OPS]\n"}), "policies")
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	p, ok := s.Profile("prod-idc")
	if !ok || p.Kind != access.KindIdentityCenter || p.RoleARN != "" {
		t.Fatalf("profile = %+v, %v", p, ok)
	}
	if strings.Join(p.IDC.Accounts, ",") != "111111111111,222222222222" ||
		p.IDC.PermissionSet != "AdministratorAccess" || p.IDC.Group != "" {
		t.Errorf("IDC = %+v", p.IDC)
	}
	g, _ := s.Profile("dev-group")
	if g.IDC.Group != "Dev Admins" || strings.Join(g.IDC.Accounts, ",") != "333333333333" {
		t.Errorf("group profile IDC = %+v", g.IDC)
	}
	ask := func(account string) bot.Decision {
		t.Helper()
		c := map[string]string{}
		if account != "" {
			c[CtxAccount] = account
		}
		d, err := s.Authorize(context.Background(), bot.AuthzQuery{
			Principal: bot.Principal{ID: "U0OPS"}, Action: bot.ActionRequest,
			Profile: "prod-idc", Duration: 30 * time.Minute, Now: time.Now(), Context: c,
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ask("222222222222"); !d.Allow || d.Approvals != 1 || !strings.Contains(strings.Join(d.Reasons, ";"), "dev-idc-222") {
		t.Errorf("ops on 222222222222: %+v (want allowed by dev-idc-222, the profile's 1 approval kept)", d)
	}
	if d := ask("111111111111"); d.Allow {
		t.Errorf("ops on 111111111111 allowed: %+v", d)
	}
	if d := ask(""); d.Allow {
		t.Errorf("ops without an account allowed: %+v", d)
	}
}

func TestIDCProfileProblems(t *testing.T) {
	head := "profiles:\n  e:\n    kind: identity-center\n    max_duration: 1h\n"
	tests := []struct {
		name, profiles string
		want           []string
	}{
		{"missing accounts and permission set", head,
			[]string{`:2: profile "e": identity-center profiles need accounts`, `:2: profile "e": identity-center profiles need permission_set`}},
		{"bad values", head + "    accounts: [1234, 111111111111, 111111111111]\n    permission_set: 'Admin Access'\n    instance_arn: arn:aws:sso:::instance/x\n    group: ' x'\n",
			[]string{`:5: accounts: "1234" is not a 12-digit AWS account id`, `:5: accounts: 111111111111 is listed twice`,
				`:6: permission_set "Admin Access" is neither`, `:7: unknown key "instance_arn" in profile "e"`, `:8: group " x" is not`}},
		{"role on identity-center", head + "    accounts: [111111111111]\n    permission_set: ReadOnly\n    role_arn: arn:aws:iam::111111111111:role/r\n",
			[]string{`:7: role_arn does not apply to identity-center profiles`}},
		{"accounts on sts", "profiles:\n  e:\n    kind: sts\n    role_arn: arn:aws:iam::111111111111:role/r\n    max_duration: 1h\n    accounts: [111111111111]\n",
			[]string{`:6: accounts only applies to identity-center profiles; profile "e" is sts`}},
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

// TestIDCPolicyCheckAWS runs `tokken policy check --aws` on identity-center
// profiles: a permission set whose session duration is longer than the
// profile's maximum is warned about, one that cannot be found fails.
func TestIDCPolicyCheckAWS(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{ProfilesFile: idcProfiles, GroupsFile: baseGroups, "rules.cedar": idcRules} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(data, `"ops"`, `"sre"`)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	durations := map[string]time.Duration{"AdministratorAccess": 8 * time.Hour}
	opts := CheckOptions{
		Roles: func(context.Context, string) error {
			t.Error("a role was checked for identity-center profiles")
			return nil
		},
		PermissionSets: func(_ context.Context, ps string) (access.PermissionSet, error) {
			d, ok := durations[ps]
			if !ok {
				return access.PermissionSet{}, errors.New("no such permission set")
			}
			return access.PermissionSet{Name: ps, SessionDuration: d}, nil
		},
	}
	var out, errOut bytes.Buffer
	code := RunCLI(context.Background(), []string{"check", "--dir", dir, "--aws"}, &out, &errOut, opts)
	if code != 1 || !strings.Contains(out.String(), "profile dev-group: permission set arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef: no such permission set") {
		t.Errorf("check --aws with a missing permission set: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "warning: profile prod-idc: permission set AdministratorAccess: its session duration 8h is longer than the profile's max_duration 2h") {
		t.Errorf("no warning about the session duration:\n%s", out.String())
	}
	durations["arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef"] = time.Hour
	durations["AdministratorAccess"] = time.Hour
	out.Reset()
	if code := RunCLI(context.Background(), []string{"check", "--dir", dir, "--aws"}, &out, &errOut, opts); code != 0 || strings.Contains(out.String(), "warning") {
		t.Errorf("check --aws with short sessions: exit %d\n%s", code, out.String())
	}
}

func TestIDCUsersMapping(t *testing.T) {
	groups := baseGroups + `identity_center_users:
  U0CAROL: carol.jones
  Dave@Example.com: dave@corp.example.com
  U0DAVE: d.jones
`
	s, probs := loadFS(fixture(map[string]string{GroupsFile: groups}), "policies")
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	for _, tt := range []struct {
		who  bot.Principal
		want string
		ok   bool
	}{
		{bot.Principal{ID: "U0CAROL", Email: "carol@example.com"}, "carol.jones", true},
		{bot.Principal{ID: "U0OTHER", Email: "DAVE@example.com"}, "dave@corp.example.com", true}, // e-mails compared case-insensitively
		{bot.Principal{ID: "U0DAVE", Email: "dave@example.com"}, "d.jones", true},                // the Slack user id first
		{bot.Principal{ID: "U0SRE", Email: "sre@example.com"}, "", false},
		{bot.Principal{ID: "U0NOBODY"}, "", false},
	} {
		if got, ok := s.IdentityCenterUser(tt.who); got != tt.want || ok != tt.ok {
			t.Errorf("IdentityCenterUser(%+v) = %q, %v; want %q, %v", tt.who, got, ok, tt.want, tt.ok)
		}
	}
	// groups.yaml may hold only the mapping, or an empty one.
	for _, g := range []string{"identity_center_users:\n  U0CAROL: carol.jones\n", "groups:\n  sre:\n    members: [U0SRE]\nidentity_center_users:\n"} {
		if _, probs := loadFS(fixture(map[string]string{GroupsFile: g, "rules.cedar": "permit (principal, action, resource);\n"}), "policies"); len(probs) > 0 {
			t.Errorf("%q: %v", g, probs)
		}
	}
}

func TestIDCUsersProblems(t *testing.T) {
	tests := []struct {
		name, groups string
		want         []string
	}{
		{"bad entries", "identity_center_users:\n  alice: alice.smith\n  U0BOB: bob smith\n  U0CAROL: [carol]\n  U0DAVE: ''\n",
			[]string{`:2: identity_center_users: "alice" is neither a Slack user id (U…/W…) nor an e-mail address`,
				`:3: identity_center_users: U0BOB maps to "bob smith", which is not an IAM Identity Center user name or e-mail (1-128 characters, no spaces)`,
				`:4: identity_center_users: U0CAROL must be a single value`,
				`:5: identity_center_users: U0DAVE maps to "", which is not`}},
		{"mapped twice", "identity_center_users:\n  eve@example.com: eve\n  EVE@example.com: eve2\n  U0EVE: a\n  U0EVE: b\n",
			[]string{`:3: identity_center_users: EVE@example.com is mapped twice (first at line 2)`, `:5: duplicate key "U0EVE" (first at line 4)`}},
		{"not a mapping", "identity_center_users: [U0ALICE]\n",
			[]string{`:1: identity_center_users must be a mapping of Slack user ids or e-mails to IAM Identity Center users`}},
		{"unknown top key", "identity_centre_users:\n  U0ALICE: alice\n",
			[]string{`:1: unknown key "identity_centre_users" (allowed: groups, identity_center_users)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := loadFS(fixture(map[string]string{GroupsFile: tt.groups}), "policies")
			got := probs.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems lack %q:\n%s", w, got)
				}
			}
		})
	}
}
