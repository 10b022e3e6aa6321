package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Granter makes grants real in AWS. Implemented by infra (STS + SSM).
// Every method may be called more than once for the same grant (jobs are
// retried); implementations must be idempotent where stated.
type Granter interface {
	// Issue assumes spec.Profile.RoleARN with RoleSessionName = spec.RequestID,
	// SourceIdentity = spec.Requester, session tags (request id, requester),
	// DurationSeconds = spec.DurationSeconds and Policy = spec.SessionPolicy,
	// all as given (the values are computed here so that the adapter only
	// sends them). The returned Credentials must only be handed to
	// Notifier.DeliverCredentials: never stored, logged or audited. Issue
	// may be called again for the same request (an extension, or a retry
	// after a failed delivery); each call returns fresh credentials.
	Issue(ctx context.Context, spec GrantSpec) (Credentials, error)
	// CheckRole reports whether roleARN may be granted at all: it must carry
	// tokken's permissions boundary, which caps whatever the worker (or
	// anyone who took it over) could write on the role. A role that may not
	// be granted is an *ErrRoleNotGrantable; other errors are failures to
	// find out (retry). Issue checks the same before every AssumeRole.
	CheckRole(ctx context.Context, roleARN string) error
	// Revoke makes every credential issued for g unusable from now on, even
	// before its window end (e.g. an inline role policy denying
	// aws:userid "<role id>:<g.RequestID>" or sts:SourceIdentity with
	// aws:TokenIssueTime before now). Revoking twice, or revoking a grant
	// whose Issue never succeeded, is not an error.
	Revoke(ctx context.Context, g Grant) error
	// TerminateSessions ends every live SSM session opened with g's
	// credentials, ECS Exec sessions included (DescribeSessions
	// State=Active, TerminateSession each, then DescribeSessions again to
	// confirm none is left) and returns the sessions it ended, each of
	// which the request records in its audit trail. A session that cannot
	// be confirmed ended is an error; the sessions confirmed ended before
	// it are returned with it. No sessions is nil, nil.
	TerminateSessions(ctx context.Context, g Grant) (ended []Session, err error)
}

// Session is a live session a grant opened, as TerminateSessions ended it.
type Session struct {
	ID string // the SSM session id
	// Target is what the session is on: an instance id, or for ECS Exec
	// "ecs:<cluster>_<task id>_<container runtime id>".
	Target string
}

// GrantSpec is everything Issue needs, ready to send.
type GrantSpec struct {
	RequestID string // RoleSessionName and the "tokken:request" session tag
	Requester string // SourceIdentity and the "tokken:requester" session tag
	// Profile carries the name, kind, RoleARN and SessionPolicy the request
	// was approved with (other fields are zero).
	Profile Profile
	Targets []bot.Target
	// WindowEnd is the instant access ends; the session policy denies
	// everything after it, whatever the credentials' own expiry.
	WindowEnd time.Time
	// DurationSeconds is the remaining window clamped to STS's [900, 3600].
	DurationSeconds int32
	// SessionPolicy is the inline session policy JSON (SessionPolicy).
	SessionPolicy string
	// Protected are the ARNs (IAM wildcards allowed) of tokken's own
	// resources: the session policy denies every action on them.
	Protected []string
	// ECS is the target of an ecs-exec grant.
	ECS *ECSTarget
}

// ErrRoleNotGrantable refuses a grant of a role tokken must not grant: one
// without tokken's permissions boundary, or one tokken cannot look up.
type ErrRoleNotGrantable struct {
	Role     string // the role ARN
	Boundary string // the permissions boundary tokken requires
	Why      string // what is wrong, e.g. "it has no permissions boundary"
}

// ActRoleRefused is the audit action of a request refused at submission
// because its role may not be granted (ErrRoleNotGrantable). A refusal
// later, at activation, fails the request (ActFailed) with the same reason.
const ActRoleRefused = "access.role_refused"

func (e *ErrRoleNotGrantable) Error() string {
	return fmt.Sprintf("role %s may not be granted: %s; tokken grants only roles whose permissions boundary is %s", e.Role, e.Why, e.Boundary)
}

// Grant identifies issued access for revocation and session termination.
// It holds no secret.
type Grant struct {
	RequestID string // the RoleSessionName of every credential issued for it
	Requester string // the SourceIdentity
	Profile   string
	Kind      Kind
	RoleARN   string
	Targets   []bot.Target
	Window    Window
}

// Grant returns the grant of r (meaningful once activation was attempted).
func (r *Request) Grant() Grant {
	return Grant{
		RequestID: r.ID, Requester: r.Requester, Profile: r.Profile, Kind: r.Kind,
		RoleARN: r.RoleARN, Targets: r.Targets, Window: r.Window,
	}
}

// Credentials are temporary AWS credentials. They are secrets: they go to
// the requester's DM and nowhere else. String, LogValue and MarshalJSON
// redact them so a careless log line or json.Marshal cannot leak them.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time // the credentials' own expiry (≥ WindowEnd; the policy cuts earlier)
	// ConsoleURL is a one-time AWS console sign-in link for these
	// credentials (valid 15 minutes); empty when it could not be made, in
	// which case the CLI exports still work.
	ConsoleURL string
}

