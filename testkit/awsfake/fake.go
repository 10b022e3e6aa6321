// Package awsfake is an in-process fake of the AWS APIs tokken calls, for
// tests. It speaks the real wire protocols, so tests drive it with real
// aws-sdk-go-v2 clients and exercise the SDK's request serialization,
// response deserialization, error decoding and retries:
//
//   - STS: AWS query protocol, XML responses (AssumeRole, GetCallerIdentity).
//   - EC2: EC2 query protocol, XML responses (DescribeInstances, CreateTags,
//     DeleteTags, RebootInstances).
//   - SSM: AWS JSON 1.1 (StartSession, DescribeSessions, TerminateSession,
//     ResumeSession).
//   - EventBridge Scheduler: REST-JSON (Create/Update/Get/Delete/ListSchedules).
//   - SQS: AWS JSON 1.0 with query-compatible errors (SendMessage,
//     SendMessageBatch, ReceiveMessage, DeleteMessage, GetQueueUrl).
//   - Secrets Manager: AWS JSON 1.1 (GetSecretValue).
//   - IAM: query protocol, XML (GetRole, Put/Get/DeleteRolePolicy), see [IAM].
//   - ECS: AWS JSON 1.1 (ListClusters, ListServices, DescribeServices,
//     ListTasks, DescribeTasks, ExecuteCommand), see [ECS].
//   - CodePipeline: AWS JSON 1.1 (manual approvals), see [CodePipeline].
//   - IAM Identity Center: SSO Admin and Identity Store, AWS JSON 1.1
//     (account assignments with their asynchronous statuses, group
//     memberships), see [IdentityCenter].
//   - The console federation endpoint at /federation, see [Federation].
//
// One httptest server serves them all; a request is routed by the service
// named in its SigV4 credential scope. Clients reach it through
// AWS_ENDPOINT_URL_<SERVICE> ([Fake.Env], [Fake.Setenv]) or through
// [Fake.Config], which builds the configuration with infra/awsconfig exactly
// as tokken does. The access key in the credential scope identifies the
// caller: the fake's own key is the Lambda worker role, and keys handed out by
// AssumeRole act as the assumed role (SSM sessions they open are owned by it).
// Signatures are not verified.
//
// Test state is set and read through per-service handles ([Fake.EC2],
// [Fake.SQS], ...). Every call is recorded ([Fake.Calls]); [Fake.WaitFor]
// blocks until a condition holds, waking on each call instead of polling;
// [Fake.Fail] and [Fake.SetLatency] inject faults with each service's real
// throttling and internal-error codes.
package awsfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tokken/tokken/infra/awsconfig"
)

// Fixed identities of the fake account.
const (
	// AccountID is the fake AWS account every resource lives in.
	AccountID = "123456789012"
	// Region is the region [Fake.Env] and [Fake.Config] use.
	Region = "us-east-1"
	// AccessKeyID and SecretAccessKey are the static credentials of the
	// default caller (the Lambda worker role session, see CallerARN).
	AccessKeyID     = "ASIAFAKETOKKENWORKER"
	SecretAccessKey = "fake-secret-access-key"
	// CallerARN is the identity behind AccessKeyID: the worker Lambda's
	// execution role session. Because it is itself a role session, the
	// roles it assumes are chained (DurationSeconds capped at 3600).
	CallerARN = "arn:aws:sts::" + AccountID + ":assumed-role/tokken-worker/tokken-worker"
)

// Service names as they appear in the SigV4 credential scope; they are also
// the service keys of [Call], [Fake.Fail] and [Fake.SetLatency].
const (
	STSService            = "sts"
	EC2Service            = "ec2"
	SSMService            = "ssm"
	SchedulerService      = "scheduler"
	SQSService            = "sqs"
	SecretsManagerService = "secretsmanager"
)

// sdkIDs maps scope service names to the SDK's service ids (the ServiceID
// constant of each SDK client package), from which AWS_ENDPOINT_URL_<SERVICE>
// is derived (upper case, spaces to underscores).
func sdkIDs() map[string]string {
	return map[string]string{
		STSService:            "STS",
		EC2Service:            "EC2",
		SSMService:            "SSM",
		SchedulerService:      "Scheduler",
		SQSService:            "SQS",
		SecretsManagerService: "Secrets Manager",
		IAMService:            "IAM",
		CodePipelineService:   "CodePipeline",
		ECSService:            "ECS",
		SSOAdminService:       "SSO Admin",
		IdentityStoreService:  "identitystore",
	}
}

// Fake is a running fake of tokken's AWS dependencies. Create it with [New];
// it is safe for concurrent use.
type Fake struct {
	tb   testing.TB
	srv  *httptest.Server
	svcs map[string]*service // routing table, read-only after New

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change
	now        func() time.Time
	calls      []Call
	faults     map[opKey][]Fault
	latency    map[opKey]time.Duration
	holds      map[opKey]time.Duration // delays after handling (SetResponseLatency)
	principals map[string]*principal   // by access key id

	sts     *STS
	ec2     *EC2
	ssm     *SSM
	sched   *Scheduler
	sqs     *SQS
	secrets *SecretsManager
	iam     *IAM          // iam.go
	fed     *Federation   // federation.go
	ecs     *ECS          // ecs.go
	cp      *CodePipeline // codepipeline.go

	idc *IdentityCenter // identitycenter.go
}

