package awsfake_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/testkit/awsfake"
)

// apiCode returns the AWS error code of err ("" if err is not an API error).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestEnvEndpoints checks that the SDK's own default config loading honours
// the variables Env returns, for every faked service: each client, built
// from config.LoadDefaultConfig alone, reaches the fake.
func TestEnvEndpoints(t *testing.T) {
	f := awsfake.New(t)
	f.Setenv(t)
	env := f.Env()
	for _, v := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SSM",
		"AWS_ENDPOINT_URL_SCHEDULER", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SECRETS_MANAGER"} {
		if env[v] != f.URL() {
			t.Errorf("Env()[%s] = %q, want %q", v, env[v], f.URL())
		}
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.SQS().CreateQueue("jobs")
	f.SecretsManager().Put("tokken/slack", `{"signing_secret":"s"}`)
	calls := []struct {
		service string
		call    func() error
	}{
		{awsfake.STSService, func() error {
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{awsfake.EC2Service, func() error {
			_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}},
		{awsfake.SSMService, func() error {
			_, err := ssm.NewFromConfig(cfg).DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
			return err
		}},
		{awsfake.SchedulerService, func() error {
			_, err := scheduler.NewFromConfig(cfg).ListSchedules(ctx, &scheduler.ListSchedulesInput{})
			return err
		}},
		{awsfake.SQSService, func() error {
			_, err := sqs.NewFromConfig(cfg).GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
			return err
		}},
		{awsfake.SecretsManagerService, func() error {
			_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("tokken/slack")})
			return err
		}},
	}
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Errorf("%s through AWS_ENDPOINT_URL_*: %v", c.service, err)
		}
		if n := len(f.Calls(c.service, "")); n != 1 {
			t.Errorf("%s: fake recorded %d calls, want 1", c.service, n)
		}
	}
}

