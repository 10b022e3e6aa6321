// Package awsgrant makes access grants real in AWS. [Granter] implements
// access.Granter with STS, SSM and IAM, and builds console sign-in links
// through the AWS federation endpoint.
//
// # Issue
//
// [Granter.Issue] calls sts:AssumeRole exactly as the GrantSpec says: the
// request id as RoleSessionName, the requester as SourceIdentity (recorded
// in CloudTrail and kept through role chaining), the session tags
// tokken:request and tokken:requester, DurationSeconds, and the inline
// session policy whose last statement denies everything after the window
// end. It refuses a spec without a session policy: without it a grant would
// last as long as the credentials instead of ending at the second.
// [Granter.SigninURL] turns the credentials into a console link
// (getSigninToken, then Action=login); it never logs the URLs it builds or
// fetches, since they carry the credentials.
//
// # The permissions boundary
//
// [Granter.CheckRole] refuses a role that does not carry tokken's
// permissions boundary (Options.Boundary): the worker may write inline
// policies only on roles bounded by it (template.yaml), so whatever it, or
// anyone who took it over, writes on a role is capped by the boundary.
// Issue checks the role again before every AssumeRole, so a boundary
// removed after the request was submitted still stops the grant. It reads
// the role with iam:GetRole; a role tokken may not read (not tagged
// tokken:grantable=true) or that does not exist is refused too.
//
// # Ending access
//
// [Granter.TerminateSessions] ends the SSM sessions the grant opened: an SSM
// session survives the expiry of the credentials that opened it. It lists
// the Active sessions owned by the grant's assumed-role identity
// (arn:aws:sts::<account>:assumed-role/<role>/<request id>), terminates
// each, and lists again until none is left, because TerminateSession
// reports success even for sessions it did not end.
//
// [Granter.Revoke] makes credentials already issued for a grant useless
// before their own expiry. It keeps one inline policy, [RevokedPolicyName],
// on the grant's role, with statements denying every action when aws:userid
// is like "*:<request id>". A role session's aws:userid is "<role id>:<role
// session name>" and tokken names every session of a grant after its request
// id, so this one entry covers every credential issued for the grant (the
// first, re-issues after a failed delivery, extensions) and every console
// session signed in with them.
//
// What Revoke guarantees: once IAM has propagated the policy, every request
// signed with the grant's credentials, to any service, is denied. IAM is
// eventually consistent: propagation usually takes seconds and AWS asks to
// allow for a few minutes; until then the credentials keep working (the
// session policy still ends them at the window end). Revoke does not end
// SSM sessions already open (TerminateSessions does), does not undo what the
// credentials did, and does not reach credentials for other roles that the
// grant's session assumed before the revocation. The role must be in the
// account tokken runs in (IAM calls are made there); a cross-account role is
// refused with a permanent error instead of revoking a same-named local
// role.
//
// Entries are kept until at least one hour after the grant's window end
// (rounded up to the hour, and expressed in each statement as a
// DateLessThan aws:CurrentTime condition): tokken's credentials live at most
// 3,600 s (role chaining) and none is issued after the window end, so an
// older entry protects nothing. Each Revoke prunes such entries, which keeps
// the policy under IAM's 10,240-character inline limit. IAM has no
// conditional writes, so Revoke serialises its read-modify-write within the
// process and reads the policy back after writing it, merging again if a
// concurrent writer in another process dropped its entry.
//
// The worker's role needs iam:GetRole, sts:AssumeRole (plus sts:SetSourceIdentity and
// sts:TagSession in the target roles' trust policies), ssm:DescribeSessions,
// ssm:TerminateSession, and iam:GetRolePolicy, iam:PutRolePolicy and
// iam:DeleteRolePolicy on the target roles. Throttling and server errors
// are retried by the SDK retryer that infra/awsconfig configures; the
// federation call, which is plain HTTPS, is retried with the same retryer.
package awsgrant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsconfig"
)

