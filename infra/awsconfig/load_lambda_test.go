//go:build ingress

package awsconfig_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tokken/tokken/infra/awsconfig"
)

// lambdaEnv is what Lambda gives a function: its region and its execution
// role's credentials.
var lambdaEnv = map[string]string{
	"AWS_REGION":            "ap-northeast-1",
	"AWS_ACCESS_KEY_ID":     "ASIAEXECUTIONROLE001",
	"AWS_SECRET_ACCESS_KEY": "execution-role-secret",
	"AWS_SESSION_TOKEN":     "execution-role-token",
}

// with returns env with set applied, a "" value removing the variable.
func with(env map[string]string, set map[string]string) map[string]string {
	out := maps.Clone(env)
	for k, v := range set {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// clientEndpoints reports the base endpoint each service client the
// ingress builds from cfg resolves ("" for the service's own).
func clientEndpoints(cfg aws.Config) map[string]string {
	return map[string]string{
		"dynamodb":       aws.ToString(dynamodb.NewFromConfig(cfg).Options().BaseEndpoint),
		"secretsmanager": aws.ToString(secretsmanager.NewFromConfig(cfg).Options().BaseEndpoint),
		"sqs":            aws.ToString(sqs.NewFromConfig(cfg).Options().BaseEndpoint),
	}
}

// TestLoadLambda: the ingress build's Load reads the region, the
// credentials, AWS_MAX_ATTEMPTS and the endpoint overrides from the
// environment alone, as the SDK would read them, and refuses clearly when
// the region or the credentials are missing.
func TestLoadLambda(t *testing.T) {
	ctx := context.Background()
	// want is what the configuration holds when Load succeeds on
	// lambdaEnv, as changed by change.
	type result struct {
		region, key, token string
		attempts           int
		endpoints          map[string]string // clientEndpoints
	}
	want := func(change func(*result)) *result {
		r := &result{region: "ap-northeast-1", key: "ASIAEXECUTIONROLE001", token: "execution-role-token",
			attempts: awsconfig.DefaultMaxAttempts, endpoints: map[string]string{"dynamodb": "", "secretsmanager": "", "sqs": ""}}
		if change != nil {
			change(r)
		}
		return r
	}
	regionOnly := map[string]string{"AWS_REGION": "ap-northeast-1"}
	tests := []struct {
		name    string
		env     map[string]string
		opts    []awsconfig.Option
		want    *result // nil: Load fails
		wantErr error   // errors.Is, when Load fails
		wantMsg string  // in the error, when Load fails
	}{
		{name: "Lambda's environment", env: lambdaEnv, want: want(nil)},
		{name: "static keys without a session token", env: with(lambdaEnv, map[string]string{"AWS_SESSION_TOKEN": ""}),
			want: want(func(r *result) { r.token = "" })},
		{name: "no region", env: with(lambdaEnv, map[string]string{"AWS_REGION": ""}), wantErr: awsconfig.ErrNoRegion},
		{name: "AWS_DEFAULT_REGION is not read", env: with(lambdaEnv, map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-1"}),
			wantErr: awsconfig.ErrNoRegion},
		{name: "WithRegion wins over AWS_REGION", env: lambdaEnv, opts: []awsconfig.Option{awsconfig.WithRegion("eu-west-1")},
			want: want(func(r *result) { r.region = "eu-west-1" })},
		{name: "no credentials", env: regionOnly, wantMsg: "no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"},
		{name: "no secret key", env: with(lambdaEnv, map[string]string{"AWS_SECRET_ACCESS_KEY": ""}),
			wantMsg: "no credentials: AWS_SECRET_ACCESS_KEY not set"},
		{name: "WithCredentials needs none in the environment", env: regionOnly,
			opts: []awsconfig.Option{awsconfig.WithCredentials(credentials.NewStaticCredentialsProvider("AKIAGIVEN", "given-secret", ""))},
			want: want(func(r *result) { r.key, r.token = "AKIAGIVEN", "" })},
		{name: "AWS_MAX_ATTEMPTS", env: with(lambdaEnv, map[string]string{"AWS_MAX_ATTEMPTS": "3"}),
			want: want(func(r *result) { r.attempts = 3 })},
		{name: "AWS_MAX_ATTEMPTS wins over WithMaxAttempts", env: with(lambdaEnv, map[string]string{"AWS_MAX_ATTEMPTS": "3"}),
			opts: []awsconfig.Option{awsconfig.WithMaxAttempts(2)}, want: want(func(r *result) { r.attempts = 3 })},
		{name: "WithMaxAttempts", env: lambdaEnv, opts: []awsconfig.Option{awsconfig.WithMaxAttempts(2)},
			want: want(func(r *result) { r.attempts = 2 })},
		{name: "AWS_MAX_ATTEMPTS not a number", env: with(lambdaEnv, map[string]string{"AWS_MAX_ATTEMPTS": "many"}),
			wantMsg: "AWS_MAX_ATTEMPTS=many"},
		{name: "AWS_ENDPOINT_URL_<SERVICE>", env: with(lambdaEnv, map[string]string{
			"AWS_ENDPOINT_URL_DYNAMODB":        "http://127.0.0.1:8000",
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:9001",
			"AWS_ENDPOINT_URL_SQS":             "http://127.0.0.1:9002",
		}), want: want(func(r *result) {
			r.endpoints = map[string]string{"dynamodb": "http://127.0.0.1:8000", "secretsmanager": "http://127.0.0.1:9001", "sqs": "http://127.0.0.1:9002"}
		})},
		{name: "AWS_ENDPOINT_URL for every service but one with its own", env: with(lambdaEnv, map[string]string{
			"AWS_ENDPOINT_URL":     "http://127.0.0.1:9000",
			"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9002",
		}), want: want(func(r *result) {
			r.endpoints = map[string]string{"dynamodb": "http://127.0.0.1:9000", "secretsmanager": "http://127.0.0.1:9000", "sqs": "http://127.0.0.1:9002"}
		})},
		{name: "WithServiceEndpoint wins over the environment", env: with(lambdaEnv, map[string]string{"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9002"}),
			opts: []awsconfig.Option{awsconfig.WithServiceEndpoint("SQS", "http://127.0.0.1:9003")},
			want: want(func(r *result) { r.endpoints["sqs"] = "http://127.0.0.1:9003" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := awsconfig.Load(ctx, tc.opts...)
			if tc.want == nil {
				if err == nil {
					t.Fatal("Load succeeded")
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("err = %v, want it to say %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tc.want.region {
				t.Errorf("region = %q, want %q", cfg.Region, tc.want.region)
			}
			creds, err := cfg.Credentials.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessKeyID != tc.want.key || creds.SessionToken != tc.want.token {
				t.Errorf("credentials = %s / %q, want %s / %q", creds.AccessKeyID, creds.SessionToken, tc.want.key, tc.want.token)
			}
			if n := cfg.Retryer().MaxAttempts(); n != tc.want.attempts {
				t.Errorf("max attempts = %d, want %d", n, tc.want.attempts)
			}
			if got := clientEndpoints(cfg); !maps.Equal(got, tc.want.endpoints) {
				t.Errorf("endpoints = %v, want %v", got, tc.want.endpoints)
			}
		})
	}
}
