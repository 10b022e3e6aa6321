package access

import (
	"context"
	"fmt"
	"time"

	"github.com/tokken/tokken/bot"
)

// Principal types of an Identity Center account assignment.
const (
	PrincipalUser  = "USER"
	PrincipalGroup = "GROUP"
)

// Assignment is one IAM Identity Center account assignment: a permission set
// given to a user or group on an account.
type Assignment struct {
	Account          string // 12-digit AWS account id
	PermissionSetARN string
	PrincipalType    string // PrincipalUser or PrincipalGroup
	PrincipalID      string // Identity Store user or group id
}

// PermissionSet is what tokken needs to know of a permission set.
type PermissionSet struct {
	ARN  string
	Name string
	// SessionDuration bounds how long a session opened through the access
	// portal outlives the assignment's removal (default 1 h, up to 12 h).
	SessionDuration time.Duration
}

// IdentityCenter grants access through IAM Identity Center, either by an
// account assignment for the requester or by the requester's membership of
// a group that holds assignments. Implemented by infra/identitycenter over
// sso-admin and identitystore, for one Identity Center instance.
//
// Assign and Unassign return only when Identity Center reports the
// operation finished (DescribeAccountAssignmentCreationStatus /
// DeletionStatus SUCCEEDED), or failed (*AssignmentFailedError), or when
// ctx ends.
type IdentityCenter interface {
	// UserID returns the Identity Store user id whose e-mail (emails.value)
	// or, when the value has no "@", user name is identifier. No such user
	// is an *ErrNoIdentityUser.
	UserID(ctx context.Context, identifier string) (string, error)
	// GroupID returns the id of the group with that display name (or the id
	// itself when given one).
	GroupID(ctx context.Context, name string) (string, error)
	// PermissionSet describes a permission set given by name or ARN.
	PermissionSet(ctx context.Context, nameOrARN string) (PermissionSet, error)
	// Assigned reports whether the assignment exists now.
	Assigned(ctx context.Context, a Assignment) (bool, error)
	// Assign creates the assignment and waits until it is provisioned.
	Assign(ctx context.Context, a Assignment) error
	// Unassign deletes the assignment and waits until it is gone; an
	// assignment that does not exist is not an error.
	Unassign(ctx context.Context, a Assignment) error
	// IsMember reports whether the user is a member of the group now.
	IsMember(ctx context.Context, groupID, userID string) (bool, error)
	// AddMember makes the user a member of the group (already a member is
	// not an error).
	AddMember(ctx context.Context, groupID, userID string) error
	// RemoveMember ends the user's membership of the group (not a member is
	// not an error).
	RemoveMember(ctx context.Context, groupID, userID string) error
}

// IdentityUsers maps Slack users to their Identity Center users, for
// organisations where the e-mail Slack has is not how Identity Center knows
// someone. Implemented by package policies (groups.yaml's
// identity_center_users): the mapping is the operators', never the
// requester's, and the worker asks it again whenever it grants.
type IdentityUsers interface {
	// IdentityCenterUser returns the Identity Center user name or e-mail p
	// is mapped to (by Slack user id, else by Slack e-mail), and whether
	// there is one.
	IdentityCenterUser(p bot.Principal) (string, bool)
}

// ErrNoIdentityUser reports that Identity Center has no user for the
// identifier tokken looked for: the requester's Slack e-mail, or what
// groups.yaml maps them to (Mapped).
type ErrNoIdentityUser struct {
	Identifier string
	Mapped     bool
}

func (e *ErrNoIdentityUser) Error() string {
	return fmt.Sprintf("IAM Identity Center has no user %s", e.Identifier)
}

// Looked says, for the requester, what tokken looked for: "the e-mail
// a@example.com (the address Slack has for you)", or the mapped user.
func (e *ErrNoIdentityUser) Looked() string {
	if e.Mapped {
		return fmt.Sprintf("%s (the user identity_center_users in groups.yaml maps you to)", e.Identifier)
	}
	return fmt.Sprintf("with the e-mail %s (the address Slack has for you)", e.Identifier)
}

// Fix says what the requester can do about it.
func (e *ErrNoIdentityUser) Fix() string {
	if e.Mapped {
		return "ask the tokken operators to correct your entry in identity_center_users (groups.yaml)"
	}
	return "ask your AWS admins to add that address to your Identity Center user, or the tokken operators to map your Slack user to it (identity_center_users in groups.yaml)"
}

// AssignmentFailedError reports that Identity Center finished an
// assignment's creation or deletion with FAILED.
type AssignmentFailedError struct {
	Op     string // "create" or "delete"
	Reason string // Identity Center's FailureReason
}

func (e *AssignmentFailedError) Error() string {
	return fmt.Sprintf("identity center: %s account assignment failed: %s", e.Op, e.Reason)
}