// Session tags set on every grant's role session.
const (
	TagRequest   = "tokken:request"
	TagRequester = "tokken:requester"
)

// DefaultIssuer is the login URL's Issuer unless Options.Issuer is set.
const DefaultIssuer = "tokken"

// DefaultBoundaryName is the name of tokken's permissions boundary policy
// (infra/target-role.yaml) unless Options.Boundary names another.
const DefaultBoundaryName = "tokken-grant-boundary"

// DefaultConfirmWait is how long TerminateSessions waits for terminated
// sessions to leave the Active list unless Options.ConfirmWait is set.
const DefaultConfirmWait = 20 * time.Second

// Options adjusts a Granter. The zero value is ready to use.
type Options struct {
	// FederationURL is the console federation endpoint
	// (TOKKEN_FEDERATION_URL); empty means the endpoint of the region's
	// partition, https://signin.aws.amazon.com/federation for "aws".
	FederationURL string
	// Issuer is the login URL's Issuer parameter: where the console sends
	// people whose session ended. Empty means DefaultIssuer.
	Issuer string
	// Destination, when set, is the console page every sign-in link opens;
	// otherwise the link opens the region's console home (sts grants) or
	// Session Manager (ssm grants).
	Destination string
	// HTTPClient makes the federation calls; nil means a client with a
	// 10-second timeout that does not follow redirects (a redirect would
	// resend the credentials in the query to another URL; it is an error).
	HTTPClient *http.Client
	// ConfirmWait bounds how long TerminateSessions waits for terminated
	// sessions to be reported ended; 0 means DefaultConfirmWait.
	ConfirmWait time.Duration
	// Boundary is the ARN of the permissions boundary every granted role
	// must carry (TOKKEN_GRANT_BOUNDARY_ARN); empty means the policy named
	// DefaultBoundaryName in the role's own account.
	Boundary string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per AWS side effect (never a secret); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Granter implements access.Granter against AWS. Create it with [New]; it is
// safe for concurrent use.
type Granter struct {
	sts     *sts.Client
	ssm     *ssm.Client
	iam     *iam.Client
	http    *http.Client
	retryer func() aws.Retryer
	region  string
	opts    Options

	revokeMu sync.Mutex // serialises revocation policy read-modify-writes

	accountMu sync.Mutex
	account   string // the caller's account, learnt on first use
}

var _ access.Granter = (*Granter)(nil)

// New returns a Granter using cfg (from infra/awsconfig.Load, which honours
// AWS_ENDPOINT_URL_<SERVICE>) for STS, SSM and IAM.
func New(cfg aws.Config, opts Options) *Granter {
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.FederationURL == "" {
		opts.FederationURL = federationURL(awsconfig.Partition(cfg.Region))
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.ConfirmWait <= 0 {
		opts.ConfirmWait = DefaultConfirmWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := cfg.Retryer
	if r == nil {
		r = func() aws.Retryer { return retry.NewStandard() }
	}
	return &Granter{
		sts: sts.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg),
		http: opts.HTTPClient, retryer: r, region: cfg.Region, opts: opts,
	}
}

// Issue assumes spec.Profile.RoleARN as access.Granter documents and returns
// the credentials with their expiry. Errors that retrying cannot fix (the
// trust policy refuses, the policy is malformed or too large, a parameter is
// invalid) are bot.Permanent.
func (g *Granter) Issue(ctx context.Context, spec access.GrantSpec) (access.Credentials, error) {
	if spec.Profile.RoleARN == "" {
		return access.Credentials{}, bot.Permanent(fmt.Errorf("issue %s: profile %s has no role ARN", spec.RequestID, spec.Profile.Name))
	}
	if spec.SessionPolicy == "" {
		return access.Credentials{}, bot.Permanent(fmt.Errorf("issue %s: refusing to assume %s without a session policy: nothing would end access at the window end", spec.RequestID, spec.Profile.RoleARN))
	}
	if err := g.CheckRole(ctx, spec.Profile.RoleARN); err != nil {
		if ng := (*access.ErrRoleNotGrantable)(nil); errors.As(err, &ng) {
			return access.Credentials{}, bot.Permanent(fmt.Errorf("issue %s: %w", spec.RequestID, err))
		}
		return access.Credentials{}, fmt.Errorf("issue %s: %w", spec.RequestID, err)
	}
	out, err := g.sts.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(spec.Profile.RoleARN),
		RoleSessionName: aws.String(spec.RequestID),
		SourceIdentity:  aws.String(spec.Requester),
		DurationSeconds: aws.Int32(spec.DurationSeconds),
		Policy:          aws.String(spec.SessionPolicy),
		Tags: []ststypes.Tag{
			{Key: aws.String(TagRequest), Value: aws.String(spec.RequestID)},
			{Key: aws.String(TagRequester), Value: aws.String(spec.Requester)},
		},
	})
	if err != nil {
		return access.Credentials{}, classify(fmt.Sprintf("issue %s: assume %s", spec.RequestID, spec.Profile.RoleARN), err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return access.Credentials{}, fmt.Errorf("issue %s: assume %s: STS returned incomplete credentials", spec.RequestID, spec.Profile.RoleARN)
	}
	g.opts.Logger.InfoContext(ctx, "assumed grant role",
		"request", spec.RequestID, "role", spec.Profile.RoleARN, "duration_s", spec.DurationSeconds,
		"expires", c.Expiration.UTC(), "packed_policy_pct", aws.ToInt32(out.PackedPolicySize))
	creds := access.Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Expiration:      c.Expiration.UTC(),
	}
	// The console link is a convenience: without it the CLI exports still
	// work, so a federation outage does not fail the grant. An ecs-exec
	// grant is used from the CLI alone (aws ecs execute-command).
	if spec.Profile.Kind == access.KindECSExec {
		return creds, nil
	}
	if u, err := g.SigninURL(ctx, creds, spec.Profile.Kind); err != nil {
		g.opts.Logger.WarnContext(ctx, "console sign-in link not made; delivering CLI credentials only",
			"request", spec.RequestID, "err", err)
	} else {
		creds.ConsoleURL = u
	}
	return creds, nil
}

