// Package identitycenter is tokken's IAM Identity Center client: [Client]
// implements access.IdentityCenter over SSO Admin (account assignments,
// permission sets) and Identity Store (users, groups, memberships) for one
// Identity Center instance.
//
// Account assignments are asynchronous: CreateAccountAssignment and
// DeleteAccountAssignment return IN_PROGRESS and a request id, and the
// Client follows DescribeAccountAssignmentCreationStatus /
// DeletionStatus every [Options.PollInterval] until SUCCEEDED, FAILED
// (*access.AssignmentFailedError with Identity Center's FailureReason) or
// the end of ctx.
//
// ConflictException from CreateAccountAssignment or DeleteAccountAssignment
// means another write to the same assignment has not finished (for example
// the removal of an expiring grant racing a new grant of the same
// assignment); AWS recommends retrying it, and the Client does, every poll
// interval, [Options.ConflictRetries] times. If Create still conflicts after
// that and the assignment exists, Assign succeeds: what was asked for holds.
// Creating an assignment that already exists is not an error either (the
// caller asks [Client.Assigned] first to tell pre-existing access apart).
// Unassign of an assignment that does not exist, AddMember of a member and
// RemoveMember of a non-member do nothing.
//
// Errors that retrying cannot fix (no such user, group or permission set,
// ValidationException, AccessDeniedException) are bot.Permanent; throttling
// and server errors are retried by the SDK retryer that infra/awsconfig
// configures, and returned when it gives up.
//
// The worker's role needs sso:ListInstances (only when no instance ARN is
// configured), sso:ListPermissionSets, sso:DescribePermissionSet,
// sso:ListAccountAssignments, sso:CreateAccountAssignment,
// sso:DeleteAccountAssignment, sso:DescribeAccountAssignmentCreationStatus,
// sso:DescribeAccountAssignmentDeletionStatus, identitystore:GetUserId,
// identitystore:GetGroupId, identitystore:GetGroupMembershipId,
// identitystore:CreateGroupMembership and
// identitystore:DeleteGroupMembership (template.yaml). Creating and deleting
// an assignment for a user also makes Identity Center provision the
// permission set's role in the account, which needs the IAM and
// Organizations permissions the IAM Identity Center documentation lists for
// CreateAccountAssignment.
package identitycenter

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	idstypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// IAMActions returns the IAM actions the Client's calls need when the
// instance ARN and identity store id are configured (discovering them also
// needs sso:ListInstances, which IAM allows only on Resource "*"). The
// worker's policies in template.yaml grant exactly these.
func IAMActions() []string {
	return []string{
		"sso:ListPermissionSets", "sso:DescribePermissionSet", "sso:ListAccountAssignments",
		"sso:CreateAccountAssignment", "sso:DescribeAccountAssignmentCreationStatus",
		"sso:DeleteAccountAssignment", "sso:DescribeAccountAssignmentDeletionStatus",
		"identitystore:GetUserId", "identitystore:GetGroupId", "identitystore:GetGroupMembershipId",
		"identitystore:CreateGroupMembership", "identitystore:DeleteGroupMembership",
	}
}

// Defaults of [Options].
const (
	DefaultPollInterval    = 2 * time.Second
	DefaultConflictRetries = 10
)

// Options configures a [Client].
type Options struct {
	// InstanceARN is the Identity Center instance
	// (arn:aws:sso:::instance/ssoins-...). Empty: discovered with
	// ListInstances on first use, which fails when the account sees no
	// instance or several.
	InstanceARN string
	// IdentityStoreID is the instance's identity store (d-...). Empty:
	// read from ListInstances. Discovery needs sso:ListInstances, which
	// template.yaml does not grant: it configures both.
	IdentityStoreID string
	// PollInterval is the wait between status calls of an assignment
	// operation, and before retrying a ConflictException
	// (DefaultPollInterval when zero).
	PollInterval time.Duration
	// ConflictRetries bounds the retries of a conflicting Create or Delete
	// (DefaultConflictRetries when zero).
	ConflictRetries int
}

