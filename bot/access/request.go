package access

import (
	"slices"
	"time"

	"github.com/tokken/tokken/bot"
)

// State is where a request is in its life.
//
//	pending ──approve (N of M)──▶ activating ──grant issued──▶ active
//	   │  └──break-glass─────────▲    │                          │
//	   ├──deny──▶ denied             └──failed──▶ failed         ├─expire─▶ ending ─▶ expired
//	   └──cancel──▶ cancelled                                     └─revoke/done─▶ ending ─▶ revoked
//	                                        ending ─(N failures)─▶ revoke_failed ─(retry ok)─▶ expired | revoked
//
// "activating" exists so that the grant is issued exactly once: only the
// writer that moved the request out of pending enqueues the activation job,
// and only the job run that holds the activation's claim (a lease, see
// claimLease) issues credentials.
// "ending" records that access must end (who, why) before the slow work of
// terminating sessions and revoking credentials, so a crash in between is
// finished by a retry or the sweep.
type State string

// Request states.
const (
	StatePending      State = "pending"
	StateActivating   State = "activating"
	StateActive       State = "active"
	StateEnding       State = "ending"
	StateExpired      State = "expired"
	StateRevoked      State = "revoked"
	StateRevokeFailed State = "revoke_failed"
	StateDenied       State = "denied"
	StateCancelled    State = "cancelled"
	StateFailed       State = "failed"
)

// Final reports whether s is an end state: nothing more will happen to the
// request (revoke_failed is not final: the sweep keeps trying).
func (s State) Final() bool {
	switch s {
	case StateExpired, StateRevoked, StateDenied, StateCancelled, StateFailed:
		return true
	}
	return false
}

// System is the actor recorded for what tokken does by itself (expiry,
// sweeps, failures).
const System = "tokken"

// Request is one ask for access and everything that happened to it. It is
// the single source of truth: Slack messages are rendered from it, never
// parsed back. It holds no secret.
type Request struct {
	ID        string `json:"id"`        // bot.NewID("r-"); also the STS RoleSessionName
	Requester string `json:"requester"` // Slack user id; also the STS SourceIdentity
	Profile   string `json:"profile"`
	Kind      Kind   `json:"kind"`
	// RoleARN and SessionPolicy are copied from the profile at submission,
	// so the grant is what was approved and revocation does not depend on
	// the catalogue still holding the profile.
	RoleARN       string `json:"role_arn"`
	SessionPolicy string `json:"session_policy,omitempty"`
	// Targets are the instances of an ssm request, with the tags they had
	// when the request was made.
	Targets  []bot.Target  `json:"targets,omitempty"`
	Duration time.Duration `json:"duration"` // asked for; counts from activation
	Reason   string        `json:"reason"`
	Ticket   string        `json:"ticket,omitempty"` // optional ticket id or link
	Created  time.Time     `json:"created"`
	State    State         `json:"state"`

	// ApprovalsNeeded is the profile's N at submission time.
	ApprovalsNeeded int         `json:"approvals_needed"`
	Approvals       []Approval  `json:"approvals,omitempty"`
	Denial          *Denial     `json:"denial,omitempty"`
	BreakGlass      *BreakGlass `json:"break_glass,omitempty"`
	Activation      *Activation `json:"activation,omitempty"`
	Window          Window      `json:"window,omitzero"`
	End             *End        `json:"end,omitempty"`
	Failure         *Failure    `json:"failure,omitempty"`
	Message         MessageRef  `json:"message,omitzero"`
	// Reissue tracks new credentials the requester asked for within the
	// window of an active grant (see reissue.go), with the same claim as
	// an activation; nil when none is being issued.
	Reissue *Activation `json:"reissue,omitempty"`
	// Unposted says the approver message could not be posted, so no
	// approver can see the request; the first successful post clears it.
	Unposted   *Unposted    `json:"unposted,omitempty"`
	Extensions []Extension  `json:"extensions,omitempty"`
	History    []HistoryRow `json:"history,omitempty"`

	// ECS is the target of an ecs-exec request: the cluster and the
	// service or task, as checked when the request was made.
	ECS *ECSTarget `json:"ecs,omitempty"`
	// IDC is the grant of an identity-center request: the account and
	// permission set asked for, and what activation found and did.
	IDC *IDCGrant `json:"idc,omitempty"`
}

// Approval is one approver's click.
type Approval struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Denial says who refused and why.
type Denial struct {
	By  string    `json:"by"`
	Why string    `json:"why"`
	At  time.Time `json:"at"`
}

// BreakGlass records a self-approval and its after-the-fact review.
type BreakGlass struct {
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
	ReviewedBy string    `json:"reviewed_by,omitempty"`
	ReviewedAt time.Time `json:"reviewed_at,omitzero"`
}

