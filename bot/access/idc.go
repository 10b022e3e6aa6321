package access

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
)

// IDCSelector says what an identity-center profile grants: the permission
// set PermissionSet on one of Accounts, through the one Identity Center
// instance tokken is configured with (an organisation has one). With
// Group set, tokken does not assign the permission set itself: it makes
// the requester a member of that group (which holds the assignments) for
// the window; Accounts and PermissionSet then say what the group gives, for
// the rules, the portal link and the session-duration check.
type IDCSelector struct {
	Accounts      []string `json:"accounts,omitempty" yaml:"accounts"`
	PermissionSet string   `json:"permission_set,omitempty" yaml:"permission_set"` // name or ARN
	Group         string   `json:"group,omitempty" yaml:"group"`                   // display name
}

// IDCGrant is what an identity-center request was approved for and, once
// activation looked, what Identity Center had and what tokken did.
type IDCGrant struct {
	Account       string `json:"account"`
	PermissionSet string `json:"permission_set"`  // as the profile names it
	Group         string `json:"group,omitempty"` // the group form: its display name

	// Resolved at activation.
	Identifier        string        `json:"identifier,omitempty"` // the e-mail looked up in the Identity Store
	UserID            string        `json:"user_id,omitempty"`
	GroupID           string        `json:"group_id,omitempty"`
	PermissionSetARN  string        `json:"permission_set_arn,omitempty"`
	PermissionSetName string        `json:"permission_set_name,omitempty"`
	SessionDuration   time.Duration `json:"session_duration,omitempty"`
	// PortalURL is the AWS access portal link for the account and
	// permission set (see PortalLink); "" when no portal is configured.
	PortalURL string `json:"portal_url,omitempty"`

	// Checked says activation looked, before granting, whether the
	// assignment (or membership) existed; Preexisting that it did: tokken
	// then grants nothing and never removes it. Both are recorded before
	// tokken grants anything, so a retried activation cannot mistake
	// tokken's own assignment for a permanent one.
	Checked     bool `json:"checked,omitempty"`
	Preexisting bool `json:"preexisting,omitempty"`
	// Granted says Identity Center reported the assignment (or
	// membership) made.
	Granted bool `json:"granted,omitempty"`
}

// ByGroup reports whether the grant is a group membership.
func (g *IDCGrant) ByGroup() bool { return g != nil && g.Group != "" }

// Owned reports whether the access may be tokken's to remove: it looked
// before granting and found none.
func (g *IDCGrant) Owned() bool { return g != nil && g.Checked && !g.Preexisting }

// Describe names the grant in messages: "permission set ReadOnly on
// account 111111111111" (plus the group of the group form).
func (g *IDCGrant) Describe() string {
	ps := g.PermissionSetName
	if ps == "" {
		ps = g.PermissionSet
	}
	s := fmt.Sprintf("permission set %s on account %s", ps, g.Account)
	if g.Group != "" {
		s = fmt.Sprintf("membership of group %s (%s)", g.Group, s)
	}
	return s
}

// Audit actions of identity-center grants.
const (
	// ActIDCAssigning records that no such access existed and tokken is
	// asking Identity Center for it (note: what, for whom).
	ActIDCAssigning = "access.idc_assigning"
	// ActIDCAssigned records that Identity Center made the assignment or
	// membership.
	ActIDCAssigned = "access.idc_assigned"
	// ActIDCPreexisting records that the requester already had the access
	// before tokken granted it: nothing is granted and nothing will be
	// removed.
	ActIDCPreexisting = "access.idc_preexisting"
	// ActIDCUnassigned records that tokken removed the assignment or
	// membership it made.
	ActIDCUnassigned = "access.idc_unassigned"
)

