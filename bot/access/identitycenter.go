package access

import (
	"context"
	"fmt"
	"time"
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

// ErrNoIdentityUser reports that Identity Center has no user for the
// identifier tokken looked for (the requester's Slack e-mail, or the
// user name mapped in groups.yaml).
type ErrNoIdentityUser struct {
	Identifier string
}

func (e *ErrNoIdentityUser) Error() string {
	return fmt.Sprintf("IAM Identity Center has no user %s", e.Identifier)
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