// Instance is the Identity Center instance a Client acts on.
type Instance struct {
	ARN             string
	IdentityStoreID string
}

// Client acts on one Identity Center instance. Create it with [New]; it is
// safe for concurrent use.
type Client struct {
	sso  *ssoadmin.Client
	ids  *identitystore.Client
	opts Options

	mu   sync.Mutex
	inst Instance // resolved instance; ARN "" until resolved

	psMu     sync.Mutex
	psByName map[string]string // permission set ARNs found by name
}

var _ access.IdentityCenter = (*Client)(nil)

// New returns a Client over the given SDK clients. It makes no call: a
// missing instance ARN or identity store id is discovered on first use.
func New(sso *ssoadmin.Client, ids *identitystore.Client, opts Options) *Client {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.ConflictRetries <= 0 {
		opts.ConflictRetries = DefaultConflictRetries
	}
	c := &Client{sso: sso, ids: ids, opts: opts}
	if opts.InstanceARN != "" && opts.IdentityStoreID != "" {
		c.inst = Instance{ARN: opts.InstanceARN, IdentityStoreID: opts.IdentityStoreID}
	}
	return c
}

// NewFromConfig is [New] with SDK clients built from cfg.
func NewFromConfig(cfg aws.Config, opts Options) *Client {
	return New(ssoadmin.NewFromConfig(cfg), identitystore.NewFromConfig(cfg), opts)
}

// Instance returns the instance the Client acts on, discovering it with
// ListInstances when the options leave the ARN or identity store id empty:
// the one instance whose ARN (or identity store id) the options name, or
// the only instance the account sees. No instance, several without a
// choice, or none matching the options is a permanent error.
func (c *Client) Instance(ctx context.Context) (Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inst.ARN != "" {
		return c.inst, nil
	}
	var all []Instance
	p := ssoadmin.NewListInstancesPaginator(c.sso, &ssoadmin.ListInstancesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return Instance{}, fmt.Errorf("identity center: list instances: %w", classify(err))
		}
		for _, m := range out.Instances {
			all = append(all, Instance{ARN: aws.ToString(m.InstanceArn), IdentityStoreID: aws.ToString(m.IdentityStoreId)})
		}
	}
	var match []Instance
	for _, in := range all {
		if (c.opts.InstanceARN == "" || in.ARN == c.opts.InstanceARN) &&
			(c.opts.IdentityStoreID == "" || in.IdentityStoreID == c.opts.IdentityStoreID) {
			match = append(match, in)
		}
	}
	switch {
	case len(all) == 0:
		return Instance{}, bot.Permanent(errors.New("identity center: this account sees no IAM Identity Center instance " +
			"(tokken must run in the organization's management account or the delegated administrator account for IAM Identity Center)"))
	case len(match) == 0:
		return Instance{}, bot.Permanent(fmt.Errorf("identity center: no instance matches instance ARN %q and identity store %q (this account sees %s)",
			c.opts.InstanceARN, c.opts.IdentityStoreID, instanceList(all)))
	case len(match) > 1:
		return Instance{}, bot.Permanent(fmt.Errorf("identity center: this account sees %d instances (%s); configure the instance ARN to choose one",
			len(match), instanceList(match)))
	}
	c.inst = match[0]
	return c.inst, nil
}

func instanceList(ins []Instance) string {
	s := make([]string, len(ins))
	for i, in := range ins {
		s[i] = in.ARN + " (" + in.IdentityStoreID + ")"
	}
	return strings.Join(s, ", ")
}