func TestAssumeRole(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	f.SetNow(func() time.Time { return now })
	client := sts.NewFromConfig(f.Config(ctx))
	role := "arn:aws:iam::210987654321:role/prod-ssm"

	out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:           aws.String(role),
		RoleSessionName:   aws.String("tokken-alice-r1"),
		DurationSeconds:   aws.Int32(900),
		Policy:            aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`),
		PolicyArns:        []ststypes.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::aws:policy/ReadOnlyAccess")}},
		SourceIdentity:    aws.String("alice@example.com"),
		Tags:              []ststypes.Tag{{Key: aws.String("tokken:request"), Value: aws.String("r1")}},
		TransitiveTagKeys: []string{"tokken:request"},
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	if got, want := aws.ToString(out.AssumedRoleUser.Arn), "arn:aws:sts::210987654321:assumed-role/prod-ssm/tokken-alice-r1"; got != want {
		t.Errorf("assumed role arn = %q, want %q", got, want)
	}
	if got, want := aws.ToTime(out.Credentials.Expiration), now.Add(15*time.Minute); !got.Equal(want) {
		t.Errorf("expiration = %v, want %v", got, want)
	}
	if aws.ToString(out.SourceIdentity) != "alice@example.com" {
		t.Errorf("source identity = %q", aws.ToString(out.SourceIdentity))
	}
	if out.PackedPolicySize == nil || *out.PackedPolicySize <= 0 {
		t.Errorf("packed policy size = %v, want a positive percentage", out.PackedPolicySize)
	}
	rec := f.STS().AssumedRoles()
	if len(rec) != 1 {
		t.Fatalf("recorded %d AssumeRole calls, want 1", len(rec))
	}
	r := rec[0]
	if r.RoleARN != role || r.DurationSeconds != 900 || r.Tags["tokken:request"] != "r1" ||
		len(r.PolicyARNs) != 1 || r.PolicyARNs[0] != "arn:aws:iam::aws:policy/ReadOnlyAccess" ||
		len(r.TransitiveTagKeys) != 1 || r.CallerARN != awsfake.CallerARN || !strings.Contains(r.Policy, "Deny") {
		t.Errorf("recorded call = %+v", r)
	}

	// The issued credentials act as the assumed role...
	assumed := f.ConfigFor(ctx, aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	id, err := sts.NewFromConfig(assumed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity as assumed role: %v", err)
	}
	if aws.ToString(id.Arn) != aws.ToString(out.AssumedRoleUser.Arn) || aws.ToString(id.Account) != "210987654321" {
		t.Errorf("caller identity = %s in %s", aws.ToString(id.Arn), aws.ToString(id.Account))
	}
	// ...until they expire.
	now = now.Add(15 * time.Minute)
	_, err = sts.NewFromConfig(assumed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if apiCode(err) != "ExpiredToken" {
		t.Errorf("GetCallerIdentity after expiry: err = %v, want ExpiredToken", err)
	}
}

func TestAssumeRoleValidation(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	client := sts.NewFromConfig(f.Config(ctx))
	role := "arn:aws:iam::123456789012:role/admin"
	f.STS().SetMaxSessionDuration(role, 43200)
	f.STS().AddCaller("AKIAFAKEUSER", "arn:aws:iam::123456789012:user/ops")
	user := sts.NewFromConfig(f.ConfigFor(ctx, "AKIAFAKEUSER", "x", ""))

	tests := []struct {
		name   string
		client *sts.Client
		in     sts.AssumeRoleInput
		code   string
	}{
		{"too short", client, sts.AssumeRoleInput{DurationSeconds: aws.Int32(899)}, "ValidationError"},
		{"chained over an hour", client, sts.AssumeRoleInput{DurationSeconds: aws.Int32(3601)}, "ValidationError"},
		{"chained at an hour", client, sts.AssumeRoleInput{DurationSeconds: aws.Int32(3600)}, ""},
		{"user over an hour", user, sts.AssumeRoleInput{DurationSeconds: aws.Int32(7200)}, ""},
		{"user over role max", user, sts.AssumeRoleInput{DurationSeconds: aws.Int32(43201)}, "ValidationError"},
		{"bad session name", client, sts.AssumeRoleInput{RoleSessionName: aws.String("alice smith")}, "ValidationError"},
		{"one-char session name", client, sts.AssumeRoleInput{RoleSessionName: aws.String("a")}, "ValidationError"},
		{"policy too long", client, sts.AssumeRoleInput{Policy: aws.String(`{"a":"` + strings.Repeat("x", 2048) + `"}`)}, "ValidationError"},
		{"policy not JSON", client, sts.AssumeRoleInput{Policy: aws.String(`{`)}, "MalformedPolicyDocument"},
		{"packed too large", client, sts.AssumeRoleInput{
			Policy: aws.String(`{"a":"` + strings.Repeat("x", 2000) + `"}`),
			Tags:   []ststypes.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 200))}},
		}, "PackedPolicyTooLarge"},
		{"bad source identity", client, sts.AssumeRoleInput{SourceIdentity: aws.String("aws:alice")}, "ValidationError"},
		{"bad role arn", client, sts.AssumeRoleInput{RoleArn: aws.String("admin")}, "ValidationError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.RoleArn == nil {
				in.RoleArn = aws.String(role)
			}
			if in.RoleSessionName == nil {
				in.RoleSessionName = aws.String("tokken-test")
			}
			_, err := tc.client.AssumeRole(ctx, &in)
			if got := apiCode(err); got != tc.code {
				t.Errorf("error code = %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}

func TestUnknownAccessKey(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	cfg := f.ConfigFor(ctx, "AKIAUNKNOWN", "x", "")
	_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if apiCode(err) != "InvalidClientTokenId" {
		t.Errorf("STS: %v, want InvalidClientTokenId", err)
	}
	_, err = ssm.NewFromConfig(cfg).DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
	if apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("SSM: %v, want UnrecognizedClientException", err)
	}
}

func TestEC2(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	client := ec2.NewFromConfig(f.Config(ctx))
	f.EC2().AddInstance(awsfake.Instance{ID: "i-0123456789abcdef0", Name: "web-1", Platform: "windows", Tags: map[string]string{"tokken:domain": "join"}})
	f.EC2().AddInstance(awsfake.Instance{ID: "i-0123456789abcdef1", Name: "db-1", State: "stopped"})
	f.EC2().AddInstance(awsfake.Instance{ID: "i-0123abcd", Name: "web-2"})

	ids := func(out *ec2.DescribeInstancesOutput) []string {
		var s []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				s = append(s, aws.ToString(in.InstanceId))
			}
		}
		return s
	}
	tests := []struct {
		name    string
		in      ec2.DescribeInstancesInput
		want    string
		errCode string
	}{
		{"all", ec2.DescribeInstancesInput{}, "i-0123456789abcdef0,i-0123456789abcdef1,i-0123abcd", ""},
		{"by id", ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123abcd"}}, "i-0123abcd", ""},
		{"tag wildcard", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{"web-*"}}}}, "i-0123456789abcdef0,i-0123abcd", ""},
		{"tag-key", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"tokken:domain"}}}}, "i-0123456789abcdef0", ""},
		{"platform and state", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("platform"), Values: []string{"windows"}},
			{Name: aws.String("instance-state-name"), Values: []string{"running"}},
		}}, "i-0123456789abcdef0", ""},
		{"instance-id filter", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{"i-0123456789abcdef1"}}}}, "i-0123456789abcdef1", ""},
		{"not found", ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef9"}}, "", "InvalidInstanceID.NotFound"},
		{"malformed", ec2.DescribeInstancesInput{InstanceIds: []string{"web-1"}}, "", "InvalidInstanceID.Malformed"},
		{"bad filter", ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}}, "", "InvalidParameterValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := client.DescribeInstances(ctx, &tc.in)
			if got := apiCode(err); got != tc.errCode {
				t.Fatalf("error = %v, want code %q", err, tc.errCode)
			}
			if err != nil {
				return
			}
			if got := strings.Join(ids(out), ","); got != tc.want {
				t.Errorf("instances = %s, want %s", got, tc.want)
			}
		})
	}

	// Decoded fields.
	out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	if err != nil {
		t.Fatal(err)
	}
	in := out.Reservations[0].Instances[0]
	// EC2 sends "windows" on the wire although the SDK's enum constant
	// PlatformValuesWindows is "Windows": compare with the wire value.
	if in.Platform != "windows" || in.State.Name != ec2types.InstanceStateNameRunning || aws.ToInt32(in.State.Code) != 16 || len(in.Tags) != 2 {
		t.Errorf("decoded instance = platform %q state %s/%d, %d tags", in.Platform, in.State.Name, aws.ToInt32(in.State.Code), len(in.Tags))
	}

	// Pagination round-trips NextToken.
	var pages, seen int
	p := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		seen += len(ids(page))
	}
	if pages != 1 || seen != 3 {
		t.Errorf("paginated: %d pages, %d instances", pages, seen)
	}

	// Tags and reboots.
	if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-0123abcd"}, Tags: []ec2types.Tag{{Key: aws.String("tokken:domain"), Value: aws.String("leave")}}}); err != nil {
		t.Fatal(err)
	}
	if got := f.EC2().Tags("i-0123abcd")["tokken:domain"]; got != "leave" {
		t.Errorf("tag after CreateTags = %q", got)
	}
	if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-0123abcd"}, Tags: []ec2types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("reserved tag key: %v", err)
	}
	if _, err := client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{"i-0123abcd"}, Tags: []ec2types.Tag{{Key: aws.String("tokken:domain")}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.EC2().Tags("i-0123abcd")["tokken:domain"]; ok {
		t.Error("tag still present after DeleteTags")
	}
	if _, err := client.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{"i-0123abcd"}}); err != nil {
		t.Fatal(err)
	}
	if n := f.EC2().RebootCount("i-0123abcd"); n != 1 {
		t.Errorf("reboot count = %d", n)
	}
	if _, err := client.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{"i-0123456789abcdef9"}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("reboot unknown: %v", err)
	}
}

func TestSSMSessions(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	f.EC2().AddInstance(awsfake.Instance{ID: "i-0123abcd"})
	worker := ssm.NewFromConfig(f.Config(ctx))

	// Alice assumes a role and opens a session with it.
	out, err := sts.NewFromConfig(f.Config(ctx)).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/ssm"), RoleSessionName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	alice := ssm.NewFromConfig(f.ConfigFor(ctx, aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)))
	started, err := alice.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-0123abcd")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(started.SessionId), "alice-") {
		t.Errorf("session id %q does not start with the role session name", aws.ToString(started.SessionId))
	}
	other := f.SSM().OpenSession("i-0123abcd", "arn:aws:sts::123456789012:assumed-role/ssm/bob")
	if _, err := alice.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-0fffffff")}); apiCode(err) != "TargetNotConnected" {
		t.Errorf("session to unknown instance: %v", err)
	}

	owner := aws.ToString(out.AssumedRoleUser.Arn)
	list := func(state ssmtypes.SessionState, filters ...ssmtypes.SessionFilter) []string {
		t.Helper()
		out, err := worker.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: state, Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range out.Sessions {
			if s.StartDate == nil || aws.ToString(s.Owner) == "" {
				t.Errorf("session %s decoded without start date or owner", aws.ToString(s.SessionId))
			}
			ids = append(ids, aws.ToString(s.SessionId))
		}
		return ids
	}
	byOwner := ssmtypes.SessionFilter{Key: ssmtypes.SessionFilterKeyOwner, Value: aws.String(owner)}
	byTarget := ssmtypes.SessionFilter{Key: ssmtypes.SessionFilterKeyTargetId, Value: aws.String("i-0123abcd")}
	if got := list(ssmtypes.SessionStateActive, byOwner); len(got) != 1 || got[0] != aws.ToString(started.SessionId) {
		t.Errorf("active sessions of alice = %v", got)
	}
	if got := list(ssmtypes.SessionStateActive, byTarget); len(got) != 2 {
		t.Errorf("active sessions on target = %v, want 2", got)
	}

	if _, err := worker.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: started.SessionId}); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String("nobody-0123456789abcdef0")}); err != nil {
		t.Errorf("terminate unknown session: %v, want success like SSM", err)
	}
	if got := list(ssmtypes.SessionStateActive, byTarget); len(got) != 1 || got[0] != other {
		t.Errorf("active after terminate = %v, want [%s]", got, other)
	}
	if got := list(ssmtypes.SessionStateHistory, byOwner); len(got) != 1 {
		t.Errorf("history of alice = %v", got)
	}
	if _, err := worker.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: "Open"}); apiCode(err) != "ValidationException" {
		t.Errorf("bad state: %v", err)
	}
}

func TestScheduler(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	f.Scheduler().CreateGroup("tokken")
	_, queueARN := f.SQS().CreateQueue("jobs")
	client := scheduler.NewFromConfig(f.Config(ctx))

	in := func(name, expr string) *scheduler.CreateScheduleInput {
		return &scheduler.CreateScheduleInput{
			Name: aws.String(name), GroupName: aws.String("tokken"),
			ScheduleExpression:         aws.String(expr),
			ScheduleExpressionTimezone: aws.String("UTC"),
			FlexibleTimeWindow:         &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
			ActionAfterCompletion:      schedtypes.ActionAfterCompletionDelete,
			Target: &schedtypes.Target{
				Arn: aws.String(queueARN), RoleArn: aws.String("arn:aws:iam::123456789012:role/scheduler"),
				Input:       aws.String(`{"id":"t1"}`),
				RetryPolicy: &schedtypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(86400)},
			},
		}
	}
	if _, err := client.CreateSchedule(ctx, in("expire-r1", "at(2026-11-22T03:15:00)")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   *scheduler.CreateScheduleInput
		code string
	}{
		{"duplicate", in("expire-r1", "at(2026-11-22T03:15:00)"), "ConflictException"},
		{"bad name", in("expire/r1", "at(2026-11-22T03:15:00)"), "ValidationException"},
		{"bad at", in("x", "at(2026-11-22 03:15)"), "ValidationException"},
		{"no group", func() *scheduler.CreateScheduleInput {
			i := in("y", "at(2026-11-22T03:15:00)")
			i.GroupName = aws.String("nope")
			return i
		}(), "ResourceNotFoundException"},
		{"retries", func() *scheduler.CreateScheduleInput {
			i := in("z", "at(2026-11-22T03:15:00)")
			i.Target.RetryPolicy.MaximumRetryAttempts = aws.Int32(186)
			return i
		}(), "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.CreateSchedule(ctx, tc.in)
			if got := apiCode(err); got != tc.code {
				t.Errorf("error = %v, want %s", err, tc.code)
			}
		})
	}

	got, err := client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("expire-r1"), GroupName: aws.String("tokken")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Target.Input) != `{"id":"t1"}` || got.FlexibleTimeWindow.Mode != schedtypes.FlexibleTimeWindowModeOff || got.CreationDate == nil {
		t.Errorf("GetSchedule = %+v", got)
	}
	list, err := client.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String("tokken")})
	if err != nil || len(list.Schedules) != 1 {
		t.Fatalf("ListSchedules = %v, %v", list, err)
	}
	if _, err := client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("nope"), GroupName: aws.String("tokken")}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("get unknown: %v", err)
	}

	// Firing delivers the input to SQS and deletes the schedule.
	fired, err := f.Scheduler().FireDue("tokken", time.Date(2026, 11, 22, 3, 15, 0, 0, time.UTC))
	if err != nil || len(fired) != 1 {
		t.Fatalf("FireDue = %v, %v", fired, err)
	}
	msgs := f.SQS().Drain("jobs")
	if len(msgs) != 1 || msgs[0].Body != `{"id":"t1"}` {
		t.Errorf("queue after fire = %+v", msgs)
	}
	if _, ok := f.Scheduler().Get("tokken", "expire-r1"); ok {
		t.Error("schedule with ActionAfterCompletion DELETE still exists after firing")
	}
	if _, err := client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("expire-r1"), GroupName: aws.String("tokken")}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("delete fired schedule: %v", err)
	}
}

func TestSQS(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	url, _ := f.SQS().CreateQueue("jobs")
	client := sqs.NewFromConfig(f.Config(ctx))

	got, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Fatalf("GetQueueUrl = %v, %v", got, err)
	}
	_, err = client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	var dne *sqstypes.QueueDoesNotExist
	if !errors.As(err, &dne) {
		t.Errorf("unknown queue: %v, want *types.QueueDoesNotExist", err)
	}

	// The SDK validates MD5OfMessageBody on send and receive.
	attrs := map[string]sqstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("access.expire")}}
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(`{"id":"1"}`), MessageAttributes: attrs}); err != nil {
		t.Fatal(err)
	}
	batch, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String(`{"id":"2"}`)},
		{Id: aws.String("b"), MessageBody: aws.String("bad \x01 body")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Successful) != 1 || len(batch.Failed) != 1 || aws.ToString(batch.Failed[0].Code) != "InvalidMessageContents" {
		t.Errorf("batch = %+v", batch)
	}
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strings.Repeat("x", awsfake.DefaultMaxMessageSize+1))}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("oversized message: %v", err)
	}

	recv, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(recv.Messages) != 2 || aws.ToString(recv.Messages[0].MessageAttributes["kind"].StringValue) != "access.expire" {
		t.Fatalf("received %+v", recv.Messages)
	}
	// In flight: not received again.
	again, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(again.Messages) != 0 {
		t.Errorf("second receive = %v, %v; want no messages while in flight", again, err)
	}
	for _, m := range recv.Messages {
		if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.SQS().Messages("jobs")); n != 0 {
		t.Errorf("%d messages left after delete", n)
	}
	if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("garbage!")}); apiCode(err) != "ReceiptHandleIsInvalid" {
		t.Errorf("bad receipt handle: %v", err)
	}
}

// TestSQSLongPoll checks that a long-polling receive returns as soon as a
// message arrives.
func TestSQSLongPoll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := awsfake.New(t)
	url, _ := f.SQS().CreateQueue("jobs")
	client := sqs.NewFromConfig(f.Config(ctx))
	got := make(chan []sqstypes.Message, 1)
	go func() {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if err != nil {
			t.Errorf("receive: %v", err)
		}
		if out == nil {
			got <- nil
			return
		}
		got <- out.Messages
	}()
	// Send once the receive is long-polling.
	if err := f.WaitFor(ctx, func() bool { return f.SQS().Polling("jobs") == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SQS().Send("jobs", "hello"); err != nil {
		t.Fatal(err)
	}
	select {
	case msgs := <-got:
		if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "hello" {
			t.Errorf("long poll got %+v", msgs)
		}
	case <-ctx.Done():
		t.Fatal("long poll did not return")
	}
}

func TestSecretsManager(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	arn := f.SecretsManager().Put("tokken/slack", `{"bot_token":"xoxb-1"}`)
	client := secretsmanager.NewFromConfig(f.Config(ctx))
	for _, id := range []string{"tokken/slack", arn} {
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue(%s): %v", id, err)
		}
		if aws.ToString(out.SecretString) != `{"bot_token":"xoxb-1"}` || aws.ToString(out.ARN) != arn {
			t.Errorf("GetSecretValue(%s) = %+v", id, out)
		}
	}
	if _, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("unknown secret: %v", err)
	}
}

// TestFaults checks that every service's throttling and internal errors are
// decoded and retried by the SDK, and that a fault outlasting the retry
// budget surfaces with the service's code.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	cfg := f.Config(ctx)
	url, _ := f.SQS().CreateQueue("jobs")
	f.SecretsManager().Put("s", "v")
	f.Scheduler().CreateGroup("g")
	tests := []struct {
		service, op, throttleCode string
		call                      func() error
	}{
		{awsfake.STSService, "GetCallerIdentity", "Throttling", func() error {
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{awsfake.EC2Service, "DescribeInstances", "RequestLimitExceeded", func() error {
			_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}},
		{awsfake.SSMService, "DescribeSessions", "ThrottlingException", func() error {
			_, err := ssm.NewFromConfig(cfg).DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
			return err
		}},
		{awsfake.SchedulerService, "ListSchedules", "ThrottlingException", func() error {
			_, err := scheduler.NewFromConfig(cfg).ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String("g")})
			return err
		}},
		{awsfake.SQSService, "SendMessage", "RequestThrottled", func() error {
			_, err := sqs.NewFromConfig(cfg).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
			return err
		}},
		{awsfake.SecretsManagerService, "GetSecretValue", "ThrottlingException", func() error {
			_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			before := len(f.Calls(tc.service, tc.op))
			f.Fail(tc.service, tc.op, 2, awsfake.Throttle)
			f.Fail(tc.service, tc.op, 1, awsfake.Internal)
			if err := tc.call(); err != nil {
				t.Fatalf("call after 3 transient faults: %v (the SDK should have retried)", err)
			}
			calls := f.Calls(tc.service, tc.op)[before:]
			if len(calls) != 4 || calls[0].ErrorCode != tc.throttleCode || calls[2].ErrorCode == "" || calls[3].ErrorCode != "" {
				t.Errorf("calls = %+v, want 2 throttled, 1 internal error, 1 success", calls)
			}
			f.Fail(tc.service, tc.op, 10, awsfake.Throttle)
			if err := tc.call(); apiCode(err) != tc.throttleCode {
				t.Errorf("persistent throttling: %v, want %s", err, tc.throttleCode)
			}
		})
	}
}

func TestLatencyRespectsContext(t *testing.T) {
	f := awsfake.New(t)
	f.SetLatency(awsfake.STSService, "GetCallerIdentity", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	cfg := f.Config(context.Background())
	_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow call: %v, want deadline exceeded", err)
	}
}

func TestWaitForWakesOnCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := awsfake.New(t)
	client := sts.NewFromConfig(f.Config(ctx))
	done := make(chan error, 1)
	go func() {
		done <- f.WaitFor(ctx, func() bool { return len(f.Calls(awsfake.STSService, "GetCallerIdentity")) == 2 })
	}()
	for range 2 {
		if _, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := f.WaitFor(short, func() bool { return false }); err == nil {
		t.Error("WaitFor on a cancelled context returned nil")
	}
}