const redacted = "[redacted credentials]"

// String redacts the credentials.
func (Credentials) String() string { return redacted }

// GoString redacts the credentials for %#v.
func (Credentials) GoString() string { return redacted }

// LogValue redacts the credentials in slog.
func (Credentials) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON refuses: credentials are never serialized.
func (Credentials) MarshalJSON() ([]byte, error) {
	return nil, errors.New("access: credentials must not be serialized")
}

// STS limits for role chaining (see shared/notes/aws.md).
const (
	MinSessionSeconds = 900
	MaxSessionSeconds = 3600
)

// SessionSeconds returns the AssumeRole DurationSeconds for a remaining
// window: rounded up to whole seconds, clamped to [900, 3600]. A window
// shorter than 15 minutes still gets 900 s; the session policy ends it on
// time. A longer one gets 3600 s; an extension or re-issue renews it.
func SessionSeconds(remaining time.Duration) int32 {
	s := math.Ceil(remaining.Seconds())
	switch {
	case s < MinSessionSeconds:
		return MinSessionSeconds
	case s > MaxSessionSeconds:
		return MaxSessionSeconds
	}
	return int32(s)
}

// maxPolicyChars is STS's limit on the plain-text inline session policy.
const maxPolicyChars = 2048

// SSM session documents an ssm grant may start: the default shell, SSH and
// port forwarding (e.g. RDP on 3389), to the instance or through it to a
// remote host (AWS-StartPortForwardingSession and ...ToRemoteHost, in one
// pattern to save room for instances: only AWS may name a document AWS-…).
var ssmDocuments = []string{
	"SSM-SessionManagerRunShell",
	"AWS-StartSSHSession",
	"AWS-StartPortForwardingSession*",
}

// ssmReadActions are the read-only calls the CLI and console need during
// an ssm grant.
var ssmReadActions = []string{"ssm:DescribeSessions", "ssm:GetConnectionStatus",
	"ssm:DescribeInstanceInformation", "ssm:DescribeInstanceProperties", "ec2:DescribeInstances"}

// ssmGrantActions covers every action an ssm grant's policy allows and no
// action on any of tokken's own resources (tokken has no SSM resource): the
// grant's fence denies everything else.
var ssmGrantActions = []string{"ssm:*", "ec2:DescribeInstances"}