// NeedsReview reports whether the break-glass use still awaits review.
func (b *BreakGlass) NeedsReview() bool { return b != nil && b.ReviewedBy == "" }

// Activation tracks the issuing of the grant while the request is
// activating, or of new credentials for an active grant (Request.Reissue).
// Claim is the lease of the one job run that may issue credentials (see
// claimLease for why a lease, and why it is safe).
type Activation struct {
	Since time.Time `json:"since"` // when the request became activating, or the reissue was asked
	// By is who asked for a reissue (the requester); empty for an
	// activation, which approvals decide.
	By        string    `json:"by,omitempty"`
	Claim     string    `json:"claim,omitempty"`
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	// LeaseUntil is when the claim may be taken over unless its holder
	// renews it first.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Attempts counts attempts that failed or were interrupted.
	Attempts int `json:"attempts,omitempty"`
	// Issued counts credential sets recorded by RecordIssue.
	Issued int `json:"issued,omitempty"`
	// Interrupted says the claim was taken over from a run that stopped
	// renewing it; that run may have issued credentials.
	Interrupted bool   `json:"interrupted,omitempty"`
	LastError   string `json:"last_error,omitempty"`
}

// Window is the grant window: from activation to expiry. It is fixed at the
// first claim of the activation (the duration counts from then) and every
// retry issues credentials that end at the same ExpiresAt, so credentials
// from an attempt that died cannot outlive the recorded window. Extensions
// move ExpiresAt.
type Window struct {
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
}

// IsZero reports whether no grant window was ever opened.
func (w Window) IsZero() bool { return w.ActivatedAt.IsZero() }

// Cause says why access ends.
type Cause string

// End causes.
const (
	CauseExpired Cause = "expired" // the window ran out
	CauseRevoked Cause = "revoked" // an approver or admin revoked it
	CauseDone    Cause = "done"    // the requester ended it ("I'm done", or /access revoke)
	CauseFailed  Cause = "failed"  // activation failed after a grant may have been issued
)

// End records the decision to end access and the progress of the work that
// makes it end (terminating sessions, revoking credentials).
type End struct {
	Cause Cause     `json:"cause"`
	By    string    `json:"by"`
	Why   string    `json:"why,omitempty"`
	At    time.Time `json:"at"`
	// Attempts counts failed attempts at the revocation work; LastError is
	// the latest failure, shown to ops.
	Attempts    int       `json:"attempts,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// Sessions is how many live SSM sessions were terminated.
	Sessions int       `json:"sessions,omitempty"`
	Done     time.Time `json:"done,omitzero"` // when access was confirmed ended
}

// Failure says what failed and what the requester can do about it.
type Failure struct {
	What string    `json:"what"`
	Do   string    `json:"do"`
	At   time.Time `json:"at"`
}

// Unposted records why the request's approver message could not be
// posted: the channel and Slack's error code (e.g. not_in_channel).
type Unposted struct {
	Channel string    `json:"channel"`
	Code    string    `json:"code"`
	At      time.Time `json:"at"`
}

// MessageRef locates the one approver-channel message that tracks the
// request in place.
type MessageRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// IsZero reports whether no message has been posted yet.
func (m MessageRef) IsZero() bool { return m.Channel == "" && m.TS == "" }

// ExtensionState is where an extension request is.
type ExtensionState string

// Extension states.
const (
	ExtensionPending  ExtensionState = "pending"  // waiting for approvals
	ExtensionApproved ExtensionState = "approved" // being applied (new credentials)
	ExtensionApplied  ExtensionState = "applied"  // the window was moved
	ExtensionDenied   ExtensionState = "denied"
	ExtensionLapsed   ExtensionState = "lapsed" // the grant ended first
)

// Extension is a request for more time on the same grant. It goes through
// approval like a request; once approved the window's end moves and fresh
// credentials (same session name, new end) are delivered.
type Extension struct {
	ID        string         `json:"id"` // bot.NewID("x-")
	Duration  time.Duration  `json:"duration"`
	Reason    string         `json:"reason"`
	Requested time.Time      `json:"requested"`
	State     ExtensionState `json:"state"`
	Approvals []Approval     `json:"approvals,omitempty"`
	Denial    *Denial        `json:"denial,omitempty"`
	// NewExpiresAt is the window end once applied (set on approval).
	NewExpiresAt time.Time `json:"new_expires_at,omitzero"`
	// Claim is the lease of the job run applying the extension, as for
	// activations (see claimLease).
	Claim      string    `json:"claim,omitempty"`
	ClaimedAt  time.Time `json:"claimed_at,omitzero"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// HistoryRow is one line of the request's own paper trail, written in the
// same conditional write as the change it describes.
type HistoryRow struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // the audit action, e.g. "access.approved"
	Note   string    `json:"note,omitempty"`
	// Session is the session an ActSessionEnded row is about.
	Session *Session `json:"session,omitempty"`
}