// UserID returns the id of the Identity Store user whose primary e-mail
// (emails.value) is identifier, or whose user name is identifier when it
// has no "@". No such user is a permanent *access.ErrNoIdentityUser.
func (c *Client) UserID(ctx context.Context, identifier string) (string, error) {
	identifier = strings.TrimSpace(identifier)
	if identifier == "" {
		return "", bot.Permanent(errors.New("identity center: look up user: empty e-mail or user name"))
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return "", err
	}
	path := "userName"
	if strings.Contains(identifier, "@") {
		path = "emails.value"
	}
	out, err := c.ids.GetUserId(ctx, &identitystore.GetUserIdInput{
		IdentityStoreId: aws.String(in.IdentityStoreID),
		AlternateIdentifier: &idstypes.AlternateIdentifierMemberUniqueAttribute{Value: idstypes.UniqueAttribute{
			AttributePath: aws.String(path), AttributeValue: document.NewLazyDocument(identifier),
		}},
	})
	if notFoundOf(err, idstypes.ResourceTypeUser) {
		return "", bot.Permanent(&access.ErrNoIdentityUser{Identifier: identifier})
	}
	if err != nil {
		return "", fmt.Errorf("identity center: look up user %s by %s: %w", identifier, path, classify(err))
	}
	return aws.ToString(out.UserId), nil
}

// groupIDPattern matches Identity Store group ids (a UUID, with a 10-digit
// hex prefix in identity stores created since 2022).
var groupIDPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([0-9a-f]{10}-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
})

// GroupID returns the id of the group whose display name is name, or name
// itself when it is a group id. No such group is a permanent error.
func (c *Client) GroupID(ctx context.Context, name string) (string, error) {
	name = strings.TrimSpace(name)
	if groupIDPattern().MatchString(name) {
		return name, nil
	}
	if name == "" {
		return "", bot.Permanent(errors.New("identity center: look up group: empty name"))
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return "", err
	}
	out, err := c.ids.GetGroupId(ctx, &identitystore.GetGroupIdInput{
		IdentityStoreId: aws.String(in.IdentityStoreID),
		AlternateIdentifier: &idstypes.AlternateIdentifierMemberUniqueAttribute{Value: idstypes.UniqueAttribute{
			AttributePath: aws.String("displayName"), AttributeValue: document.NewLazyDocument(name),
		}},
	})
	if notFoundOf(err, idstypes.ResourceTypeGroup) {
		return "", bot.Permanent(fmt.Errorf("identity center: identity store %s has no group named %q", in.IdentityStoreID, name))
	}
	if err != nil {
		return "", fmt.Errorf("identity center: look up group %q: %w", name, classify(err))
	}
	return aws.ToString(out.GroupId), nil
}

// PermissionSet describes the permission set named nameOrARN (an ARN, or a
// name looked up with ListPermissionSets and DescribePermissionSet; the
// Client remembers the ARN a name had). No such permission set is a
// permanent error.
func (c *Client) PermissionSet(ctx context.Context, nameOrARN string) (access.PermissionSet, error) {
	nameOrARN = strings.TrimSpace(nameOrARN)
	if nameOrARN == "" {
		return access.PermissionSet{}, bot.Permanent(errors.New("identity center: permission set: empty name"))
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return access.PermissionSet{}, err
	}
	if strings.HasPrefix(nameOrARN, "arn:") {
		ps, err := c.describePermissionSet(ctx, in, nameOrARN)
		if err != nil {
			return access.PermissionSet{}, fmt.Errorf("identity center: describe permission set %s: %w", nameOrARN, err)
		}
		return ps, nil
	}
	// A name found before is described again (the session duration may
	// have changed) and looked up afresh if it no longer matches.
	c.psMu.Lock()
	known := c.psByName[nameOrARN]
	c.psMu.Unlock()
	if known != "" {
		if ps, err := c.describePermissionSet(ctx, in, known); err == nil && ps.Name == nameOrARN {
			return ps, nil
		}
	}
	p := ssoadmin.NewListPermissionSetsPaginator(c.sso, &ssoadmin.ListPermissionSetsInput{InstanceArn: aws.String(in.ARN)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return access.PermissionSet{}, fmt.Errorf("identity center: list permission sets of %s: %w", in.ARN, classify(err))
		}
		for _, arn := range out.PermissionSets {
			ps, err := c.describePermissionSet(ctx, in, arn)
			if err != nil {
				return access.PermissionSet{}, fmt.Errorf("identity center: describe permission set %s: %w", arn, err)
			}
			if ps.Name == nameOrARN {
				c.psMu.Lock()
				if c.psByName == nil {
					c.psByName = map[string]string{}
				}
				c.psByName[nameOrARN] = arn
				c.psMu.Unlock()
				return ps, nil
			}
		}
	}
	return access.PermissionSet{}, bot.Permanent(fmt.Errorf("identity center: instance %s has no permission set named %q", in.ARN, nameOrARN))
}

