package awsgrant_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
)

func TestCheckRole(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	const bare = "arn:aws:iam::" + awsfake.AccountID + ":role/bare"
	const other = "arn:aws:iam::" + awsfake.AccountID + ":role/team/other"
	w.f.IAM().AddRole(bare)
	w.f.IAM().AddRole(other)
	w.f.IAM().SetPermissionsBoundary("other", "arn:aws:iam::aws:policy/AdministratorAccess")

	if err := w.g.CheckRole(ctx, roleARN); err != nil {
		t.Errorf("bounded role: %v", err)
	}
	cases := []struct{ role, why string }{
		{bare, "it has no permissions boundary"},
		{other, "its permissions boundary is arn:aws:iam::aws:policy/AdministratorAccess"},
		{"arn:aws:iam::" + awsfake.AccountID + ":role/gone", "it does not exist"},
		{"arn:aws:iam::" + awsfake.AccountID + ":user/alice", "is not an IAM role ARN"},
	}
	for _, c := range cases {
		err := w.g.CheckRole(ctx, c.role)
		var ng *access.ErrRoleNotGrantable
		if !errors.As(err, &ng) || ng.Role != c.role || ng.Boundary != boundaryARN || !strings.Contains(ng.Why, c.why) {
			t.Errorf("CheckRole(%s) = %v, want ErrRoleNotGrantable naming the role, %s and %q", c.role, err, boundaryARN, c.why)
		}
	}

	// A configured boundary is the one required.
	custom := "arn:aws:iam::" + awsfake.AccountID + ":policy/org/grant-ceiling"
	opts := w.opts
	opts.Boundary = custom
	g := awsgrant.New(w.f.Config(ctx), opts)
	var ng *access.ErrRoleNotGrantable
	if err := g.CheckRole(ctx, roleARN); !errors.As(err, &ng) || ng.Boundary != custom {
		t.Errorf("with Options.Boundary %s, the default boundary passed: %v", custom, err)
	}
	w.f.IAM().SetPermissionsBoundary("bare", custom)
	if err := g.CheckRole(ctx, bare); err != nil {
		t.Errorf("role with the configured boundary: %v", err)
	}

	// IAM throttling is retried; IAM down is an error to retry later, not a
	// refusal.
	w.f.Fail(awsfake.IAMService, "GetRole", 1, awsfake.Throttle)
	if err := w.g.CheckRole(ctx, roleARN); err != nil {
		t.Errorf("after one throttle: %v", err)
	}
	w.f.Fail(awsfake.IAMService, "GetRole", 10, awsfake.Internal)
	err := w.g.CheckRole(ctx, roleARN)
	if err == nil || errors.As(err, &ng) || bot.IsPermanent(err) {
		t.Errorf("IAM down: %v, want a retryable error that is not a refusal", err)
	}
}

// Issue re-checks the boundary before AssumeRole: a role that lost it is
// refused for good, and nothing is assumed.
func TestIssueRefusesARoleWithoutTheBoundary(t *testing.T) {
	w := newWorld(t)
	w.f.IAM().SetPermissionsBoundary(roleName, "")
	now := w.clock.Now()
	spec, err := access.NewGrantSpec(request("r-7k3q9x0m2c4d", access.KindSTS), now.Add(time.Hour), now, "aws")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.g.Issue(context.Background(), spec)
	var ng *access.ErrRoleNotGrantable
	if !errors.As(err, &ng) || !bot.IsPermanent(err) || !strings.Contains(err.Error(), roleARN) || !strings.Contains(err.Error(), boundaryARN) {
		t.Fatalf("Issue = %v, want a permanent refusal naming %s and %s", err, roleARN, boundaryARN)
	}
	if n := len(w.f.STS().AssumedRoles()); n != 0 {
		t.Errorf("%d AssumeRole calls for a role without the boundary", n)
	}
}

// protected is a realistic fence: the resources template.yaml names.
var protected = []string{
	"arn:aws:secretsmanager:us-east-1:" + awsfake.AccountID + ":secret:SlackSecret-AbCdEfGhIjKl-AbCdEf",
	"arn:aws:dynamodb:us-east-1:" + awsfake.AccountID + ":table/tokken",
	"arn:aws:dynamodb:us-east-1:" + awsfake.AccountID + ":table/tokken/*",
	"arn:aws:sqs:us-east-1:" + awsfake.AccountID + ":tokken-JobQueue-AbCdEfGhIjKl",
	"arn:aws:sqs:us-east-1:" + awsfake.AccountID + ":tokken-JobDeadLetterQueue-AbCdEfGhIjKl",
	"arn:aws:scheduler:us-east-1:" + awsfake.AccountID + ":schedule-group/tokken-timers",
	"arn:aws:scheduler:us-east-1:" + awsfake.AccountID + ":schedule/tokken-timers/*",
	"arn:aws:iam::" + awsfake.AccountID + ":role/tokken-IngressFunctionRole-AbCdEfGhIjKl",
	"arn:aws:iam::" + awsfake.AccountID + ":role/tokken-WorkerFunctionRole-AbCdEfGhIjKl",
	"arn:aws:iam::" + awsfake.AccountID + ":role/tokken-SchedulerRole-AbCdEfGhIjKl",
	"arn:aws:lambda:us-east-1:" + awsfake.AccountID + ":function:tokken-IngressFunction-AbCdEfGhIjKl",
	"arn:aws:sns:us-east-1:" + awsfake.AccountID + ":tokken-AlarmTopic-AbCdEfGhIjKl",
	"arn:aws:kms:us-east-1:" + awsfake.AccountID + ":key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
	"arn:aws:logs:us-east-1:" + awsfake.AccountID + ":log-group:tokken-IngressLogGroup-AbCdEfGhIjKl:*",
	"arn:aws:logs:us-east-1:" + awsfake.AccountID + ":log-group:tokken-WorkerLogGroup-AbCdEfGhIjKl:*",
	"arn:aws:lambda:us-east-1:*:function:tokken-WorkerFunction-AbCdEfGhIjKl",
}