// Approvers lists who approved, in order.
func (r *Request) Approvers() []string {
	out := make([]string, 0, len(r.Approvals))
	for _, a := range r.Approvals {
		out = append(out, a.By)
	}
	return out
}

// PendingExtension returns the extension awaiting approval or being
// applied, if any.
func (r *Request) PendingExtension() *Extension {
	for i := range r.Extensions {
		if s := r.Extensions[i].State; s == ExtensionPending || s == ExtensionApproved {
			return &r.Extensions[i]
		}
	}
	return nil
}

func (r *Request) extension(id string) *Extension {
	for i := range r.Extensions {
		if r.Extensions[i].ID == id {
			return &r.Extensions[i]
		}
	}
	return nil
}

func (r *Request) log(at time.Time, actor, action, note string) {
	r.History = append(r.History, HistoryRow{At: at, Actor: actor, Action: action, Note: note})
}

// decidedBy names who settled the request, for ErrAlreadyDecided.
func (r *Request) decidedBy() []string {
	switch {
	case r.End != nil:
		return []string{r.End.By}
	case r.Denial != nil:
		return []string{r.Denial.By}
	case r.BreakGlass != nil:
		return []string{r.Requester}
	case r.State == StateCancelled:
		for i := len(r.History) - 1; i >= 0; i-- {
			if r.History[i].Action == ActCancelled {
				return []string{r.History[i].Actor}
			}
		}
		return []string{r.Requester}
	case r.State == StateFailed:
		return []string{System}
	}
	return r.Approvers()
}

func (r *Request) alreadyDecided() error {
	return &ErrAlreadyDecided{By: r.decidedBy(), State: r.State}
}

// Audit actions, one per transition.
const (
	ActRequested       = "access.requested"
	ActApproved        = "access.approved" // one approval (k of N)
	ActActivating      = "access.activating"
	ActDenied          = "access.denied"
	ActCancelled       = "access.cancelled"
	ActBreakGlass      = "access.break_glass"
	ActReviewed        = "access.reviewed"
	ActActive          = "access.active"
	ActFailed          = "access.failed"
	ActEnding          = "access.ending"
	ActExpired         = "access.expired"
	ActRevoked         = "access.revoked"
	ActRevokeFailed    = "access.revoke_failed"
	ActExtendRequested = "access.extend_requested"
	ActExtendApproved  = "access.extend_approved"
	ActExtendDenied    = "access.extend_denied"
	ActExtended        = "access.extended"
	ActExtendLapsed    = "access.extend_lapsed"
	// ActUnposted records that the approver message cannot be posted
	// (note: "<channel>: <slack error code>"): nobody can see the request.
	ActUnposted = "access.unposted"
	// ActUntold alerts ops that Slack refuses the requester's DM for good.
	ActUntold = "access.untold"
	// ActPosted records that an unposted request's message was posted
	// after all (note: the channel).
	ActPosted = "access.posted"
	// ActReissued records that credentials were issued again for the same
	// window: after an interrupted attempt (which may have issued a set
	// nobody received) or after a failed delivery (actor tokken), or because
	// the requester asked for a new set (actor the requester, note
	// NoteReissuedAsked; see reissue.go).
	ActReissued = "access.reissued"
	// ActApprovalLapsed records that an approval stopped counting: its
	// approver was no longer permitted to approve when the quorum
	// completed.
	ActApprovalLapsed = "access.approval_lapsed"
	// ActRefused records that the worker refused to issue a grant (or an
	// extension) whose record does not show the approvals the policy in
	// force requires; STS was not called.
	ActRefused = "access.refused"
	// ActSessionEnded records one live session (SSM or ECS Exec) that
	// tokken terminated when the grant ended; the row names the session
	// id and its target.
	ActSessionEnded = "access.session_ended"
)

// Notes of ActReissued rows.
const (
	NoteReissuedInterrupted = "re-issued after an interrupted attempt"
	NoteReissuedUndelivered = "re-issued after a failed delivery"
)

// MarkUnposted records that the approver message cannot be posted to
// channel, or no longer updated there (Slack's code says why). Nothing
// changes (bot.ErrNoChange) when the request is over or the same problem
// is known.
func (r *Request) MarkUnposted(channel, code string, now time.Time) error {
	if r.State.Final() {
		return bot.ErrNoChange
	}
	if u := r.Unposted; u != nil && u.Channel == channel && u.Code == code {
		return bot.ErrNoChange
	}
	r.Unposted = &Unposted{Channel: channel, Code: code, At: now}
	r.log(now, System, ActUnposted, channel+": "+code)
	return nil
}