type policyDoc struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Action    any                          `json:"Action,omitempty"`
	NotAction any                          `json:"NotAction,omitempty"`
	Resource  any                          `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// SessionPolicy builds the inline session policy for spec (its Profile,
// Targets and WindowEnd); partition is the ARN partition ("aws" if empty).
//
// Every policy ends with `Deny * on * when aws:CurrentTime > WindowEnd`, so
// access ends at the exact second whatever the credentials' lifetime. An sts
// profile allows everything the role allows, or only what the profile's own
// SessionPolicy allows when it has one. An ssm profile allows
// ssm:StartSession on the approved instances and the session documents
// (shell, SSH, port forwarding), TerminateSession/ResumeSession on the
// grant's own sessions, and the read-only calls the CLI and console need;
// its profile SessionPolicy may only add Deny statements (an Allow would
// widen the grant beyond the approved instances). When spec.Protected names
// tokken's own resources, a statement denies every action on them, so that
// no grant, however broad its role, can read tokken's secret, forge its
// jobs or state, or change its functions and roles. The result is compact
// JSON of at most 2,048 characters, or an error saying why not.
//
// The grant's own sessions are named by the request id: Session Manager
// names a session "<caller's session name>-<suffix>", and a grant's role
// session name is its request id. (${aws:userid} would not do: for a role
// session it is "<role id>:<session name>", which no session id starts
// with.) Request ids are of fixed length and carry no IAM wildcard, so the
// pattern matches no other grant's sessions.
func SessionPolicy(spec GrantSpec, partition string) (string, error) {
	if partition == "" {
		partition = "aws"
	}
	if spec.WindowEnd.IsZero() {
		return "", errors.New("session policy: no window end")
	}
	var extra []statement
	if spec.Profile.SessionPolicy != "" {
		var doc struct {
			Statement json.RawMessage `json:"Statement"`
		}
		if err := json.Unmarshal([]byte(spec.Profile.SessionPolicy), &doc); err != nil {
			return "", fmt.Errorf("session policy of profile %s: %w", spec.Profile.Name, err)
		}
		if err := json.Unmarshal(doc.Statement, &extra); err != nil {
			var one statement
			if err1 := json.Unmarshal(doc.Statement, &one); err1 != nil {
				return "", fmt.Errorf("session policy of profile %s: Statement: %w", spec.Profile.Name, err)
			}
			extra = []statement{one}
		}
	}
	var st []statement
	switch spec.Profile.Kind {
	case KindSTS:
		if len(extra) > 0 {
			st = extra
		} else {
			st = []statement{{Sid: "Role", Effect: "Allow", Action: "*", Resource: "*"}}
		}
	case KindSSM:
		if len(spec.Targets) == 0 {
			return "", errors.New("session policy: ssm grant without instances")
		}
		if spec.RequestID == "" || strings.ContainsAny(spec.RequestID, "*?${}/") {
			return "", fmt.Errorf("session policy: request id %q cannot name sessions", spec.RequestID)
		}
		res := make([]string, 0, len(spec.Targets)+len(ssmDocuments))
		for _, t := range spec.Targets {
			if !bot.IsInstanceID(t.ID) {
				return "", fmt.Errorf("session policy: bad instance id %q", t.ID)
			}
			res = append(res, fmt.Sprintf("arn:%s:ec2:*:*:instance/%s", partition, t.ID))
		}
		for _, d := range ssmDocuments {
			res = append(res, fmt.Sprintf("arn:%s:ssm:*:*:document/%s", partition, d))
		}
		st = []statement{
			{Sid: "Start", Effect: "Allow", Action: "ssm:StartSession", Resource: res,
				Condition: map[string]map[string]string{"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}}},
			{Sid: "OwnSessions", Effect: "Allow", Action: []string{"ssm:TerminateSession", "ssm:ResumeSession"},
				Resource: fmt.Sprintf("arn:%s:ssm:*:*:session/%s-*", partition, spec.RequestID)},
			{Sid: "Read", Effect: "Allow", Action: ssmReadActions, Resource: "*"},
		}
		for _, s := range extra {
			if s.Effect != "Deny" {
				return "", fmt.Errorf("session policy of ssm profile %s: only Deny statements may be added", spec.Profile.Name)
			}
			st = append(st, s)
		}
	case KindECSExec:
		ecs, err := ecsStatements(spec, partition)
		if err != nil {
			return "", err
		}
		st = ecs
		for _, s := range extra {
			if s.Effect != "Deny" {
				return "", fmt.Errorf("session policy of ecs-exec profile %s: only Deny statements may be added", spec.Profile.Name)
			}
			st = append(st, s)
		}
	default:
		return "", fmt.Errorf("session policy: unknown profile kind %q", spec.Profile.Kind)
	}
	// The fence around tokken's own resources. An sts grant may do
	// whatever its role allows, so its policy denies every action on them
	// by ARN. An ssm grant denies every action but the session calls it
	// allows, on any resource: the same fence, without the ARN list that
	// would not fit next to MaxInstances instances.
	switch spec.Profile.Kind {
	case KindSTS:
		for _, a := range spec.Protected {
			if !strings.HasPrefix(a, "arn:") {
				return "", fmt.Errorf("session policy: protected resource %q is not an ARN", a)
			}
		}
		if len(spec.Protected) > 0 {
			st = append(st, statement{Sid: "TokkenItself", Effect: "Deny", Action: "*", Resource: spec.Protected})
		}
	case KindSSM:
		st = append(st, statement{Sid: "Fence", Effect: "Deny", NotAction: ssmGrantActions, Resource: "*"})
	}
	st = append(st, statement{Sid: "WindowEnd", Effect: "Deny", Action: "*", Resource: "*",
		Condition: map[string]map[string]string{
			"DateGreaterThan": {"aws:CurrentTime": spec.WindowEnd.UTC().Format(time.RFC3339)},
		}})
	b, err := json.Marshal(policyDoc{Version: "2012-10-17", Statement: st})
	if err != nil {
		return "", fmt.Errorf("session policy: %w", err)
	}
	if len(b) > maxPolicyChars {
		if len(spec.Targets) == 0 {
			return "", fmt.Errorf("session policy of profile %s is %d characters, over STS's %d: shorten the profile's session_policy", spec.Profile.Name, len(b), maxPolicyChars)
		}
		return "", fmt.Errorf("session policy for %d instances is %d characters, over STS's %d: request fewer instances", len(spec.Targets), len(b), maxPolicyChars)
	}
	return string(b), nil
}

// NewGrantSpec builds the spec to issue r's grant until windowEnd, as seen
// at now, from the profile settings r was approved with; its session policy
// denies every action on the protected ARNs (tokken's own resources).
func NewGrantSpec(r *Request, windowEnd, now time.Time, partition string, protected ...string) (GrantSpec, error) {
	p := Profile{Name: r.Profile, Kind: r.Kind, RoleARN: r.RoleARN, SessionPolicy: r.SessionPolicy}
	spec := GrantSpec{
		RequestID: r.ID, Requester: r.Requester, Profile: p, Targets: r.Targets, ECS: r.ECS,
		WindowEnd: windowEnd, DurationSeconds: SessionSeconds(windowEnd.Sub(now)),
		Protected: protected,
	}
	pol, err := SessionPolicy(spec, partition)
	if err != nil {
		return GrantSpec{}, err
	}
	spec.SessionPolicy = pol
	return spec, nil
}