// The session policy on the wire fences tokken's own resources, for either
// kind of grant, and the decision it makes is the one intended: the grant
// may use its role (sts) or its sessions (ssm), never tokken's secret,
// table, queues, schedules, roles or functions.
func TestIssuedPolicyFencesTokkensResources(t *testing.T) {
	type ask struct {
		action, resource string
		want             awsfake.Decision
	}
	fenced := []ask{
		{"secretsmanager:GetSecretValue", protected[0], awsfake.ExplicitDeny},
		{"secretsmanager:PutResourcePolicy", protected[0], awsfake.ExplicitDeny},
		{"dynamodb:PutItem", protected[1], awsfake.ExplicitDeny},
		{"dynamodb:Query", protected[1] + "/index/gsi1", awsfake.ExplicitDeny},
		{"sqs:SendMessage", protected[3], awsfake.ExplicitDeny},
		{"sqs:SetQueueAttributes", protected[4], awsfake.ExplicitDeny},
		{"scheduler:CreateSchedule", "arn:aws:scheduler:us-east-1:" + awsfake.AccountID + ":schedule/tokken-timers/x", awsfake.ExplicitDeny},
		{"lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:" + awsfake.AccountID + ":function:tokken-WorkerFunction-AbCdEfGhIjKl", awsfake.ExplicitDeny},
		{"lambda:InvokeFunction", protected[10], awsfake.ExplicitDeny},
		{"sns:DeleteTopic", protected[11], awsfake.ExplicitDeny},
		{"logs:DeleteLogGroup", protected[14], awsfake.ExplicitDeny},
	}
	cases := []struct {
		kind    access.Kind
		targets []string
		asks    []ask
	}{
		{access.KindSTS, nil, append([]ask{
			{"s3:GetObject", "arn:aws:s3:::reports/q1.csv", awsfake.Allowed},
			{"dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:" + awsfake.AccountID + ":table/orders", awsfake.Allowed},
		}, fenced...)},
		{access.KindSSM, []string{web1}, append([]ask{
			{"ssm:StartSession", "arn:aws:ec2:us-east-1:" + awsfake.AccountID + ":instance/" + web1, awsfake.Allowed},
		}, fenced...)},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			w := newWorld(t)
			now := w.clock.Now()
			spec, err := access.NewGrantSpec(request("r-7k3q9x0m2c4d", c.kind, c.targets...), now.Add(time.Hour), now, "aws", protected...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.g.Issue(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			wire := w.f.STS().AssumedRoles()[0].Policy
			ctx := map[string]string{"aws:userid": "AROAEXAMPLE:r-7k3q9x0m2c4d", "aws:CurrentTime": now.Add(time.Minute).Format(time.RFC3339),
				"ssm:SessionDocumentAccessCheck": "true"}
			for _, a := range c.asks {
				got, err := awsfake.EvaluatePolicy(wire, awsfake.PolicyRequest{Action: a.action, Resource: a.resource, Context: ctx})
				if err != nil || got != a.want {
					t.Errorf("%s on %s: %v, %v; want %v\npolicy: %s", a.action, a.resource, got, err, a.want, wire)
				}
			}
		})
	}
}

// An ssm grant can end and resume its own Session Manager sessions, and no
// other grant's: the decision is made by the fake SSM against the session
// policy STS received, on the real wire.
func TestGrantEndsAndResumesItsOwnSessions(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := request("r-7k3q9x0m2c4d", access.KindSSM, web1)
	_, creds := w.issue(t, r, 30*time.Minute)
	c := ssm.NewFromConfig(w.f.ConfigFor(ctx, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken))

	mine := startSessions(t, w.f, creds, 2, web1)
	if !strings.HasPrefix(mine[0], r.ID+"-") {
		t.Fatalf("session id %s does not start with the role session name %s", mine[0], r.ID)
	}
	if _, err := c.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(mine[0])}); err != nil {
		t.Errorf("ResumeSession of its own session: %v", err)
	}
	if _, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(mine[1])}); err != nil {
		t.Errorf("TerminateSession of its own session: %v", err)
	}
	if got := activeIDs(w.f); len(got) != 1 || got[0] != mine[0] {
		t.Errorf("active sessions %v, want only %s", got, mine[0])
	}

	// Another grant's session on the same role and instance.
	theirs := w.f.SSM().OpenSession(web1, "arn:aws:sts::"+awsfake.AccountID+":assumed-role/"+roleName+"/r-000000000000")
	for name, call := range map[string]func() error{
		"TerminateSession": func() error {
			_, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(theirs)})
			return err
		},
		"ResumeSession": func() error {
			_, err := c.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(theirs)})
			return err
		},
	} {
		var ae smithy.APIError
		if err := call(); !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Errorf("%s of another grant's session: %v, want AccessDeniedException", name, err)
		}
	}
	if got := activeIDs(w.f); len(got) != 2 {
		t.Errorf("another grant's session was ended: active %v", got)
	}
}
