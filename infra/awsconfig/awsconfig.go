// Package awsconfig is the one way tokken builds its AWS configuration.
//
// [Load] builds it from the environment and fixes, on top of that, a retry
// policy suited to revocation work (retry throttling patiently rather than
// give up after the SDK's default three attempts) and refuses to start
// without a region, instead of failing on the first call. What it reads
// from the environment depends on the build.
//
// The full build (load_default.go) wraps the SDK's config.LoadDefaultConfig,
// so everything the SDK reads keeps working: credentials (the Lambda
// execution role, a profile, SSO, static keys, container and instance
// roles), AWS_REGION, AWS_MAX_ATTEMPTS and the endpoint overrides
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (for example
// AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_SECRETS_MANAGER), which is how
// tests and local runs point tokken at in-repo fakes.
//
// The Lambda ingress build (-tags ingress, load_lambda.go) reads the
// environment only, without the SDK's config package. Linking that package
// links the SDK's whole credential chain (the STS, SSO, SSO OIDC and
// Sign-In clients, the EC2 instance metadata client, the shared config file
// parser), whose package initialisers (each service's endpoint tables and
// schemas) cost every process start about 3 ms of CPU, and the ingress's
// Slack answers wait for its cold start. The ingress never needs the chain:
// Lambda always gives a function its execution role's credentials in
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and its
// region in AWS_REGION. That build reads exactly those (the session token
// is optional, for static keys; AWS_ACCOUNT_ID is read as the SDK does),
// AWS_MAX_ATTEMPTS, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, and
// refuses to start without a region or credentials. It does not support
// profiles, shared config and credentials files, SSO, web identity,
// container or instance-metadata credentials, AWS_DEFAULT_REGION, the
// legacy AWS_ACCESS_KEY and AWS_SECRET_KEY, AWS_CA_BUNDLE or
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
//
// Options exist for tests and tools that must not touch the process
// environment (testkit/awsfake builds its clients' config through them).
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// DefaultMaxAttempts is how many times an AWS call is attempted (first try
// included) before its error is returned. Revocation and schedule calls are
// worth waiting for: the SDK default of 3 gives up too early under throttling.
// AWS_MAX_ATTEMPTS in the environment overrides it.
const DefaultMaxAttempts = 6

// DefaultMaxBackoff caps the delay between two attempts. Lambda invocations
// are short-lived; the SDK default of 20 s would eat the whole timeout.
const DefaultMaxBackoff = 5 * time.Second

// ErrNoRegion is returned by [Load] when no region is configured.
var ErrNoRegion = errors.New("aws config: no region: set AWS_REGION (for example AWS_REGION=ap-northeast-1)")

// Option adjusts how [Load] builds the configuration.
type Option func(*options)

type options struct {
	region      string
	creds       aws.CredentialsProvider
	endpoints   map[string]string
	maxAttempts int
	maxBackoff  time.Duration
}

// WithRegion sets the region, taking precedence over AWS_REGION.
func WithRegion(region string) Option { return func(o *options) { o.region = region } }

// WithCredentials sets the credentials provider, taking precedence over the
// environment (and, in the full build, the SDK's default chain: shared
// files, container and instance roles).
func WithCredentials(p aws.CredentialsProvider) Option { return func(o *options) { o.creds = p } }

// WithServiceEndpoint points one service at url, as AWS_ENDPOINT_URL_<SERVICE>
// would, without touching the process environment. sdkID is the service's SDK
// identifier as the SDK spells it in its ServiceID constant: "STS", "EC2",
// "SSM", "Scheduler", "SQS", "Secrets Manager", "DynamoDB". An explicit
// endpoint given here wins over the environment.
func WithServiceEndpoint(sdkID, url string) Option {
	return func(o *options) {
		if o.endpoints == nil {
			o.endpoints = map[string]string{}
		}
		o.endpoints[sdkID] = url
	}
}

// WithMaxAttempts overrides [DefaultMaxAttempts]. AWS_MAX_ATTEMPTS (or, in
// the full build, max_attempts in the shared config file) still wins, so
// operators can tune retries without a rebuild.
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithMaxBackoff overrides [DefaultMaxBackoff]. Tests use a few milliseconds
// so that retried throttling does not slow the suite down.
func WithMaxBackoff(d time.Duration) Option { return func(o *options) { o.maxBackoff = d } }

// Partition returns the ARN partition of region: "aws-cn" for China,
// "aws-us-gov" for GovCloud, else "aws".
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// Load builds tokken's AWS configuration from the environment (see the
// package documentation for what each build reads) and opts. It fails with
// [ErrNoRegion] when no region is set, and with a wrapped error when the
// environment is inconsistent (for example AWS_PROFILE names a profile
// that does not exist, or the ingress build finds no credentials).
func Load(ctx context.Context, opts ...Option) (aws.Config, error) {
	o := options{maxAttempts: DefaultMaxAttempts, maxBackoff: DefaultMaxBackoff}
	for _, fn := range opts {
		fn(&o)
	}
	if o.maxAttempts < 1 {
		return aws.Config{}, fmt.Errorf("aws config: max attempts must be at least 1, got %d", o.maxAttempts)
	}
	if o.maxBackoff <= 0 {
		return aws.Config{}, fmt.Errorf("aws config: max backoff must be positive, got %s", o.maxBackoff)
	}

	cfg, err := loadBase(ctx, o)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	// The retryer is set after loading, not through config.WithRetryer,
	// because a retryer given to LoadDefaultConfig makes it skip
	// AWS_MAX_ATTEMPTS; cfg.RetryMaxAttempts holds that value when set
	// (loadBase reads it in both builds).
	maxAttempts, maxBackoff := o.maxAttempts, o.maxBackoff
	if cfg.RetryMaxAttempts > 0 {
		maxAttempts = cfg.RetryMaxAttempts
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.MaxBackoff = maxBackoff
		})
	}
	if len(o.endpoints) > 0 {
		// Service clients ask every config source, in order, for their
		// service's base endpoint; putting ours first makes it win over
		// AWS_ENDPOINT_URL_<SERVICE> (and the shared config file).
		cfg.ConfigSources = append([]any{serviceEndpoints(o.endpoints)}, cfg.ConfigSources...)
	}
	return cfg, nil
}

// serviceEndpoints is a config source answering the SDK's per-service
// endpoint question (the ServiceBaseEndpointProvider interface of the SDK's
// internal configsources package) from a map keyed by SDK service id.
type serviceEndpoints map[string]string

// GetServiceBaseEndpoint reports the endpoint configured for sdkID.
func (s serviceEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	u, ok := s[sdkID]
	return u, ok, nil
}

// EndpointEnvVar returns the variable through which the environment
// overrides the endpoint of the service with SDK id sdkID, as the SDK's
// config.EnvConfig derives it: the id upper-cased, spaces replaced with
// underscores, so "Secrets Manager" becomes AWS_ENDPOINT_URL_SECRETS_MANAGER.
func EndpointEnvVar(sdkID string) string {
	return "AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_")
}