func (c *Client) describePermissionSet(ctx context.Context, in Instance, arn string) (access.PermissionSet, error) {
	out, err := c.sso.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{
		InstanceArn: aws.String(in.ARN), PermissionSetArn: aws.String(arn),
	})
	if err != nil {
		var nf *ssotypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return access.PermissionSet{}, bot.Permanent(err)
		}
		return access.PermissionSet{}, classify(err)
	}
	ps := access.PermissionSet{ARN: arn}
	if out.PermissionSet == nil {
		return ps, nil
	}
	ps.Name = aws.ToString(out.PermissionSet.Name)
	ps.SessionDuration = time.Hour // Identity Center's default
	if s := aws.ToString(out.PermissionSet.SessionDuration); s != "" {
		d, err := ParseDuration(s)
		if err != nil {
			return access.PermissionSet{}, fmt.Errorf("session duration of %s: %w", ps.Name, err)
		}
		ps.SessionDuration = d
	}
	return ps, nil
}

// isoDuration matches the ISO-8601 durations Identity Center uses for
// session durations (PT1H, PT12H, PT30M, PT1H30M); days are accepted too.
var isoDuration = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)
})

// ParseDuration parses an ISO-8601 duration of days, hours, minutes and
// seconds, such as PT1H or PT1H30M.
func ParseDuration(s string) (time.Duration, error) {
	m := isoDuration().FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration such as PT1H", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an ISO-8601 duration such as PT1H: %w", s, err)
		}
		d += time.Duration(n) * unit
	}
	return d, nil
}

// checkAssignment rejects an assignment that Identity Center would refuse
// with a ValidationException anyway, naming what is wrong.
func checkAssignment(a access.Assignment) error {
	if !access.ValidAccountID(a.Account) {
		return bot.Permanent(fmt.Errorf("identity center: account %q is not a 12-digit AWS account id", a.Account))
	}
	if !strings.HasPrefix(a.PermissionSetARN, "arn:") {
		return bot.Permanent(fmt.Errorf("identity center: %q is not a permission set ARN", a.PermissionSetARN))
	}
	if a.PrincipalType != access.PrincipalUser && a.PrincipalType != access.PrincipalGroup {
		return bot.Permanent(fmt.Errorf("identity center: principal type %q is neither %s nor %s", a.PrincipalType, access.PrincipalUser, access.PrincipalGroup))
	}
	if a.PrincipalID == "" {
		return bot.Permanent(errors.New("identity center: assignment without a principal id"))
	}
	return nil
}

func describe(a access.Assignment) string {
	return fmt.Sprintf("%s on account %s for %s %s", a.PermissionSetARN, a.Account, strings.ToLower(a.PrincipalType), a.PrincipalID)
}

// Assigned reports whether the assignment exists now (ListAccountAssignments
// of its account and permission set).
func (c *Client) Assigned(ctx context.Context, a access.Assignment) (bool, error) {
	if err := checkAssignment(a); err != nil {
		return false, err
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return false, err
	}
	p := ssoadmin.NewListAccountAssignmentsPaginator(c.sso, &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: aws.String(in.ARN), AccountId: aws.String(a.Account), PermissionSetArn: aws.String(a.PermissionSetARN),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("identity center: list assignments of %s on account %s: %w", a.PermissionSetARN, a.Account, classify(err))
		}
		for _, x := range out.AccountAssignments {
			if string(x.PrincipalType) == a.PrincipalType && aws.ToString(x.PrincipalId) == a.PrincipalID {
				return true, nil
			}
		}
	}
	return false, nil
}

