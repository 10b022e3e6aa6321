// Package access is the lifecycle of an access request: requested, approved
// (N of M, or break-glass), active for a window that starts at activation,
// then expired, revoked or failed; with the grant that makes it real and the
// revocation that makes it end.
package access

import "time"

// Kind is what a profile grants.
type Kind string

// Profile kinds.
const (
	// KindSTS grants credentials for an IAM role (console link + CLI exports).
	KindSTS Kind = "sts"
	// KindSSM grants SSM Session Manager access to named instances only.
	KindSSM Kind = "ssm"
	// KindECSExec grants ECS Exec (a shell in a container) on the tasks of
	// one ECS cluster that its ECSSelector allows.
	KindECSExec Kind = "ecs-exec"
	// KindIdentityCenter grants a permission set on an AWS account through
	// IAM Identity Center: an account assignment for the requester, or the
	// requester's membership of a group (see IDCSelector).
	KindIdentityCenter Kind = "identity-center"
)

// InstanceSelector says which instances an ssm profile may target: the
// listed ids, or instances carrying all of Tags.
type InstanceSelector struct {
	IDs  []string          `json:"ids,omitempty" yaml:"ids"`
	Tags map[string]string `json:"tags,omitempty" yaml:"tags"`
}

// Profile is one entry of the catalogue (policies/profiles.yaml): a kind of
// access people may ask for.
type Profile struct {
	Name        string
	Description string
	Kind        Kind
	// RoleARN is the role assumed for the grant (sts, ssm and ecs-exec;
	// for ssm the session policy narrows it to the approved instances).
	// identity-center profiles have none.
	RoleARN   string
	Instances InstanceSelector
	// ECS says which tasks an ecs-exec profile may target (see ecs.go).
	ECS ECSSelector
	// IDC says what an identity-center profile grants (see idc.go).
	IDC IDCSelector
	// DefaultDuration is used when the requester names none; Presets are
	// offered in the modal; MaxDuration is never exceeded.
	DefaultDuration time.Duration
	MaxDuration     time.Duration
	Presets         []time.Duration
	// Approvals is how many distinct approvers are needed (0: none).
	Approvals int
	// ApproverChannel is the Slack channel id where the request is posted.
	ApproverChannel string
	// BreakGlass allows self-approval with a mandatory reason.
	BreakGlass bool
	// SessionPolicy is an optional IAM policy JSON further narrowing the grant.
	SessionPolicy string
}

// Catalogue is the set of profiles. Implemented by package policies.
type Catalogue interface {
	Profile(name string) (Profile, bool)
	Profiles() []Profile
}
