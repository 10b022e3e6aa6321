package access

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Domain errors. Each is meant to be shown to the user who caused it, via
// Explain; their Error strings are for logs.
var (
	// ErrSelfApproval: the requester never counts as an approver, denier or
	// reviewer of their own request, whatever the policy says.
	ErrSelfApproval = errors.New("the requester cannot approve, deny or review their own request")
	// ErrAlreadyApproved: this approver has already approved.
	ErrAlreadyApproved = errors.New("already approved by this approver")
	// ErrReasonRequired: denials, break-glass, requests and extensions need a reason.
	ErrReasonRequired = errors.New("a reason is required")
	// ErrNotRequester: only the requester may cancel, extend, break glass or say "done".
	ErrNotRequester = errors.New("only the requester may do this")
	// ErrNotBreakGlass: review applies to break-glass requests only.
	ErrNotBreakGlass = errors.New("not a break-glass request")
	// ErrExtensionPending: one extension at a time.
	ErrExtensionPending = errors.New("an extension is already pending")
	// ErrUnknownExtension: the extension id is not on this request.
	ErrUnknownExtension = errors.New("no such extension")
	// ErrNotYet: an expiry that fired before the window end (a stale timer
	// after an extension) changes nothing.
	ErrNotYet = errors.New("window has not ended yet")
	// ErrClaimed: another job run holds a fresh lease on the activation or
	// extension; this run must not issue credentials now. It is not
	// permanent: a retry finds the work done, or takes the claim over once
	// the holder's lease has run out.
	ErrClaimed = errors.New("another run is issuing this grant")
	// ErrClaimLost: this run's claim was taken over or the request moved on.
	ErrClaimLost = errors.New("claim lost")
)

// ErrAlreadyDecided reports an action on a request (or extension) that was
// settled already; By names who settled it, so a losing approver is told
// who won.
type ErrAlreadyDecided struct {
	By    []string
	State State
}

func (e *ErrAlreadyDecided) Error() string {
	return fmt.Sprintf("already %s by %s", e.State, strings.Join(e.By, ", "))
}

// ErrNotActive reports an action that needs an active grant.
type ErrNotActive struct{ State State }

func (e *ErrNotActive) Error() string { return fmt.Sprintf("request is %s, not active", e.State) }

// ErrNotAllowed reports a policy refusal; Reasons come from the Authorizer
// (which rule denied, or that none permitted).
type ErrNotAllowed struct {
	Action  bot.Action
	Reasons []string
	// BreakGlass, when set, is the one-line command that would file the
	// refused request as break-glass, which the requester may do.
	BreakGlass string
}

func (e *ErrNotAllowed) Error() string {
	return fmt.Sprintf("%s not allowed: %s", e.Action, strings.Join(e.Reasons, "; "))
}

// ErrUnknownProfile reports a profile that does not exist or that the user
// may not request; Allowed lists the profiles they may request.
type ErrUnknownProfile struct {
	Name    string
	Allowed []string
}

func (e *ErrUnknownProfile) Error() string {
	return fmt.Sprintf("unknown profile %q (may request: %s)", e.Name, strings.Join(e.Allowed, ", "))
}

// ErrDurationTooLong reports a duration above the profile's maximum.
type ErrDurationTooLong struct {
	Profile string
	Asked   time.Duration
	Max     time.Duration
}

func (e *ErrDurationTooLong) Error() string {
	return fmt.Sprintf("duration %s exceeds %s's maximum %s", e.Asked, e.Profile, e.Max)
}

// ErrBadTarget reports targets the profile does not allow: ID is the
// offending instance ("" when the problem is the set, e.g. none given).
type ErrBadTarget struct {
	Profile string
	ID      string
	Why     string
}

func (e *ErrBadTarget) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("profile %s: %s", e.Profile, e.Why)
	}
	return fmt.Sprintf("profile %s: instance %s: %s", e.Profile, e.ID, e.Why)
}

// ErrBreakGlassDisabled reports break-glass on a profile that does not allow it.
type ErrBreakGlassDisabled struct{ Profile string }

func (e *ErrBreakGlassDisabled) Error() string {
	return fmt.Sprintf("profile %s does not allow break-glass", e.Profile)
}

// ErrUnknownRequest reports a request id that does not exist.
type ErrUnknownRequest struct{ ID string }

func (e *ErrUnknownRequest) Error() string { return fmt.Sprintf("no request %s", e.ID) }

// Unwrap makes errors.Is(err, bot.ErrNotFound) true.
func (e *ErrUnknownRequest) Unwrap() error { return bot.ErrNotFound }