// Assign creates the assignment and waits until Identity Center reports it
// provisioned.
func (c *Client) Assign(ctx context.Context, a access.Assignment) error {
	if err := checkAssignment(a); err != nil {
		return err
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return err
	}
	var st *ssotypes.AccountAssignmentOperationStatus
	err = c.retryConflict(ctx, func() error {
		out, err := c.sso.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
			InstanceArn: aws.String(in.ARN), TargetId: aws.String(a.Account), TargetType: ssotypes.TargetTypeAwsAccount,
			PermissionSetArn: aws.String(a.PermissionSetARN),
			PrincipalType:    ssotypes.PrincipalType(a.PrincipalType), PrincipalId: aws.String(a.PrincipalID),
		})
		if err == nil {
			st = out.AccountAssignmentCreationStatus
		}
		return err
	})
	if isConflict(err) {
		// Still conflicting after every retry: if the assignment is there,
		// what was asked for holds.
		if ok, aerr := c.Assigned(ctx, a); aerr == nil && ok {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("identity center: assign %s: %w", describe(a), classify(err))
	}
	err = c.follow(ctx, "create", st, func(id string) (*ssotypes.AccountAssignmentOperationStatus, error) {
		out, err := c.sso.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: aws.String(in.ARN), AccountAssignmentCreationRequestId: aws.String(id),
		})
		if err != nil {
			return nil, err
		}
		return out.AccountAssignmentCreationStatus, nil
	})
	if err != nil {
		return fmt.Errorf("identity center: assign %s: %w", describe(a), err)
	}
	return nil
}

// Unassign deletes the assignment and waits until Identity Center reports
// it gone. It asks for the deletion even when ListAccountAssignments does
// not show the assignment: a creation still in progress (an activation cut
// short while it waited) is not listed yet, and would finish after tokken
// took the access for ended, whereas a deletion is refused with
// ConflictException until the creation is done, and then removes it. A
// deletion that fails for an assignment that is not there is success; one
// still conflicting is not, since the creation may yet finish.
func (c *Client) Unassign(ctx context.Context, a access.Assignment) error {
	if err := checkAssignment(a); err != nil {
		return err
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return err
	}
	var st *ssotypes.AccountAssignmentOperationStatus
	err = c.retryConflict(ctx, func() error {
		out, err := c.sso.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{
			InstanceArn: aws.String(in.ARN), TargetId: aws.String(a.Account), TargetType: ssotypes.TargetTypeAwsAccount,
			PermissionSetArn: aws.String(a.PermissionSetARN),
			PrincipalType:    ssotypes.PrincipalType(a.PrincipalType), PrincipalId: aws.String(a.PrincipalID),
		})
		if err == nil {
			st = out.AccountAssignmentDeletionStatus
		}
		return err
	})
	if err != nil {
		err = classify(err)
	} else {
		err = c.follow(ctx, "delete", st, func(id string) (*ssotypes.AccountAssignmentOperationStatus, error) {
			out, err := c.sso.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
				InstanceArn: aws.String(in.ARN), AccountAssignmentDeletionRequestId: aws.String(id),
			})
			if err != nil {
				return nil, err
			}
			return out.AccountAssignmentDeletionStatus, nil
		})
	}
	if err != nil && !isConflict(err) && ctx.Err() == nil {
		// Not there (gone meanwhile, never made, or its permission set
		// deleted with it)?
		if still, aerr := c.Assigned(ctx, a); aerr == nil && !still {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("identity center: unassign %s: %w", describe(a), err)
	}
	return nil
}

// retryConflict runs call, and again after each poll interval while it
// fails with ConflictException, at most ConflictRetries more times.
func (c *Client) retryConflict(ctx context.Context, call func() error) error {
	err := call()
	for i := 0; i < c.opts.ConflictRetries && isConflict(err); i++ {
		if werr := c.wait(ctx); werr != nil {
			return errors.Join(err, werr)
		}
		err = call()
	}
	return err
}

func isConflict(err error) bool {
	var ce *ssotypes.ConflictException
	return errors.As(err, &ce)
}

