package awsfake_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/tokken/tokken/testkit/awsfake"
)

// For a role session, aws:userid is "<role id>:<role session name>" while
// Session Manager names a session "<role session name>-<suffix>": a policy
// on session/${aws:userid}-* never matches the caller's own sessions; one on
// session/<session name>-* matches them and no other grant's.
func TestEvaluateSessionOwnership(t *testing.T) {
	const session = "r-7k3q9x0m2c4d"
	ctx := map[string]string{"aws:userid": "AROAEXAMPLEROLEID:" + session, "aws:CurrentTime": "2026-03-04T10:00:00Z"}
	own := "arn:aws:ssm:us-east-1:123456789012:session/" + session + "-0a1b2c3d4e5f6a7b8"
	other := "arn:aws:ssm:us-east-1:123456789012:session/r-000000000000-0a1b2c3d4e5f6a7b8"
	policy := func(resource string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],"Resource":"` + resource + `"}]}`
	}
	cases := []struct {
		name, resource, session string
		want                    awsfake.Decision
	}{
		{"${aws:userid} pattern, own session", "arn:aws:ssm:*:*:session/${aws:userid}-*", own, awsfake.ImplicitDeny},
		{"session name pattern, own session", "arn:aws:ssm:*:*:session/" + session + "-*", own, awsfake.Allowed},
		{"session name pattern, another grant's session", "arn:aws:ssm:*:*:session/" + session + "-*", other, awsfake.ImplicitDeny},
	}
	for _, c := range cases {
		for _, action := range []string{"ssm:TerminateSession", "ssm:ResumeSession"} {
			got, err := awsfake.EvaluatePolicy(policy(c.resource), awsfake.PolicyRequest{Action: action, Resource: c.session, Context: ctx})
			if err != nil || got != c.want {
				t.Errorf("%s, %s: %v, %v; want %v", c.name, action, got, err, c.want)
			}
		}
	}
	// The variable is substituted, not ignored: for an IAM user, whose
	// aws:userid is what the session id starts with, the same pattern does
	// match.
	user := map[string]string{"aws:userid": "AIDAEXAMPLEUSER"}
	if got, err := awsfake.EvaluatePolicy(policy("arn:aws:ssm:*:*:session/${aws:userid}-*"), awsfake.PolicyRequest{
		Action: "ssm:TerminateSession", Resource: "arn:aws:ssm:us-east-1:123456789012:session/AIDAEXAMPLEUSER-0a1b", Context: user}); err != nil || got != awsfake.Allowed {
		t.Errorf("IAM user's own session: %v, %v; want allowed", got, err)
	}
}

func TestEvaluatePolicy(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"},
		{"Sid":"Fence","Effect":"Deny","Action":"*","Resource":["arn:aws:sqs:us-east-1:123456789012:tokken-*","arn:aws:dynamodb:us-east-1:123456789012:table/tokken/*"]},
		{"Sid":"OnlySSM","Effect":"Deny","NotAction":["ssm:*","ec2:Describe*"],"Resource":"arn:aws:ec2:*:*:instance/*"},
		{"Sid":"Start","Effect":"Allow","Action":"ssm:StartSession","Resource":"*","Condition":{"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}},
		{"Sid":"End","Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-03-04T11:00:00Z"}}},
		{"Sid":"NotFromTokken","Effect":"Deny","Action":"s3:PutObject","Resource":"*","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/tokken"}}}
	]}`
	before := map[string]string{"aws:CurrentTime": "2026-03-04T10:00:00Z", "aws:PrincipalArn": "arn:aws:iam::123456789012:role/tokken"}
	after := map[string]string{"aws:CurrentTime": "2026-03-04T11:00:01Z", "aws:PrincipalArn": "arn:aws:iam::123456789012:role/tokken"}
	other := map[string]string{"aws:CurrentTime": "2026-03-04T10:00:00Z", "aws:PrincipalArn": "arn:aws:iam::123456789012:role/someone"}
	cases := []struct {
		action, resource string
		ctx              map[string]string
		want             awsfake.Decision
	}{
		{"s3:GetObject", "arn:aws:s3:::b/k", before, awsfake.Allowed},
		{"S3:GETOBJECT", "arn:aws:s3:::b/k", before, awsfake.Allowed}, // actions are case-insensitive
		{"s3:GetObject", "arn:aws:s3:::b/k", after, awsfake.ExplicitDeny},
		{"sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:tokken-JobQueue-X", before, awsfake.ExplicitDeny},
		{"sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:orders", before, awsfake.Allowed},
		{"dynamodb:Query", "arn:aws:dynamodb:us-east-1:123456789012:table/tokken/index/a", before, awsfake.ExplicitDeny},
		{"ec2:TerminateInstances", "arn:aws:ec2:us-east-1:123456789012:instance/i-1", before, awsfake.ExplicitDeny},
		{"ec2:DescribeInstances", "arn:aws:ec2:us-east-1:123456789012:instance/i-1", before, awsfake.Allowed},
		{"s3:PutObject", "arn:aws:s3:::b/k", before, awsfake.Allowed},
		{"s3:PutObject", "arn:aws:s3:::b/k", other, awsfake.ExplicitDeny},
		{"s3:PutObject", "arn:aws:s3:::b/k", map[string]string{"aws:CurrentTime": "2026-03-04T10:00:00Z"}, awsfake.ExplicitDeny}, // negated, key absent
	}
	for _, c := range cases {
		got, err := awsfake.EvaluatePolicy(doc, awsfake.PolicyRequest{Action: c.action, Resource: c.resource, Context: c.ctx})
		if err != nil || got != c.want {
			t.Errorf("%s on %s: %v, %v; want %v", c.action, c.resource, got, err, c.want)
		}
	}
	if got, _ := awsfake.EvaluatePolicy(`{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`,
		awsfake.PolicyRequest{Action: "s3:PutObject", Resource: "x"}); got != awsfake.ImplicitDeny {
		t.Errorf("an action no statement names: %v, want implicit deny", got)
	}
	// What the evaluator does not understand is an error, never a quiet
	// decision.
	for _, bad := range []string{
		`{"Statement":[{"Effect":"Allow","Action":"*","NotResource":"x"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"a"}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"${*}"}]}`,
		`{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`,
	} {
		if _, err := awsfake.EvaluatePolicy(bad, awsfake.PolicyRequest{Action: "s3:GetObject", Resource: "x",
			Context: map[string]string{"aws:SourceIp": "10.1.1.1", "aws:TagKeys": "a"}}); err == nil {
			t.Errorf("no error for %s", bad)
		}
	}
}

