package awsconfig_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/testkit/awsfake"
)

// isolate unsets every variable and clears every file through which the
// SDK could find a region, credentials or an endpoint on the developer's
// machine (restored after the test).
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCOUNT_ID",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SQS"} {
		t.Setenv(k, "") // restores k after the test
		os.Unsetenv(k)  // unset, not empty: the SDK tells the two apart for AWS_ENDPOINT_URL
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
}

func TestLoadRequiresRegion(t *testing.T) {
	isolate(t)
	_, err := awsconfig.Load(context.Background())
	if !errors.Is(err, awsconfig.ErrNoRegion) {
		t.Fatalf("Load without region: err = %v, want ErrNoRegion", err)
	}
	t.Setenv("AWS_REGION", "ap-northeast-1")
	t.Setenv("AWS_ACCESS_KEY_ID", awsfake.AccessKeyID) // the ingress build requires them
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsfake.SecretAccessKey)
	cfg, err := awsconfig.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "ap-northeast-1" {
		t.Errorf("region = %q", cfg.Region)
	}
}

func TestLoadRejectsBadOptions(t *testing.T) {
	isolate(t)
	for name, opt := range map[string]awsconfig.Option{
		"zero attempts":    awsconfig.WithMaxAttempts(0),
		"negative backoff": awsconfig.WithMaxBackoff(-time.Second),
	} {
		if _, err := awsconfig.Load(context.Background(), awsconfig.WithRegion("us-east-1"), opt); err == nil {
			t.Errorf("%s: Load succeeded", name)
		}
	}
}

// fakeOpts points STS at f with the fake's credentials and a tiny backoff.
func fakeOpts(f *awsfake.Fake) []awsconfig.Option {
	return []awsconfig.Option{
		awsconfig.WithRegion(awsfake.Region),
		awsconfig.WithCredentials(credentials.NewStaticCredentialsProvider(awsfake.AccessKeyID, awsfake.SecretAccessKey, "")),
		awsconfig.WithServiceEndpoint("STS", f.URL()),
		awsconfig.WithMaxBackoff(time.Millisecond),
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		env        string // AWS_MAX_ATTEMPTS
		opts       []awsconfig.Option
		throttles  int
		wantErr    bool
		wantCalled int
	}{
		{"default absorbs 5 throttles", "", nil, awsconfig.DefaultMaxAttempts - 1, false, awsconfig.DefaultMaxAttempts},
		{"default gives up after 6", "", nil, awsconfig.DefaultMaxAttempts, true, awsconfig.DefaultMaxAttempts},
		{"option", "", []awsconfig.Option{awsconfig.WithMaxAttempts(2)}, 2, true, 2},
		{"AWS_MAX_ATTEMPTS wins", "3", nil, 3, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv("AWS_MAX_ATTEMPTS", tc.env)
			f := awsfake.New(t)
			cfg, err := awsconfig.Load(ctx, append(fakeOpts(f), tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			f.Fail(awsfake.STSService, "GetCallerIdentity", tc.throttles, awsfake.Throttle)
			_, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if n := len(f.Calls(awsfake.STSService, "GetCallerIdentity")); n != tc.wantCalled {
				t.Errorf("attempts = %d, want %d", n, tc.wantCalled)
			}
		})
	}
}

// TestEndpoints checks both ways of pointing a client at an endpoint: the
// SDK's AWS_ENDPOINT_URL_<SERVICE>, and WithServiceEndpoint, which wins.
func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	isolate(t)
	f := awsfake.New(t)
	t.Setenv("AWS_REGION", awsfake.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", awsfake.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsfake.SecretAccessKey)

	t.Setenv("AWS_ENDPOINT_URL_STS", f.URL())
	cfg, err := awsconfig.Load(ctx, awsconfig.WithMaxBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("via AWS_ENDPOINT_URL_STS: %v", err)
	}

	t.Setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1") // nothing listens there
	cfg, err = awsconfig.Load(ctx, awsconfig.WithServiceEndpoint("STS", f.URL()), awsconfig.WithMaxBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("WithServiceEndpoint did not win over the environment: %v", err)
	}
	if aws.ToString(out.Arn) != awsfake.CallerARN {
		t.Errorf("caller = %s", aws.ToString(out.Arn))
	}
	if n := len(f.Calls(awsfake.STSService, "")); n != 2 {
		t.Errorf("fake saw %d calls, want 2", n)
	}
}

// TestEndpointEnvVar checks that EndpointEnvVar names the variable the
// SDK's own environment configuration reads for each service tokken calls.
func TestEndpointEnvVar(t *testing.T) {
	ctx := context.Background()
	for id, want := range map[string]string{
		"Secrets Manager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"DynamoDB":        "AWS_ENDPOINT_URL_DYNAMODB",
		"SQS":             "AWS_ENDPOINT_URL_SQS",
		"Scheduler":       "AWS_ENDPOINT_URL_SCHEDULER",
		"STS":             "AWS_ENDPOINT_URL_STS",
	} {
		got := awsconfig.EndpointEnvVar(id)
		if got != want {
			t.Errorf("EndpointEnvVar(%q) = %q, want %q", id, got, want)
		}
		t.Setenv(got, "http://"+strings.ReplaceAll(id, " ", "-")+".test")
		sdk, ok, err := config.EnvConfig{}.GetServiceBaseEndpoint(ctx, id)
		if err != nil || !ok || sdk != os.Getenv(got) {
			t.Errorf("the SDK reads %q for %q, not %s", sdk, id, got)
		}
	}
}