// principal is who a request's access key belongs to.
type principal struct {
	arn     string
	userID  string
	account string
	// sessionName is the role session name for assumed roles, the user
	// name for IAM users; SSM prefixes session ids with it.
	sessionName string
	// expires is the zero time for the fake's own long-lived key.
	expires time.Time
	// sessionPolicy is the inline session policy of an assumed role's
	// session; the SSM session calls that a grant makes on its own
	// sessions (TerminateSession, ResumeSession) are evaluated against it.
	sessionPolicy string
}

// chained reports whether roles assumed by p are chained (p is a role
// session), which caps DurationSeconds at one hour.
func (p *principal) chained() bool { return assumedRoleARN.MatchString(p.arn) }

var assumedRoleARN = regexp.MustCompile(`^arn:aws:sts::\d{12}:assumed-role/`)

type opKey struct{ service, op string }

// Call is one request the fake received.
type Call struct {
	// Service is the credential-scope service name (STSService, ...).
	Service string
	// Operation is the API operation, e.g. "AssumeRole".
	Operation string
	// Params holds the decoded request: for the query protocols (STS,
	// EC2) every form field as a string under its flattened name
	// ("PolicyArns.member.1.arn"); for JSON protocols the decoded body;
	// for Scheduler the decoded body plus the path's "Name" and the query
	// parameters.
	Params map[string]any
	// Caller is the ARN of the identity that signed the request ("" when
	// the access key was unknown).
	Caller string
	// ErrorCode is the AWS error code returned, "" on success.
	ErrorCode string
	// At is when the fake received the call (by the fake's clock).
	At time.Time
}

// Param returns the string value of a top-level parameter, "" when absent or
// not a string.
func (c Call) Param(name string) string {
	s, _ := c.Params[name].(string)
	return s
}

// Fault is one injected failure.
type Fault int

const (
	// Throttle fails the call with the service's real throttling error
	// (STS Throttling, EC2 RequestLimitExceeded, SQS RequestThrottled,
	// ThrottlingException elsewhere); the SDK retries it.
	Throttle Fault = iota + 1
	// Internal fails the call with HTTP 500 and the service's internal
	// error code; the SDK retries it.
	Internal
	// LostResponse handles the call, so it takes effect, then answers as
	// Internal does, as when the response is lost on its way back: the
	// SDK's retry meets a call that already happened.
	LostResponse
)

// New starts a fake and stops it when the test ends.
func New(tb testing.TB) *Fake {
	tb.Helper()
	f := &Fake{
		tb:         tb,
		changed:    make(chan struct{}),
		now:        time.Now,
		faults:     map[opKey][]Fault{},
		latency:    map[opKey]time.Duration{},
		holds:      map[opKey]time.Duration{},
		principals: map[string]*principal{},
	}
	f.principals[AccessKeyID] = &principal{
		arn:         CallerARN,
		userID:      "AROAFAKETOKKENWORKER:tokken-worker",
		account:     AccountID,
		sessionName: "tokken-worker",
	}
	f.sts = &STS{f: f, maxDuration: map[string]int{}}
	f.ec2 = &EC2{f: f, instances: map[string]*instance{}, reboots: map[string]int{}}
	f.ssm = &SSM{f: f}
	f.sched = &Scheduler{f: f, groups: map[string]map[string]*schedule{"default": {}}}
	f.sqs = &SQS{f: f, queues: map[string]*queue{}}
	f.secrets = &SecretsManager{f: f, secrets: map[string]*secret{}}
	f.iam, f.fed = newIAM(f), newFederation(f)
	f.svcs = f.services()
	f.svcs[IAMService] = f.iam.service()
	f.cp = newCodePipeline(f)
	f.svcs[CodePipelineService] = f.cp.service()
	f.ecs = newECS(f)
	f.svcs[ECSService] = f.ecs.service()
	f.idc = newIdentityCenter(f)
	f.svcs[SSOAdminService] = f.idc.ssoAdminService()
	f.svcs[IdentityStoreService] = f.idc.identityStoreService()
	f.srv = httptest.NewServer(f.withFederation(http.HandlerFunc(f.serveHTTP)))
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL of the fake's HTTP server (every service shares it).
func (f *Fake) URL() string { return f.srv.URL }

// STS returns the STS handle.
func (f *Fake) STS() *STS { return f.sts }

// EC2 returns the EC2 handle.
func (f *Fake) EC2() *EC2 { return f.ec2 }

// SSM returns the SSM handle.
func (f *Fake) SSM() *SSM { return f.ssm }

// ECS returns the ECS fake.
func (f *Fake) ECS() *ECS { return f.ecs }

// Scheduler returns the EventBridge Scheduler handle.
func (f *Fake) Scheduler() *Scheduler { return f.sched }

// SQS returns the SQS handle.
func (f *Fake) SQS() *SQS { return f.sqs }

// CodePipeline returns the CodePipeline handle (codepipeline.go).
func (f *Fake) CodePipeline() *CodePipeline { return f.cp }

// SecretsManager returns the Secrets Manager handle.
func (f *Fake) SecretsManager() *SecretsManager { return f.secrets }

// SetNow replaces the fake's clock (time.Now by default). It drives
// credential expiry, SSM session times, SQS visibility and
// [Scheduler.FireDue] defaults.
func (f *Fake) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// Now reads the fake's clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now()
}

