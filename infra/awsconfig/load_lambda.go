//go:build ingress

package awsconfig

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// envCredentialsSource names credentials read from the environment, as the
// SDK's config.EnvConfig names them (config.CredentialsSourceName).
const envCredentialsSource = "EnvConfigCredentials"

// loadBase is the Lambda ingress's configuration, read from the process
// environment only (see the package documentation for why and what it
// leaves out): the region of AWS_REGION, the execution role's credentials
// of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN,
// AWS_MAX_ATTEMPTS, and the endpoints of AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE>; o's region and credentials take precedence.
func loadBase(_ context.Context, o options) (aws.Config, error) {
	region := o.region
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		return aws.Config{}, ErrNoRegion
	}
	creds := o.creds
	if creds == nil {
		var err error
		if creds, err = envCredentials(); err != nil {
			return aws.Config{}, err
		}
	}
	if _, ok := creds.(*aws.CredentialsCache); !ok {
		creds = aws.NewCredentialsCache(creds)
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: creds,
		// As LoadDefaultConfig does: the SDK's own warnings go to stderr.
		Logger: logging.NewStandardLogger(os.Stderr),
		// Service clients resolve AWS_ENDPOINT_URL_<SERVICE> through
		// their config sources (envEndpoints), and AWS_ENDPOINT_URL
		// through BaseEndpoint, which a service's own variable overrides.
		ConfigSources: []any{envEndpoints{}},
	}
	if v := os.Getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return aws.Config{}, fmt.Errorf("aws config: AWS_MAX_ATTEMPTS=%s: %w", v, err)
		}
		cfg.RetryMaxAttempts = n
	}
	if u := os.Getenv("AWS_ENDPOINT_URL"); u != "" {
		cfg.BaseEndpoint = aws.String(u)
	}
	return cfg, nil
}

// envCredentials returns the static credentials of AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and (optional) AWS_SESSION_TOKEN, built as the
// SDK builds its environment credentials, or an error naming what is
// missing.
func envCredentials() (aws.CredentialsProvider, error) {
	c := aws.Credentials{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		AccountID:       os.Getenv("AWS_ACCOUNT_ID"),
		Source:          envCredentialsSource,
	}
	var missing []string
	if c.AccessKeyID == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID")
	}
	if c.SecretAccessKey == "" {
		missing = append(missing, "AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("aws config: no credentials: %s not set; the Lambda ingress build (-tags ingress) reads credentials only from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, which Lambda sets for the execution role (no profiles, SSO or instance roles: the full build reads those)", strings.Join(missing, " and "))
	}
	return credentials.StaticCredentialsProvider{Value: c, Source: []aws.CredentialSource{aws.CredentialSourceEnvVars}}, nil
}

// envEndpoints is a config source answering the SDK's per-service endpoint
// question (the ServiceBaseEndpointProvider interface of the SDK's internal
// configsources package) from AWS_ENDPOINT_URL_<SERVICE>, as the SDK's
// config.EnvConfig does.
type envEndpoints struct{}

// GetServiceBaseEndpoint reports the endpoint the environment sets for the
// service with SDK id sdkID ([EndpointEnvVar]).
func (envEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	u := os.Getenv(EndpointEnvVar(sdkID))
	return u, u != "", nil
}