func TestIAMGetRole(t *testing.T) {
	f := awsfake.New(t)
	ctx := context.Background()
	c := iam.NewFromConfig(f.Config(ctx))
	f.IAM().AddRole("arn:aws:iam::123456789012:role/ops/prod-admin")
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("prod-admin")})
	if err != nil {
		t.Fatalf("GetRole: %v", err)
	}
	r := out.Role
	if aws.ToString(r.Arn) != "arn:aws:iam::123456789012:role/ops/prod-admin" || aws.ToString(r.Path) != "/ops/" ||
		!strings.HasPrefix(aws.ToString(r.RoleId), "AROA") || r.PermissionsBoundary != nil || r.CreateDate == nil {
		t.Errorf("role %+v", r)
	}
	const boundary = "arn:aws:iam::123456789012:policy/tokken-grant-boundary"
	f.IAM().SetPermissionsBoundary("prod-admin", boundary)
	out, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("prod-admin")})
	if err != nil {
		t.Fatal(err)
	}
	if pb := out.Role.PermissionsBoundary; pb == nil || aws.ToString(pb.PermissionsBoundaryArn) != boundary || pb.PermissionsBoundaryType != "Policy" {
		t.Errorf("PermissionsBoundary = %+v, want %s", pb, boundary)
	}
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("nope")}); apiCode(err) != "NoSuchEntity" {
		t.Errorf("missing role: %v, want NoSuchEntity", err)
	}
}