// Posted records where the approver message was posted (or that it was
// updated again); a request that was unposted records ActPosted.
// bot.ErrNoChange when it was posted already and nothing was wrong.
func (r *Request) Posted(ref MessageRef, now time.Time) error {
	if !r.Message.IsZero() && r.Unposted == nil {
		return bot.ErrNoChange
	}
	if r.Message.IsZero() {
		r.Message = ref
	}
	if r.Unposted != nil {
		r.Unposted = nil
		r.log(now, System, ActPosted, ref.Channel)
	}
	return nil
}

// Approve records approver's approval at now. It refuses when the request is
// no longer pending (ErrAlreadyDecided names who decided), when approver is
// the requester (ErrSelfApproval) or has already approved
// (ErrAlreadyApproved). It reports whether this approval completed the
// quorum, in which case the request is now activating.
func (r *Request) Approve(approver string, now time.Time) (quorum bool, err error) {
	if r.State != StatePending {
		return false, r.alreadyDecided()
	}
	if approver == r.Requester {
		return false, ErrSelfApproval
	}
	if slices.Contains(r.Approvers(), approver) {
		return false, ErrAlreadyApproved
	}
	r.Approvals = append(r.Approvals, Approval{By: approver, At: now})
	r.log(now, approver, ActApproved, "")
	if len(r.Approvals) < r.ApprovalsNeeded {
		return false, nil
	}
	r.activate(now)
	return true, nil
}

// DropApprovals removes the approvals by the given approvers (of the
// request, or of extension ext when ext is not ""), each with an
// ActApprovalLapsed row saying why it no longer counts. Approvers without
// an approval are ignored.
func (r *Request) DropApprovals(ext string, lapsed []lapse, now time.Time) {
	list := &r.Approvals
	if ext != "" {
		x := r.extension(ext)
		if x == nil {
			return
		}
		list = &x.Approvals
	}
	for _, l := range lapsed {
		i := slices.IndexFunc(*list, func(a Approval) bool { return a.By == l.by })
		if i < 0 {
			continue
		}
		*list = slices.Delete(*list, i, i+1)
		r.log(now, System, ActApprovalLapsed, "approval by "+l.by+" no longer counts: "+l.why)
	}
}

func (r *Request) activate(now time.Time) {
	r.State = StateActivating
	r.Activation = &Activation{Since: now}
	r.log(now, System, ActActivating, "")
}

// Deny refuses a pending request; why is mandatory.
func (r *Request) Deny(by, why string, now time.Time) error {
	if r.State != StatePending {
		return r.alreadyDecided()
	}
	if by == r.Requester {
		return ErrSelfApproval
	}
	if why == "" {
		return ErrReasonRequired
	}
	r.State = StateDenied
	r.Denial = &Denial{By: by, Why: why, At: now}
	r.log(now, by, ActDenied, why)
	return nil
}

// Cancel withdraws a pending request; only the requester may.
func (r *Request) Cancel(by string, now time.Time) error {
	if by != r.Requester {
		return ErrNotRequester
	}
	if r.State != StatePending {
		return r.alreadyDecided()
	}
	r.State = StateCancelled
	r.log(now, by, ActCancelled, "")
	return nil
}

// Abandon cancels a pending request that nobody decided on in time.
func (r *Request) Abandon(why string, now time.Time) error {
	if r.State != StatePending {
		return r.alreadyDecided()
	}
	r.State = StateCancelled
	r.log(now, System, ActCancelled, why)
	return nil
}

// SelfApprove is break-glass: the requester activates their own pending
// request with a mandatory reason. Whether the profile and policy allow it
// is the Service's check.
func (r *Request) SelfApprove(by, why string, now time.Time) error {
	if by != r.Requester {
		return ErrNotRequester
	}
	if r.State != StatePending {
		return r.alreadyDecided()
	}
	if why == "" {
		return ErrReasonRequired
	}
	r.BreakGlass = &BreakGlass{Reason: why, At: now}
	r.log(now, by, ActBreakGlass, why)
	r.activate(now)
	return nil
}

// Review marks a break-glass use as reviewed. The requester cannot review
// their own.
func (r *Request) Review(by string, now time.Time) error {
	if r.BreakGlass == nil {
		return ErrNotBreakGlass
	}
	if by == r.Requester {
		return ErrSelfApproval
	}
	if !r.BreakGlass.NeedsReview() {
		return &ErrAlreadyDecided{By: []string{r.BreakGlass.ReviewedBy}, State: r.State}
	}
	r.BreakGlass.ReviewedBy, r.BreakGlass.ReviewedAt = by, now
	r.log(now, by, ActReviewed, "")
	return nil
}

