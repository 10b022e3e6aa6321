package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokken/tokken/testkit/awsfake"
)

// `tokken policy check --aws` looks every profile's role up through IAM
// (here the fake, on the real wire) and fails on a role without tokken's
// permissions boundary, naming it.
func TestPolicyCheckLooksRolesUp(t *testing.T) {
	f := awsfake.New(t)
	f.Setenv(t)
	f.IAM().AddGrantableRole("arn:aws:iam::111111111111:role/tokken-prod-readonly")
	f.IAM().AddGrantableRole("arn:aws:iam::111111111111:role/tokken-prod-ssm")
	f.IAM().AddRole("arn:aws:iam::222222222222:role/tokken-staging-admin") // no boundary

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"policy", "check", "--dir", "policies", "--aws"}, testEnv(nil, &stdout, &stderr))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"role arn:aws:iam::111111111111:role/tokken-prod-readonly: may be granted",
		"role arn:aws:iam::222222222222:role/tokken-staging-admin: role arn:aws:iam::222222222222:role/tokken-staging-admin may not be granted: it has no permissions boundary; tokken grants only roles whose permissions boundary is arn:aws:iam::222222222222:policy/tokken-grant-boundary",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	if n := len(f.Calls(awsfake.IAMService, "GetRole")); n != 3 {
		t.Errorf("%d GetRole calls, want one per role (3)", n)
	}

	f.IAM().SetPermissionsBoundary("tokken-staging-admin", "arn:aws:iam::222222222222:policy/"+awsfake.GrantBoundaryName)
	stdout.Reset()
	if code := run(context.Background(), []string{"policy", "check", "--dir", "policies", "--aws"}, testEnv(nil, &stdout, &stderr)); code != 0 {
		t.Errorf("every role bounded: exit %d\n%s", code, stdout.String())
	}
}

// `tokken policy check --aws` looks the permission set of every
// identity-center profile up in IAM Identity Center (the fake, on the real
// wire, on the instance of TOKKEN_IDC_INSTANCE_ARN): one that does not
// exist fails the check, one whose session duration is longer than the
// profile's max_duration is warned about.
func TestPolicyCheckLooksPermissionSetsUp(t *testing.T) {
	f := awsfake.New(t)
	f.Setenv(t)
	for _, role := range []string{"111111111111:role/tokken-prod-readonly", "111111111111:role/tokken-prod-ssm", "222222222222:role/tokken-staging-admin"} {
		f.IAM().AddGrantableRole("arn:aws:iam::" + role)
	}
	inst := f.IdentityCenter().AddInstance(awsfake.IDCInstance{})
	f.IdentityCenter().AddPermissionSet(awsfake.IDCPermissionSet{Name: "AdministratorAccess", SessionDuration: "PT8H"})
	dir := t.TempDir()
	for _, name := range []string{"profiles.yaml", "groups.yaml", "access.cedar", "hours.cedar"} {
		b, err := os.ReadFile(filepath.Join("policies", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "profiles.yaml" {
			b = append(b, `
  prod-idc:
    kind: identity-center
    accounts: [111111111111]
    permission_set: AdministratorAccess
    max_duration: 2h
  sandbox-idc:
    kind: identity-center
    accounts: [333333333333]
    permission_set: PowerUserAccess
    max_duration: 2h
`...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"TOKKEN_IDC_INSTANCE_ARN": inst.ARN, "TOKKEN_IDC_IDENTITY_STORE_ID": inst.IdentityStoreID}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"policy", "check", "--dir", dir, "--aws"}, testEnv(vars, &stdout, &stderr)); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"warning: profile prod-idc: permission set AdministratorAccess: its session duration 8h is longer than the profile's max_duration 2h",
		"profile sandbox-idc: permission set PowerUserAccess: ",
		"role arn:aws:iam::111111111111:role/tokken-prod-readonly: may be granted",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	f.IdentityCenter().AddPermissionSet(awsfake.IDCPermissionSet{Name: "PowerUserAccess", SessionDuration: "PT1H"})
	stdout.Reset()
	if code := run(context.Background(), []string{"policy", "check", "--dir", dir, "--aws"}, testEnv(vars, &stdout, &stderr)); code != 0 ||
		!strings.Contains(stdout.String(), "profile sandbox-idc: permission set PowerUserAccess: found (session duration 1h)") {
		t.Errorf("every permission set found: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// `tokken policy check` vouches for groups.yaml's identity_center_users
// too: an entry that maps nobody, or to nothing Identity Center could
// hold, fails the check with its line.
func TestPolicyCheckIdentityCenterUsers(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"profiles.yaml", "groups.yaml", "access.cedar", "hours.cedar"} {
		b, err := os.ReadFile(filepath.Join("policies", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(mapping string) (int, string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("policies", "groups.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "groups.yaml"), append(b, mapping...), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"policy", "check", "--dir", dir}, testEnv(nil, &stdout, &stderr))
		return code, stdout.String() + stderr.String()
	}
	code, out := check("identity_center_users:\n  jane: jane.doe\n  U0SRE00001: Jane Doe\n")
	for _, want := range []string{
		`identity_center_users: "jane" is neither a Slack user id (U…/W…) nor an e-mail address`,
		`identity_center_users: U0SRE00001 maps to "Jane Doe", which is not an IAM Identity Center user name or e-mail`,
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	if code, out := check("identity_center_users:\n  U0SRE00001: jane.doe\n  Alice@Example.com: alice@corp.example\n"); code != 0 {
		t.Errorf("a valid mapping: exit %d\n%s", code, out)
	}
}