// Env returns the environment that points the SDK at the fake: one
// AWS_ENDPOINT_URL_<SERVICE> per faked service, static credentials and the
// region.
func (f *Fake) Env() map[string]string {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": SecretAccessKey,
		"AWS_REGION":            Region,
	}
	for _, id := range sdkIDs() {
		env[awsconfig.EndpointEnvVar(id)] = f.srv.URL
	}
	return env
}

// Setenv sets [Fake.Env] in the process environment for the duration of the
// test (t.Setenv restores it afterwards; tests using it cannot be parallel).
// It also unsets AWS_PROFILE and AWS_ENDPOINT_URL, which would otherwise win.
func (f *Fake) Setenv(t *testing.T) {
	t.Helper()
	for k, v := range f.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
}

// Config returns an AWS configuration for the fake, built by
// infra/awsconfig.Load with explicit endpoints, credentials and region (the
// process environment is neither read for those nor modified) and a retry
// backoff of a few milliseconds so injected faults retry quickly.
func (f *Fake) Config(ctx context.Context) aws.Config {
	return f.ConfigFor(ctx, AccessKeyID, SecretAccessKey, "")
}

// ConfigFor is [Fake.Config] with other credentials, typically those an
// AssumeRole call returned, so that a test can act as the assumed role.
func (f *Fake) ConfigFor(ctx context.Context, accessKeyID, secret, sessionToken string) aws.Config {
	f.tb.Helper()
	opts := []awsconfig.Option{
		awsconfig.WithRegion(Region),
		awsconfig.WithCredentials(credentials.NewStaticCredentialsProvider(accessKeyID, secret, sessionToken)),
		awsconfig.WithMaxBackoff(5 * time.Millisecond),
	}
	for _, id := range sdkIDs() {
		opts = append(opts, awsconfig.WithServiceEndpoint(id, f.srv.URL))
	}
	cfg, err := awsconfig.Load(ctx, opts...)
	if err != nil {
		f.tb.Fatalf("awsfake: build AWS config: %v", err)
	}
	return cfg
}

// Fail makes the next n calls of service's op fail with fault. Faults queue
// up: Fail(s, op, 2, Throttle) then Fail(s, op, 1, Internal) fails the next
// three calls in that order.
func (f *Fake) Fail(service, op string, n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := opKey{service, op}
	for range n {
		f.faults[k] = append(f.faults[k], fault)
	}
}

// SetLatency delays every later call of service's op by d before it is
// handled (0 removes the delay). The delay ends early if the client gives up.
func (f *Fake) SetLatency(service, op string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency[opKey{service, op}] = d
}

// SetResponseLatency delays the response of every later call of service's
// op by d after the call was handled and took effect (0 removes the
// delay); the delay ends early if the client gives up. A test kills the
// caller in that window to play a crash after the call succeeded.
func (f *Fake) SetResponseLatency(service, op string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holds[opKey{service, op}] = d
}

// responseLatency returns the delay SetResponseLatency set for k.
func (f *Fake) responseLatency(k opKey) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[k]
}

// Calls returns the recorded calls of service's op, in arrival order; an
// empty op matches every operation of service, an empty service every call.
func (f *Fake) Calls(service, op string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if (service == "" || c.Service == service) && (op == "" || c.Operation == op) {
			out = append(out, c)
		}
	}
	return out
}

// WaitFor blocks until cond returns true or ctx ends. cond is evaluated now
// and again after each call the fake handles and each change made through a
// test helper; it may call the fake's accessors.
func (f *Fake) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("awsfake: wait: %w", context.Cause(ctx))
		}
	}
}

// notifyLocked wakes WaitFor callers; f.mu must be held.
func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// update runs fn under the fake's lock and wakes waiters afterwards. Every
// state change made by a test helper goes through it.
func (f *Fake) update(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
	f.notifyLocked()
}

// record appends c to the call log and wakes waiters.
func (f *Fake) record(c Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	f.notifyLocked()
}

// takeFault pops the next injected fault for k, and returns the configured
// latency.
func (f *Fake) takeFault(k opKey) (Fault, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var fault Fault
	if q := f.faults[k]; len(q) > 0 {
		fault = q[0]
		f.faults[k] = slices.Delete(q, 0, 1)
	}
	return fault, f.latency[k]
}

// randomHex returns n random bytes hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// requestID returns an AWS-looking request id.
func requestID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