// Claims are leases. The job run that claims an activation (or an
// extension) holds it until LeaseUntil = claim time + claimLease and, while
// it works, renews it every claimRenewEvery (Service.hold). Another run may
// take the claim over only once the lease has run out, that is when the
// holder stopped renewing for a whole claimLease: it died (SIGKILL, a Lambda
// timeout) or lost the store. So a run killed mid-activation delays its
// retry by at most claimLease, not minutes; a run that finds the claim held
// asks its queue for a retry (ErrClaimed is not permanent) rather than
// giving up, so no sweep is needed to finish the work.
//
// Why two live runs never both deliver credentials:
//   - Claiming, renewing, RecordIssue and Activated are conditional writes
//     of the request (bot.Table.Update), so at any instant one token holds
//     the claim and a run whose claim was taken over fails its next write
//     with ErrClaimLost.
//   - A live holder renews every claimRenewEvery, well inside claimLease,
//     so a duplicate delivery of the job finds the lease fresh and cannot
//     take over.
//   - A holder that could not renew for claimLease-claimRenewEvery (by its
//     own clock) cancels its work, and between issuing and delivering it
//     must pass RecordIssue: if the claim was taken over meanwhile it
//     discards what it issued, which nobody has seen and whose session
//     policy ends at the window end anyway.
//
// The one case that delivers twice is a holder that passed RecordIssue and
// then stalled (or was cut off from the store, or has a clock off by more
// than the lease) for longer than claimLease while delivering. The taker
// then issues again for the same window end and the history records it
// (ActReissued), so a grant is issued at most twice per interruption and
// no credential outlives the window.
//
// Tying the claim to the queue's delivery count instead (localqueue
// attempts, SQS ApproximateReceiveCount) cannot tell a dead holder from a
// live one: SQS may deliver a message twice or redeliver it after the
// visibility timeout while the first run still works, and the sweep
// enqueues activations under fresh job ids. A lease renewed by the running
// job can.
const (
	claimLease      = 10 * time.Second
	claimRenewEvery = 3 * time.Second
)

// ClaimActivation lets one job run issue the grant. It fails with
// ErrClaimed while another run's lease is fresh, and with ErrAlreadyDecided
// when the request is not activating. A claim whose lease ran out is taken
// over: the attempt it belonged to counts as interrupted. The first claim
// fixes the window (now until now+Duration); later claims keep it.
func (r *Request) ClaimActivation(token string, now time.Time) error {
	if r.State != StateActivating || r.Activation == nil {
		return r.alreadyDecided()
	}
	if err := r.Activation.take(token, now); err != nil {
		return err
	}
	if r.Window.IsZero() {
		r.Window = Window{ActivatedAt: now, ExpiresAt: now.Add(r.Duration)}
	}
	return nil
}

// take gives a's claim to token. It fails with ErrClaimed while another
// run's lease is fresh; a claim whose lease ran out is taken over, and the
// attempt it belonged to counts as interrupted.
func (a *Activation) take(token string, now time.Time) error {
	if a.Claim != "" && a.Claim != token {
		if now.Before(a.LeaseUntil) {
			return ErrClaimed
		}
		a.Attempts++
		a.Interrupted = true
		a.LastError = "interrupted: the run issuing the grant stopped renewing its claim"
	}
	a.Claim, a.ClaimedAt, a.LeaseUntil = token, now, now.Add(claimLease)
	return nil
}

// RenewActivation extends the lease of the claim token holds; ErrClaimLost
// when it holds it no more. An unchanged lease is bot.ErrNoChange.
func (r *Request) RenewActivation(token string, now time.Time) error {
	if r.State != StateActivating {
		return ErrClaimLost
	}
	return r.Activation.renew(token, now)
}

// renew extends the lease of the claim token holds on a; ErrClaimLost when
// it holds it no more (or a is nil). An unchanged lease is bot.ErrNoChange.
func (a *Activation) renew(token string, now time.Time) error {
	if a == nil || a.Claim != token {
		return ErrClaimLost
	}
	until := now.Add(claimLease)
	if !until.After(a.LeaseUntil) {
		return bot.ErrNoChange
	}
	a.LeaseUntil = until
	return nil
}

// RecordIssue is the fence between issuing credentials and delivering them:
// the holder of the claim records that it issued a set (and renews its
// lease) before it may deliver it. A run whose claim was taken over gets
// ErrClaimLost and must discard what it issued. A set issued after an
// interrupted attempt, or after an earlier set failed to be delivered, is
// recorded as ActReissued.
func (r *Request) RecordIssue(token string, now time.Time) error {
	if r.State != StateActivating || r.Activation == nil || r.Activation.Claim != token {
		return ErrClaimLost
	}
	if note := r.Activation.issue(now); note != "" {
		r.log(now, System, ActReissued, note)
	}
	return nil
}

