package main

import (
	"bytes"
	"context"
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