var (
	idcInstanceRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}$`)
	})
	permSetARNRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-z-]*:sso:::permissionSet/(sso)?ins-[a-zA-Z0-9-.]{16}/ps-[a-zA-Z0-9-./]{16}$`)
	})
	// permSetNameRE: length ≤ maxPermSetName, see ValidPermissionSet.
	permSetNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]+$`) })
)

// Identity Center's limits on names.
const (
	maxPermSetName  = 32
	maxIDCGroupName = 1024
)

// ValidAccountID reports whether s is a 12-digit AWS account id.
func ValidAccountID(s string) bool { return len(s) == 12 && strings.Trim(s, "0123456789") == "" }

// ValidIDCInstanceARN reports whether s is an IAM Identity Center instance
// ARN (arn:aws:sso:::instance/ssoins-…).
func ValidIDCInstanceARN(s string) bool { return idcInstanceRE().MatchString(s) }

// ValidPermissionSet reports whether s names a permission set: its name
// (1-32 of letters, digits and +=,.@-_) or its ARN.
func ValidPermissionSet(s string) bool {
	return permSetARNRE().MatchString(s) || len(s) <= maxPermSetName && permSetNameRE().MatchString(s)
}

// ValidIDCGroupName reports whether s can be an Identity Store group's
// display name.
func ValidIDCGroupName(s string) bool {
	return s != "" && len(s) <= maxIDCGroupName && strings.TrimSpace(s) == s && !strings.ContainsAny(s, "\n\r\t")
}

// PortalLink is the AWS access portal link that signs the user in to
// account with the permission set permissionSet (its name, which the
// portal calls the role): <portal>/#/console?account_id=…&role_name=…
// portal is the portal's start URL, e.g.
// https://d-1234567890.awsapps.com/start. "" when portal is "".
func PortalLink(portal, account, permissionSet string) string {
	if portal == "" {
		return ""
	}
	q := url.Values{"account_id": {account}, "role_name": {permissionSet}}
	return strings.TrimRight(portal, "/") + "/#/console?" + q.Encode()
}

// idcTarget picks the account of an identity-center request: the one
// asked for, or the profile's only account. Refusals are *ErrBadTarget
// naming the accounts the profile offers.
func idcTarget(p Profile, account string) (*IDCGrant, error) {
	sel := p.IDC
	if account == "" {
		if len(sel.Accounts) != 1 {
			return nil, &ErrBadTarget{Profile: p.Name, Why: fmt.Sprintf(
				"name the account before the reason, one of %s, e.g. `/access %s 1h %s <reason>`",
				strings.Join(sel.Accounts, ", "), p.Name, sel.Accounts[0])}
		}
		account = sel.Accounts[0]
	}
	if !slices.Contains(sel.Accounts, account) {
		return nil, &ErrBadTarget{Profile: p.Name, Why: fmt.Sprintf("account %s is not in this profile (accounts: %s)",
			account, strings.Join(sel.Accounts, ", "))}
	}
	return &IDCGrant{Account: account, PermissionSet: sel.PermissionSet, Group: sel.Group}, nil
}

// splitAccount takes a leading account id off a one-line request's
// reason: `/access prod-idc 1h 111111111111 why…`.
func splitAccount(reason string) (account, rest string) {
	f := strings.Fields(reason)
	if len(f) == 0 || !ValidAccountID(f[0]) {
		return "", reason
	}
	return f[0], strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(reason), f[0]))
}

// errNoIDC is the permanent failure of an identity-center grant in a tokken
// that has no Identity Center client.
var errNoIDC = errors.New("this tokken has no IAM Identity Center configured (TOKKEN_IDC_INSTANCE_ARN, TOKKEN_IDC_IDENTITY_STORE_ID): ask the tokken operators")

// errNoEmail refuses an identity-center grant to someone whose Slack
// profile shows no e-mail address and whom groups.yaml maps to no Identity
// Center user: tokken finds Identity Store users by one of them.
var errNoEmail = errors.New("Slack has no e-mail address for you and identity_center_users in groups.yaml maps you to no IAM Identity Center user: tokken finds your Identity Center user by one of them; ask the tokken operators to map you")

// idcUser finds the requester's Identity Store user: by the Identity
// Center user name or e-mail the policy maps them to (s.idcUsers) when it
// maps them, else by the e-mail Slack has for them. identifier is what it
// looked for. No e-mail and no mapping is errNoEmail; no such user is an
// *ErrNoIdentityUser naming identifier and whether it was mapped; both are
// permanent.
func (s *Service) idcUser(ctx context.Context, requester string) (identifier, userID string, err error) {
	who, err := s.dir.Lookup(ctx, requester)
	if err != nil {
		return "", "", fmt.Errorf("look up %s: %w", requester, err)
	}
	var mapped bool
	if s.idcUsers != nil {
		identifier, mapped = s.idcUsers.IdentityCenterUser(who)
	}
	if !mapped {
		if who.Email == "" {
			return "", "", bot.Permanent(errNoEmail)
		}
		identifier = who.Email
	}
	id, err := s.idc.UserID(ctx, identifier)
	var nouser *ErrNoIdentityUser
	if errors.As(err, &nouser) {
		return identifier, "", bot.Permanent(&ErrNoIdentityUser{Identifier: identifier, Mapped: mapped})
	}
	if err != nil {
		return identifier, "", err
	}
	return identifier, id, nil
}

// resolveIDC finds what grant g gives the requester, from the directory,
// the policy's mapping and Identity Center as they are now (never from
// what a stored request says): the requester's Identity Store user, the
// permission set, the portal link and, for the group form, the group's id.
// A requester without an Identity Store user is an error wrapping
// *ErrNoIdentityUser or errNoEmail (permanent).
func (s *Service) resolveIDC(ctx context.Context, requester string, g IDCGrant) (IDCGrant, error) {
	identifier, userID, err := s.idcUser(ctx, requester)
	if err != nil {
		if bot.IsPermanent(err) {
			return g, err
		}
		return g, fmt.Errorf("find the Identity Store user: %w", err)
	}
	ps, err := s.idc.PermissionSet(ctx, g.PermissionSet)
	if err != nil {
		return g, fmt.Errorf("describe permission set %s: %w", g.PermissionSet, err)
	}
	g.Identifier, g.UserID = identifier, userID
	g.PermissionSetARN, g.PermissionSetName, g.SessionDuration = ps.ARN, ps.Name, ps.SessionDuration
	g.PortalURL = PortalLink(s.portal, g.Account, ps.Name)
	g.GroupID = ""
	if g.ByGroup() {
		if g.GroupID, err = s.idc.GroupID(ctx, g.Group); err != nil {
			return g, fmt.Errorf("find group %s: %w", g.Group, err)
		}
	}
	return g, nil
}

// sameGrantee reports whether a recorded grant and a freshly resolved one
// give the same access to the same Identity Store user.
func (g *IDCGrant) sameGrantee(fresh IDCGrant) bool {
	return g.UserID == fresh.UserID && g.PermissionSetARN == fresh.PermissionSetARN && g.GroupID == fresh.GroupID
}

// activateIDC issues an identity-center grant for the activation token
// holds (Activate has claimed it, verified the request and fixed the
// window end). It finds the requester's Identity Store user, the
// permission set (and group); records whether the access already exists,
// before granting anything; and, when it does not, assigns it (or adds the
// membership) and waits for Identity Center to finish. Access that
// existed before is left alone, now and at the end, and reported.
func (s *Service) activateIDC(ctx, hctx context.Context, id, token string, r Request) error {
	fail := func(err error) error { return s.activationFailed(ctx, id, token, err, false) }
	if s.idc == nil {
		return fail(bot.Permanent(errNoIDC))
	}
	if r.IDC == nil {
		return s.refuseActivation(ctx, id, token, "the request names no account")
	}
	if err := s.scheduleExpiry(hctx, id, r.Window.ExpiresAt); err != nil {
		return fail(held(hctx, err))
	}
	// Whom and what to grant is derived here, from the directory, the
	// policy's mapping and Identity Center, never taken from the stored
	// request: a forged record cannot redirect the grant.
	g := *r.IDC
	fresh, err := s.resolveIDC(hctx, r.Requester, g)
	if err != nil {
		return fail(held(hctx, err))
	}
	// A recorded grant that is not what would be granted now is refused
	// (ending removes what was recorded, if it was tokken's).
	differs := func(rec IDCGrant) error {
		return s.refuseActivation(ctx, id, token, fmt.Sprintf(
			"the recorded Identity Center grant (user %s, %s) is not the one the policy and directory give now (user %s for %s)",
			rec.UserID, rec.Describe(), fresh.UserID, fresh.Identifier))
	}
	// What an earlier attempt found is read from the worker's own record
	// (held.go), never from the request item: a forged "it existed before"
	// would keep tokken's assignment for good.
	h, found, err := s.holding(hctx, id)
	if err != nil {
		return fail(held(hctx, err))
	}
	if found && h.IDC != nil && h.IDC.Checked {
		// An earlier attempt recorded what it found and may have granted
		// it: go on only if that is what would be granted now.
		if !h.IDC.sameGrantee(fresh) {
			return differs(*h.IDC)
		}
		g = *h.IDC
	} else {
		g = fresh
		var exists bool
		if g.ByGroup() {
			exists, err = s.idc.IsMember(hctx, g.GroupID, g.UserID)
		} else {
			exists, err = s.idc.Assigned(hctx, g.assignment())
		}
		if err != nil {
			return fail(fmt.Errorf("look for existing access: %w", held(hctx, err)))
		}
		g.Checked, g.Preexisting = true, exists
		// Recorded before anything is granted: ending removes exactly
		// this, and only if tokken made it.
		if err := s.recordHeld(hctx, Held{Grant: r.Grant(), IDC: &g}); err != nil {
			return fail(held(hctx, err))
		}
	}
	r, err = s.transition(ctx, id, func(r *Request) error { return r.IDCChecked(token, g, s.now()) })
	if errors.Is(err, ErrClaimLost) {
		return nil // another run took over; it goes on from the held record
	}
	if err != nil {
		return fail(fmt.Errorf("record what Identity Center has: %w", err))
	}
	if !r.IDC.sameGrantee(fresh) { // written by someone else meanwhile
		return differs(*r.IDC)
	}
	if !g.Preexisting {
		if g.ByGroup() {
			err = s.idc.AddMember(hctx, g.GroupID, g.UserID)
		} else {
			err = s.idc.Assign(hctx, g.assignment())
		}
		var failed *AssignmentFailedError
		if errors.As(err, &failed) {
			return s.activationFailed(ctx, id, token, bot.Permanent(err), true)
		}
		if err != nil {
			return s.activationFailed(ctx, id, token, fmt.Errorf("grant through Identity Center: %w", held(hctx, err)), true)
		}
	}
	_, err = s.transition(ctx, id, func(r *Request) error { return r.IDCActivated(token, s.now()) })
	if errors.Is(err, ErrClaimLost) {
		// Another run took over, or the sweep failed the request: what was
		// granted is in the held record, so ending it removes it.
		return nil
	}
	if err != nil {
		return fmt.Errorf("activate %s: access granted but not recorded: %w", id, err)
	}
	return nil
}

// verifyIDCGrantee checks, before an identity-center grant gets more time,
// that what was granted (as recorded) is what the directory, the policy's
// mapping and Identity Center would grant now: a mapping changed since
// activation, or a user Identity Center no longer has, refuses the
// extension (a *refusal); the grant keeps its window, and ending removes
// what was granted. Other requests pass.
func (s *Service) verifyIDCGrantee(ctx context.Context, r *Request) error {
	if r.Kind != KindIdentityCenter || r.IDC == nil || !r.IDC.Checked || s.idc == nil {
		return nil
	}
	// What was granted is the worker's own record of it, when there is one.
	granted := *r.IDC
	if h, found, err := s.holding(ctx, r.ID); err != nil {
		return err
	} else if found && h.IDC != nil {
		granted = *h.IDC
	}
	fresh, err := s.resolveIDC(ctx, r.Requester, granted)
	var nouser *ErrNoIdentityUser
	switch {
	case errors.As(err, &nouser):
		return refuse("IAM Identity Center has no user %s now", nouser.Looked())
	case errors.Is(err, errNoEmail):
		return refuse("%s", errNoEmail.Error())
	case err != nil:
		return err
	case !granted.sameGrantee(fresh):
		return refuse("the Identity Center grant (user %s, %s) is not the one the policy and directory give now (user %s for %s); ask again with /access",
			granted.UserID, granted.Describe(), fresh.UserID, fresh.Identifier)
	}
	return nil
}

// assignment is the account assignment of a per-user grant.
func (g *IDCGrant) assignment() Assignment {
	return Assignment{Account: g.Account, PermissionSetARN: g.PermissionSetARN, PrincipalType: PrincipalUser, PrincipalID: g.UserID}
}

// endIDC removes the assignment or membership g that tokken made; access
// that existed before, or that was never looked for, is not tokken's to
// remove. removed says it called Identity Center.
func (s *Service) endIDC(ctx context.Context, g *IDCGrant) (removed bool, err error) {
	if !g.Owned() {
		return false, nil
	}
	if s.idc == nil {
		return false, errNoIDC
	}
	if g.ByGroup() {
		err = s.idc.RemoveMember(ctx, g.GroupID, g.UserID)
	} else {
		err = s.idc.Unassign(ctx, g.assignment())
	}
	if err != nil {
		return false, fmt.Errorf("remove %s through Identity Center: %w", g.Describe(), err)
	}
	return true, nil
}

// IDCChecked records, under the activation claim token holds, what
// activation found in Identity Center before granting: g with Checked set
// and Preexisting saying whether the access existed. It logs
// ActIDCPreexisting or ActIDCAssigning.
func (r *Request) IDCChecked(token string, g IDCGrant, now time.Time) error {
	if r.State != StateActivating || r.Activation == nil || r.Activation.Claim != token {
		return ErrClaimLost
	}
	if r.IDC != nil && r.IDC.Checked {
		return nil // an earlier attempt recorded it; keep the first finding
	}
	r.IDC = &g
	if g.Preexisting {
		r.log(now, System, ActIDCPreexisting, g.Describe()+" for "+g.Identifier+" existed before tokken: nothing granted, nothing will be removed")
	} else {
		r.log(now, System, ActIDCAssigning, g.Describe()+" for "+g.Identifier)
	}
	return nil
}

// IDCActivated marks an identity-center grant active under the claim
// token holds: the assignment (or membership) was made, with an
// ActIDCAssigned row, or existed already.
func (r *Request) IDCActivated(token string, now time.Time) error {
	if r.State != StateActivating || r.Activation == nil || r.Activation.Claim != token || r.IDC == nil || !r.IDC.Checked {
		return ErrClaimLost
	}
	if !r.IDC.Preexisting {
		r.IDC.Granted = true
		r.log(now, System, ActIDCAssigned, r.IDC.Describe()+" for "+r.IDC.Identifier)
	}
	return r.Activated(token, now)
}

// idcCheckUser checks, where tokken has an Identity Center client (the
// worker, which submits requests), that the requester of identity-center
// request r has an Identity Store user, so that nobody approves a request
// that cannot be granted. Activation looks again.
func (s *Service) idcCheckUser(ctx context.Context, r *Request) error {
	if r.Kind != KindIdentityCenter || s.idc == nil {
		return nil
	}
	_, _, err := s.idcUser(ctx, r.Requester)
	var nouser *ErrNoIdentityUser
	switch {
	case errors.As(err, &nouser):
		return &ErrBadTarget{Profile: r.Profile, Why: fmt.Sprintf(
			"IAM Identity Center has no user %s; %s", nouser.Looked(), nouser.Fix())}
	case errors.Is(err, errNoEmail):
		return &ErrBadTarget{Profile: r.Profile, Why: errNoEmail.Error()}
	case err != nil:
		return fmt.Errorf("submit: find the Identity Store user: %w", err)
	}
	return nil
}