// follow polls an operation's status until it leaves IN_PROGRESS.
func (c *Client) follow(ctx context.Context, op string, st *ssotypes.AccountAssignmentOperationStatus,
	status func(id string) (*ssotypes.AccountAssignmentOperationStatus, error)) error {
	if st == nil {
		return fmt.Errorf("%s request returned no status", op)
	}
	id := aws.ToString(st.RequestId)
	for {
		switch st.Status {
		case ssotypes.StatusValuesSucceeded:
			return nil
		case ssotypes.StatusValuesFailed:
			return &access.AssignmentFailedError{Op: op, Reason: aws.ToString(st.FailureReason)}
		}
		if err := c.wait(ctx); err != nil {
			return fmt.Errorf("%s request %s still %s: %w", op, id, st.Status, err)
		}
		next, err := status(id)
		if err != nil {
			return fmt.Errorf("status of %s request %s (last %s): %w", op, id, st.Status, classify(err))
		}
		if next == nil {
			return fmt.Errorf("status of %s request %s: empty response", op, id)
		}
		st = next
	}
}

// wait sleeps one poll interval, or until ctx ends.
func (c *Client) wait(ctx context.Context) error {
	t := time.NewTimer(c.opts.PollInterval)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// IsMember reports whether the user is a member of the group now.
func (c *Client) IsMember(ctx context.Context, groupID, userID string) (bool, error) {
	id, err := c.membershipID(ctx, groupID, userID)
	return id != "", err
}

// membershipID returns the id of the user's membership of the group, ""
// when there is none.
func (c *Client) membershipID(ctx context.Context, groupID, userID string) (string, error) {
	in, err := c.Instance(ctx)
	if err != nil {
		return "", err
	}
	out, err := c.ids.GetGroupMembershipId(ctx, &identitystore.GetGroupMembershipIdInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), GroupId: aws.String(groupID),
		MemberId: &idstypes.MemberIdMemberUserId{Value: userID},
	})
	if notFoundOf(err, idstypes.ResourceTypeGroupMembership) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("identity center: membership of user %s in group %s: %w", userID, groupID, classify(err))
	}
	return aws.ToString(out.MembershipId), nil
}

// AddMember makes the user a member of the group; already a member is not
// an error.
func (c *Client) AddMember(ctx context.Context, groupID, userID string) error {
	in, err := c.Instance(ctx)
	if err != nil {
		return err
	}
	_, err = c.ids.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), GroupId: aws.String(groupID),
		MemberId: &idstypes.MemberIdMemberUserId{Value: userID},
	})
	var ce *idstypes.ConflictException
	if errors.As(err, &ce) && ce.Reason == idstypes.ConflictExceptionReasonUniquenessConstraintViolation {
		return nil // already a member
	}
	if err != nil {
		return fmt.Errorf("identity center: add user %s to group %s: %w", userID, groupID, classify(err))
	}
	return nil
}

// RemoveMember ends the user's membership of the group; not a member is
// not an error.
func (c *Client) RemoveMember(ctx context.Context, groupID, userID string) error {
	id, err := c.membershipID(ctx, groupID, userID)
	if err != nil || id == "" {
		return err
	}
	in, err := c.Instance(ctx)
	if err != nil {
		return err
	}
	_, err = c.ids.DeleteGroupMembership(ctx, &identitystore.DeleteGroupMembershipInput{
		IdentityStoreId: aws.String(in.IdentityStoreID), MembershipId: aws.String(id),
	})
	if notFoundOf(err, idstypes.ResourceTypeGroupMembership) {
		return nil // removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("identity center: remove user %s from group %s: %w", userID, groupID, classify(err))
	}
	return nil
}

// notFoundOf reports whether err is Identity Store's
// ResourceNotFoundException for a resource of type t.
func notFoundOf(err error, t idstypes.ResourceType) bool {
	var nf *idstypes.ResourceNotFoundException
	return errors.As(err, &nf) && nf.ResourceType == t
}

// classify marks the errors that retrying cannot fix as bot.Permanent.
func classify(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "ValidationException", "AccessDeniedException", "ResourceNotFoundException":
		return bot.Permanent(err)
	}
	return err
}