// permanentCodes are AWS error codes that retrying the same call cannot fix.
var permanentCodes = map[string]bool{
	"AccessDenied":                true, // STS, IAM
	"AccessDeniedException":       true, // SSM
	"ValidationError":             true, // STS, IAM
	"ValidationException":         true, // SSM
	"MalformedPolicyDocument":     true, // STS, IAM
	"PackedPolicyTooLarge":        true, // STS
	"RegionDisabledException":     true, // STS
	"InvalidParameterValue":       true, // IAM
	"InvalidParameterCombination": true,
}

// classify wraps err with op and marks it bot.Permanent when its AWS error
// code says retrying cannot help.
func classify(op string, err error) error {
	wrapped := fmt.Errorf("%s: %w", op, err)
	var ae smithy.APIError
	if errors.As(err, &ae) && permanentCodes[ae.ErrorCode()] {
		return bot.Permanent(wrapped)
	}
	return wrapped
}

// errorCode returns err's AWS error code, "" when it has none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// roleARN is a parsed IAM role ARN.
type roleARN struct {
	partition, account, name string
}

// Length limits checked apart from the patterns below. A bounded repeat
// such as {1,64} compiles to one program state per repetition, and every
// package-level pattern is compiled at process start, so each Lambda cold
// start would pay for it. The patterns only match ASCII, so a
// byte length is a character length.
const (
	// maxRoleName is IAM's limit on a role name (the ARN's last part).
	maxRoleName = 64
	// minSessionName and maxSessionName are STS's limits on a
	// RoleSessionName.
	minSessionName, maxSessionName = 2, 64
)

