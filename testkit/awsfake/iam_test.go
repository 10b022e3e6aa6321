package awsfake_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/tokken/tokken/testkit/awsfake"
)

func TestIAMRolePolicies(t *testing.T) {
	f := awsfake.New(t)
	ctx := context.Background()
	c := iam.NewFromConfig(f.Config(ctx))
	f.IAM().AddRole("arn:aws:iam::123456789012:role/ops/prod-admin")

	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":"*:r-1 2+3"}}}]}`
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("prod-admin"),
		PolicyName: aws.String("tokken-revoked"), PolicyDocument: aws.String(doc)}); err != nil {
		t.Fatalf("PutRolePolicy: %v", err)
	}
	out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("tokken-revoked")})
	if err != nil {
		t.Fatalf("GetRolePolicy: %v", err)
	}
	enc := aws.ToString(out.PolicyDocument)
	if strings.ContainsAny(enc, `{" +`) {
		t.Errorf("GetRolePolicy document is not URL-encoded like IAM's: %s", enc)
	}
	if dec, err := url.PathUnescape(enc); err != nil || dec != doc {
		t.Errorf("decoded document = %q, %v; want %q", dec, err, doc)
	}
	if got, ok := f.IAM().RolePolicy("prod-admin", "tokken-revoked"); !ok || got != doc {
		t.Errorf("RolePolicy = %q, %v", got, ok)
	}

	errCases := []struct {
		name string
		call func() error
		code string
	}{
		{"get missing policy", func() error {
			_, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("other")})
			return err
		}, "NoSuchEntity"},
		{"put on missing role", func() error {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("nope"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
			return err
		}, "NoSuchEntity"},
		{"malformed document", func() error {
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("p"), PolicyDocument: aws.String("{")})
			return err
		}, "MalformedPolicyDocument"},
		{"over the aggregate size", func() error {
			big := `{"Version":"2012-10-17","Statement":[{"Sid":"` + strings.Repeat("A", awsfake.MaxRolePolicySize-len(doc)) + `","Effect":"Deny","Action":"*","Resource":"*"}]}`
			_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("big"), PolicyDocument: aws.String(big)})
			return err
		}, "LimitExceeded"},
		{"delete missing policy", func() error {
			_, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("other")})
			return err
		}, "NoSuchEntity"},
	}
	for _, tc := range errCases {
		if code := apiCode(tc.call()); code != tc.code {
			t.Errorf("%s: error code %q, want %q", tc.name, code, tc.code)
		}
	}
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("other")})
	if nse := (*iamtypes.NoSuchEntityException)(nil); !errors.As(err, &nse) {
		t.Errorf("missing policy error %T %v does not decode as *types.NoSuchEntityException", err, err)
	}

	if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("prod-admin"), PolicyName: aws.String("tokken-revoked")}); err != nil {
		t.Fatalf("DeleteRolePolicy: %v", err)
	}
	if _, ok := f.IAM().RolePolicy("prod-admin", "tokken-revoked"); ok {
		t.Error("policy still there after DeleteRolePolicy")
	}
}

func TestIAMDenies(t *testing.T) {
	f := awsfake.New(t)
	f.IAM().AddRole("arn:aws:iam::123456789012:role/admin")
	until := time.Date(2026, 1, 2, 16, 0, 0, 0, time.UTC)
	f.IAM().SetRolePolicy("admin", "tokken-revoked", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":["*:r-a","*:r-b"]},"DateLessThan":{"aws:CurrentTime":"2026-01-02T16:00:00Z"}}}]}`)
	cases := []struct {
		user string
		at   time.Time
		want bool
	}{
		{"AROAX:r-a", until.Add(-time.Minute), true},
		{"AROAY:r-b", until.Add(-time.Minute), true},
		{"AROAX:r-c", until.Add(-time.Minute), false},
		{"AROAX:r-a", until, false},
	}
	for _, tc := range cases {
		got, err := f.IAM().Denies("admin", tc.user, tc.at)
		if err != nil || got != tc.want {
			t.Errorf("Denies(%s, %s) = %v, %v; want %v", tc.user, tc.at, got, err, tc.want)
		}
	}
	f.IAM().SetRolePolicy("admin", "odd", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`)
	if _, err := f.IAM().Denies("admin", "AROAX:r-c", until); err == nil {
		t.Error("Denies evaluated a condition it does not understand without error")
	}
}

func TestIAMEnvAndFaults(t *testing.T) {
	f := awsfake.New(t)
	if f.Env()["AWS_ENDPOINT_URL_IAM"] != f.URL() {
		t.Fatalf("Env lacks AWS_ENDPOINT_URL_IAM: %v", f.Env())
	}
	f.Setenv(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.IAM().AddRole("arn:aws:iam::123456789012:role/admin")
	f.Fail(awsfake.IAMService, "PutRolePolicy", 1, awsfake.Throttle)
	f.Fail(awsfake.IAMService, "PutRolePolicy", 1, awsfake.Internal)
	c := iam.NewFromConfig(cfg)
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("admin"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`)}); err != nil {
		t.Fatalf("PutRolePolicy after a throttle and a 500 (SDK default retryer): %v", err)
	}
	var codes []string
	for _, call := range f.Calls(awsfake.IAMService, "PutRolePolicy") {
		codes = append(codes, call.ErrorCode)
	}
	if strings.Join(codes, ",") != "Throttling,ServiceFailure," {
		t.Errorf("PutRolePolicy attempts = %q, want Throttling, ServiceFailure, success", codes)
	}
}