// issue counts a set of credentials issued under a's claim (whose holder
// the caller checked) and renews its lease. It returns the note of the
// ActReissued row the set needs: after an interrupted attempt, or after an
// earlier set failed to be delivered; "" for the first set.
func (a *Activation) issue(now time.Time) (note string) {
	switch {
	case a.Interrupted:
		note = NoteReissuedInterrupted
	case a.Issued > 0:
		note = NoteReissuedUndelivered
	}
	a.Issued++
	a.Interrupted = false
	a.LeaseUntil = now.Add(claimLease)
	return note
}

// ReleaseActivation gives the claim back after a failed attempt so a retry
// may try again (the window stays fixed).
func (r *Request) ReleaseActivation(token, errText string) error {
	if r.State != StateActivating {
		return ErrClaimLost
	}
	return r.Activation.release(token, errText)
}

// release gives back the claim token holds on a after a failed attempt,
// counting the attempt; ErrClaimLost when it holds it no more.
func (a *Activation) release(token, errText string) error {
	if a == nil || a.Claim != token {
		return ErrClaimLost
	}
	a.Claim, a.ClaimedAt, a.LeaseUntil = "", time.Time{}, time.Time{}
	a.Attempts++
	a.LastError = errText
	return nil
}

// Activated marks the grant active for the window fixed at the first
// claim.
func (r *Request) Activated(token string, now time.Time) error {
	if r.State != StateActivating || r.Activation == nil || r.Activation.Claim != token {
		return ErrClaimLost
	}
	r.State = StateActive
	r.Activation = nil
	r.log(now, System, ActActive, "until "+r.Window.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

// Refuse ends an activating request whose grant the worker will not issue
// (see verifyGrant): it fails with why on its card and an ActRefused row.
// When a grant may have been issued by an earlier attempt it goes through
// ending first, as Fail does. Only the holder of the claim (token) may.
func (r *Request) Refuse(token, why string, grantMaybeIssued bool, now time.Time) error {
	if r.State != StateActivating || r.Activation == nil || r.Activation.Claim != token {
		return ErrClaimLost
	}
	f := failureRefused(why, now)
	r.Failure = &f
	r.Activation = nil
	if grantMaybeIssued {
		r.State = StateEnding
		r.End = &End{Cause: CauseFailed, By: System, Why: f.What, At: now}
	} else {
		r.State = StateFailed
	}
	r.log(now, System, ActRefused, why)
	return nil
}

// RefuseExtension gives up on an approved extension the worker will not
// issue (see verifyExtension): it lapses with an ActRefused row; the grant
// keeps its current window.
func (r *Request) RefuseExtension(id, token, why string, now time.Time) error {
	x := r.extension(id)
	if x == nil || x.State != ExtensionApproved || x.Claim != token {
		return ErrClaimLost
	}
	x.State, x.Claim = ExtensionLapsed, ""
	r.log(now, System, ActRefused, "extension "+id+": "+why)
	return nil
}

// Fail ends a request that never became active. When a grant may have been
// issued (grantMaybeIssued), the request goes through ending so that
// sessions are terminated and credentials revoked before it is failed.
func (r *Request) Fail(f Failure, grantMaybeIssued bool) error {
	if r.State != StatePending && r.State != StateActivating {
		return r.alreadyDecided()
	}
	r.Failure = &f
	r.Activation = nil
	if grantMaybeIssued {
		r.State = StateEnding
		r.End = &End{Cause: CauseFailed, By: System, Why: f.What, At: f.At}
		r.log(f.At, System, ActEnding, string(CauseFailed)+": "+f.What)
		return nil
	}
	r.State = StateFailed
	r.log(f.At, System, ActFailed, f.What)
	return nil
}

// BeginEnd records that access must end: the window ran out (CauseExpired),
// or someone revoked it (CauseRevoked, CauseDone). Only an active request
// can begin ending; one already ending or ended returns ErrAlreadyDecided
// (which callers may treat as success: ending is idempotent).
func (r *Request) BeginEnd(c Cause, by, why string, now time.Time) error {
	switch r.State {
	case StateActive:
	case StatePending, StateActivating:
		return &ErrNotActive{State: r.State}
	default:
		return r.alreadyDecided()
	}
	if c == CauseExpired && now.Before(r.endsAt()) {
		return ErrNotYet
	}
	r.State = StateEnding
	r.End = &End{Cause: c, By: by, Why: why, At: now}
	// The row carries the reason the person gave (the cause is in End and
	// in the audit event's detail), so the trail says why access ended.
	r.log(now, by, ActEnding, why)
	return nil
}

// approvedLength is how long r's window may last: its duration plus those
// of its applied extensions.
func (r *Request) approvedLength() time.Duration {
	length := r.Duration
	for _, e := range r.Extensions {
		if e.State == ExtensionApplied {
			length += e.Duration
		}
	}
	return length
}

// endsAt is when r's active window ends: its recorded end, or what its
// activation and applied extensions gave if that is sooner. A recorded
// end moved later (a rewritten item) does not keep access, an
// identity-center assignment above all, past the window.
func (r *Request) endsAt() time.Time {
	if end := r.Window.ActivatedAt.Add(r.approvedLength()); end.Before(r.Window.ExpiresAt) {
		return end
	}
	return r.Window.ExpiresAt
}

// Early reports whether access is being ended before its window ran out,
// in which case the issued credentials must be revoked explicitly (after the
// window end the session policy already denies everything).
func (r *Request) Early() bool {
	return r.End != nil && (r.Window.IsZero() || r.End.At.Before(r.Window.ExpiresAt))
}

// Ended marks the end work done: sessions terminated (one
// ActSessionEnded row each) and credentials revoked. The final state
// follows the cause.
func (r *Request) Ended(sessions []Session, now time.Time) (action string, err error) {
	if r.State != StateEnding && r.State != StateRevokeFailed {
		return "", r.alreadyDecided()
	}
	r.sessionsEnded(sessions, now)
	r.End.Done = now
	r.End.LastError = ""
	switch r.End.Cause {
	case CauseExpired:
		r.State, action = StateExpired, ActExpired
	case CauseFailed:
		r.State, action = StateFailed, ActFailed
	default:
		r.State, action = StateRevoked, ActRevoked
	}
	if p := r.PendingExtension(); p != nil {
		p.State = ExtensionLapsed
	}
	r.Reissue = nil
	r.log(now, System, action, r.End.Why)
	return action, nil
}

// EndFailed records a failed attempt at the end work. After maxAttempts the
// request becomes revoke_failed (reported true once, so the caller alerts
// ops once); the sweep keeps retrying. The sessions the attempt did end
// are recorded as Ended records them.
func (r *Request) EndFailed(sessions []Session, errText string, maxAttempts int, now time.Time) (nowFailed bool, err error) {
	if r.State != StateEnding && r.State != StateRevokeFailed {
		return false, r.alreadyDecided()
	}
	r.sessionsEnded(sessions, now)
	r.End.Attempts++
	r.End.LastError = errText
	r.End.LastAttempt = now
	if r.State == StateEnding && r.End.Attempts >= maxAttempts {
		r.State = StateRevokeFailed
		r.log(now, System, ActRevokeFailed, errText)
		return true, nil
	}
	return false, nil
}

// sessionsEnded counts sessions on End and logs one ActSessionEnded row
// for each, so every terminated session is in the audit trail.
func (r *Request) sessionsEnded(sessions []Session, now time.Time) {
	r.End.Sessions += len(sessions)
	for _, s := range sessions {
		r.History = append(r.History, HistoryRow{At: now, Actor: System, Action: ActSessionEnded, Session: &s})
	}
}

// RequestExtension asks for x.Duration more on the same grant. Only the
// requester may, only while active, one at a time. When the request needed
// no approval, neither does the extension: it is approved at once and
// approved is true.
func (r *Request) RequestExtension(x Extension, by string) (approved bool, err error) {
	if by != r.Requester {
		return false, ErrNotRequester
	}
	if r.State != StateActive {
		return false, &ErrNotActive{State: r.State}
	}
	if r.PendingExtension() != nil {
		return false, ErrExtensionPending
	}
	if x.Reason == "" {
		return false, ErrReasonRequired
	}
	x.State = ExtensionPending
	r.log(x.Requested, by, ActExtendRequested, x.Reason)
	if r.ApprovalsNeeded <= 0 {
		x.State = ExtensionApproved
		x.NewExpiresAt = r.Window.ExpiresAt.Add(x.Duration)
		r.log(x.Requested, System, ActExtendApproved, x.ID)
	}
	r.Extensions = append(r.Extensions, x)
	return x.State == ExtensionApproved, nil
}

// ExtensionFailed gives up on an approved extension that cannot be issued;
// the grant keeps its current window.
func (r *Request) ExtensionFailed(id, token, why string, now time.Time) error {
	x := r.extension(id)
	if x == nil || x.State != ExtensionApproved || x.Claim != token {
		return ErrClaimLost
	}
	x.State, x.Claim = ExtensionLapsed, ""
	r.log(now, System, ActExtendLapsed, why)
	return nil
}

// ApproveExtension records an approval of extension id; on quorum (the
// request's ApprovalsNeeded) the extension is approved and its new window
// end fixed, and quorum is true.
func (r *Request) ApproveExtension(id, approver string, now time.Time) (quorum bool, err error) {
	x := r.extension(id)
	if x == nil {
		return false, ErrUnknownExtension
	}
	if x.State != ExtensionPending {
		return false, &ErrAlreadyDecided{By: extensionDecidedBy(x), State: State(x.State)}
	}
	if r.State != StateActive {
		return false, &ErrNotActive{State: r.State}
	}
	if approver == r.Requester {
		return false, ErrSelfApproval
	}
	for _, a := range x.Approvals {
		if a.By == approver {
			return false, ErrAlreadyApproved
		}
	}
	x.Approvals = append(x.Approvals, Approval{By: approver, At: now})
	r.log(now, approver, ActApproved, "extension "+id)
	if len(x.Approvals) < r.ApprovalsNeeded {
		return false, nil
	}
	x.State = ExtensionApproved
	x.NewExpiresAt = r.Window.ExpiresAt.Add(x.Duration)
	r.log(now, System, ActExtendApproved, id)
	return true, nil
}

// DenyExtension refuses extension id; why is mandatory.
func (r *Request) DenyExtension(id, by, why string, now time.Time) error {
	x := r.extension(id)
	if x == nil {
		return ErrUnknownExtension
	}
	if x.State != ExtensionPending {
		return &ErrAlreadyDecided{By: extensionDecidedBy(x), State: State(x.State)}
	}
	if by == r.Requester {
		return ErrSelfApproval
	}
	if why == "" {
		return ErrReasonRequired
	}
	x.State = ExtensionDenied
	x.Denial = &Denial{By: by, Why: why, At: now}
	r.log(now, by, ActExtendDenied, why)
	return nil
}

// ClaimExtension lets one job run issue the extended credentials: it fails
// with ErrClaimed while another run's lease is fresh and takes over one
// whose lease ran out (see claimLease).
func (r *Request) ClaimExtension(id, token string, now time.Time) error {
	x := r.extension(id)
	if x == nil {
		return ErrUnknownExtension
	}
	if x.State != ExtensionApproved || r.State != StateActive {
		return &ErrAlreadyDecided{By: extensionDecidedBy(x), State: State(x.State)}
	}
	if x.Claim != "" && x.Claim != token && now.Before(x.LeaseUntil) {
		return ErrClaimed
	}
	x.Claim, x.ClaimedAt, x.LeaseUntil = token, now, now.Add(claimLease)
	return nil
}

// RenewExtension extends the lease of the claim token holds on extension
// id; ErrClaimLost when it holds it no more. An unchanged lease is
// bot.ErrNoChange.
func (r *Request) RenewExtension(id, token string, now time.Time) error {
	x := r.extension(id)
	if x == nil || x.State != ExtensionApproved || x.Claim != token {
		return ErrClaimLost
	}
	until := now.Add(claimLease)
	if !until.After(x.LeaseUntil) {
		return bot.ErrNoChange
	}
	x.LeaseUntil = until
	return nil
}

// ReleaseExtension gives the claim back after a failed attempt.
func (r *Request) ReleaseExtension(id, token string) error {
	x := r.extension(id)
	if x == nil || x.State != ExtensionApproved || x.Claim != token {
		return ErrClaimLost
	}
	x.Claim, x.ClaimedAt, x.LeaseUntil = "", time.Time{}, time.Time{}
	return nil
}

// Extended moves the window end: the extension is applied. If the grant
// ended meanwhile the extension lapses instead and applied is false (the
// caller must then revoke the credentials it just issued).
func (r *Request) Extended(id, token string, now time.Time) (applied bool, err error) {
	x := r.extension(id)
	if x == nil || x.Claim != token {
		return false, ErrClaimLost
	}
	if x.State == ExtensionLapsed {
		return false, nil
	}
	if x.State != ExtensionApproved {
		return false, ErrClaimLost
	}
	if r.State != StateActive {
		x.State = ExtensionLapsed
		r.log(now, System, ActExtendLapsed, id)
		return false, nil
	}
	x.State = ExtensionApplied
	x.Claim = ""
	r.Window.ExpiresAt = x.NewExpiresAt
	// The extension delivered fresh credentials: a reissue asked
	// meanwhile is answered by them.
	r.Reissue = nil
	r.log(now, System, ActExtended, "until "+x.NewExpiresAt.UTC().Format(time.RFC3339))
	return true, nil
}

func extensionDecidedBy(x *Extension) []string {
	if x.Denial != nil {
		return []string{x.Denial.By}
	}
	out := make([]string, 0, len(x.Approvals))
	for _, a := range x.Approvals {
		out = append(out, a.By)
	}
	return out
}