// roleARNPattern is an IAM role ARN: partition, account, optional path and
// the name (its length is checked by parseRoleARN).
var roleARNPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$`)
})

// sessionNameChars are the characters of STS's RoleSessionName syntax; see
// validSessionName.
var sessionNameChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]+$`) })

// validSessionName reports whether s is a valid STS RoleSessionName: 2 to
// 64 of letters, digits and _ + = , . @ -. Request ids must be one, which
// also keeps IAM wildcards (* and ?) out of revocation entries.
func validSessionName(s string) bool {
	return len(s) >= minSessionName && len(s) <= maxSessionName && sessionNameChars().MatchString(s)
}

func parseRoleARN(s string) (roleARN, error) {
	m := roleARNPattern().FindStringSubmatch(s)
	if m == nil || len(m[3]) > maxRoleName {
		return roleARN{}, fmt.Errorf("%q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", s)
	}
	return roleARN{partition: m[1], account: m[2], name: m[3]}, nil
}

// sessionARN is the identity of the role session named session: the Owner
// of the SSM sessions it opens. Role paths are not part of it.
func (r roleARN) sessionARN(session string) string {
	return fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", r.partition, r.account, r.name, session)
}

// callerAccount returns the account the worker's credentials belong to
// (sts:GetCallerIdentity, asked once).
func (g *Granter) callerAccount(ctx context.Context) (string, error) {
	g.accountMu.Lock()
	defer g.accountMu.Unlock()
	if g.account != "" {
		return g.account, nil
	}
	out, err := g.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("get caller identity: %w", err)
	}
	g.account = aws.ToString(out.Account)
	return g.account, nil
}

// CheckRole reads roleARN with iam:GetRole and returns an
// *access.ErrRoleNotGrantable unless its permissions boundary is tokken's;
// any other error means the role could not be read (retry).
func (g *Granter) CheckRole(ctx context.Context, roleARN string) error {
	r, err := parseRoleARN(roleARN)
	if err != nil {
		return &access.ErrRoleNotGrantable{Role: roleARN, Boundary: g.boundary(roleARN), Why: err.Error()}
	}
	want := g.boundary(roleARN)
	refuse := func(why string) error {
		g.opts.Logger.WarnContext(ctx, "role may not be granted", "role", roleARN, "boundary", want, "why", why)
		return &access.ErrRoleNotGrantable{Role: roleARN, Boundary: want, Why: why}
	}
	out, err := g.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r.name)})
	switch code := errorCode(err); {
	case code == "NoSuchEntity":
		return refuse("it does not exist")
	case code == "AccessDenied":
		return refuse("tokken may not read it (is it tagged tokken:grantable=true?)")
	case err != nil:
		return fmt.Errorf("check role %s: %w", roleARN, err)
	}
	if out.Role == nil {
		return fmt.Errorf("check role %s: IAM returned no role", roleARN)
	}
	pb := out.Role.PermissionsBoundary
	switch {
	case pb == nil || aws.ToString(pb.PermissionsBoundaryArn) == "":
		return refuse("it has no permissions boundary")
	case aws.ToString(pb.PermissionsBoundaryArn) != want:
		return refuse("its permissions boundary is " + aws.ToString(pb.PermissionsBoundaryArn))
	}
	return nil
}

// boundary returns the permissions boundary roleARN must carry.
func (g *Granter) boundary(roleARN string) string {
	if g.opts.Boundary != "" {
		return g.opts.Boundary
	}
	// arn:<partition>:iam::<account>:…, whatever the resource.
	p := strings.SplitN(roleARN, ":", 6)
	if len(p) == 6 && p[0] == "arn" && access.ValidAccountID(p[4]) {
		return fmt.Sprintf("arn:%s:iam::%s:policy/%s", p[1], p[4], DefaultBoundaryName)
	}
	return "arn:aws:iam::<account>:policy/" + DefaultBoundaryName
}
