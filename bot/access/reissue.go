package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokken/tokken/bot"
)

// New credentials within the approved window.
//
// STS caps role-chained credentials at an hour (SessionSeconds), so a grant
// whose window is longer gets credentials that expire before it ends. The
// requester may then ask for a new set ("New credentials" in the
// credentials DM, or `/access creds <id>`), without another approval: the
// new set is for the same request (RoleSessionName, SourceIdentity, session
// tags), with the same session policy and the same window end, and lasts
// SessionSeconds(window end − now), so it never lasts past the window end
// (when less than STS's 900 s floor remains, the session policy's window
// end deny ends it on time, as for every set).
//
// The ingress only checks that the ask makes sense (AskCredentials) and
// enqueues JobReissue; the worker issues (Reissue). It claims the reissue
// as an activation is claimed (Request.Reissue is an Activation: the same
// lease, the same RecordIssue-style fence, the same ActReissued notes for
// an interrupted attempt or a failed delivery), re-derives the grant as
// activation does (verifyGrant) and checks the window is the one the
// approvals gave (verifyWindow), so a reissue can neither widen nor
// prolong a grant. Each set issued is an ActReissued row whose actor is
// the requester who asked (note NoteReissuedAsked).

// ReissueInterval is how soon after a set of credentials was issued the
// requester may ask for another: a second click on the button is not a
// second set.
const ReissueInterval = time.Minute

// JobReissue issues new credentials for an active grant (see Reissue).
const JobReissue = "access.reissue"

// NoteReissuedAsked is the note of the ActReissued row of a set the
// requester asked for within the window.
const NoteReissuedAsked = "new credentials asked by the requester"

// NoteNewCredentials starts the note of an ActRefused row about new
// credentials the worker refused to issue.
const NoteNewCredentials = "new credentials: "

// ActReissueFailed records that new credentials the requester asked for
// could not be issued (the window ended, or AWS refused); the grant and
// its current credentials are unchanged.
const ActReissueFailed = "access.reissue_failed"

// HasCredentials reports whether grants of kind k are temporary AWS
// credentials delivered in the requester's DM, which a reissue can
// renew: sts (console and CLI), ssm (Session Manager) and ecs-exec (the
// CLI's `aws ecs execute-command`). A kind that grants otherwise has no
// credentials to renew.
func (k Kind) HasCredentials() bool {
	switch k {
	case KindSTS, KindSSM, KindECSExec:
		return true
	}
	return false
}

// ErrNoNewCredentials refuses new credentials for a grant; Why says why,
// for the requester.
type ErrNoNewCredentials struct {
	ID  string
	Why string
}

func (e *ErrNoNewCredentials) Error() string {
	return fmt.Sprintf("no new credentials for %s: %s", e.ID, e.Why)
}

// errReissueDone says a reissue job has nothing left to do: a set was
// issued after it was asked for.
var errReissueDone = errors.New("new credentials were already issued after this ask")

// LastIssued is when the latest set of credentials of r was issued (its
// activation, an extension or a reissue); zero when none was.
func (r *Request) LastIssued() time.Time {
	for i := len(r.History) - 1; i >= 0; i-- {
		switch r.History[i].Action {
		case ActActive, ActExtended, ActReissued:
			return r.History[i].At
		}
	}
	return time.Time{}
}

// MayReissue checks that by may ask at now for new credentials for r:
// the requester, of an active grant of a kind with credentials, before
// the window end, no set being issued already (a reissue, or an approved
// extension's), and at least ReissueInterval after the last set.
func (r *Request) MayReissue(by string, now time.Time) error {
	if by != r.Requester {
		return ErrNotRequester
	}
	if err := r.reissuable(now); err != nil {
		return err
	}
	if r.Reissue != nil {
		return &ErrNoNewCredentials{ID: r.ID, Why: whyReissueUnderway}
	}
	if last := r.LastIssued(); now.Before(last.Add(ReissueInterval)) {
		return &ErrNoNewCredentials{ID: r.ID, Why: whyReissueTooSoon(last, last.Add(ReissueInterval))}
	}
	return nil
}

// reissuable checks what MayReissue and ClaimReissue both require.
func (r *Request) reissuable(now time.Time) error {
	switch {
	case !r.Kind.HasCredentials():
		return &ErrNoNewCredentials{ID: r.ID, Why: whyNoCredentials(r.Kind)}
	case r.State != StateActive:
		return &ErrNotActive{State: r.State}
	case !now.Before(r.Window.ExpiresAt):
		return &ErrNoNewCredentials{ID: r.ID, Why: whyWindowOver(r.Window.ExpiresAt)}
	}
	if x := r.PendingExtension(); x != nil && x.State == ExtensionApproved {
		return &ErrNoNewCredentials{ID: r.ID, Why: whyExtensionUnderway}
	}
	return nil
}

// ClaimReissue lets one job run issue the new credentials by asked for at
// asked: it starts the reissue when none is under way (unless a set was
// issued since asked: errReissueDone), or takes over the claim of one
// whose lease ran out (ErrClaimed while it is fresh). While an approved
// extension is being applied it is ErrClaimed too: the extension's set
// answers the ask (Extended ends the reissue), or, if the extension lapses,
// a retry issues.
func (r *Request) ClaimReissue(by string, asked time.Time, token string, now time.Time) error {
	if by != r.Requester {
		return ErrNotRequester
	}
	if x := r.PendingExtension(); x != nil && x.State == ExtensionApproved && r.State == StateActive {
		return ErrClaimed
	}
	if err := r.reissuable(now); err != nil {
		return err
	}
	if r.Reissue == nil {
		last := r.LastIssued()
		if !last.Before(asked) {
			return errReissueDone
		}
		// The ask's time comes from the job: a job that says it was asked
		// later than now, or sooner after the last set than an ask may
		// be, is none the ingress sent.
		if asked.After(now.Add(clockSkew)) || now.Before(last.Add(ReissueInterval)) {
			return &ErrNoNewCredentials{ID: r.ID, Why: whyReissueTooSoon(last, last.Add(ReissueInterval))}
		}
		r.Reissue = &Activation{Since: asked, By: by}
	}
	return r.Reissue.take(token, now)
}

// RenewReissue extends the lease of the reissue claim token holds.
func (r *Request) RenewReissue(token string, now time.Time) error {
	if r.State != StateActive {
		return ErrClaimLost
	}
	return r.Reissue.renew(token, now)
}

// RecordReissue is the fence between issuing new credentials and
// delivering them, as RecordIssue is for an activation: the holder of the
// claim records the set (an ActReissued row by the requester who asked)
// before it may deliver it. ErrClaimLost when the claim was taken over or
// the grant is no longer active; ErrClaimed when an extension was approved
// meanwhile (its end would be shown with this set, which ends earlier).
func (r *Request) RecordReissue(token string, now time.Time) error {
	a := r.Reissue
	if r.State != StateActive || a == nil || a.Claim != token {
		return ErrClaimLost
	}
	if x := r.PendingExtension(); x != nil && x.State == ExtensionApproved {
		return ErrClaimed
	}
	note := a.issue(now)
	if note == "" {
		note = NoteReissuedAsked
	}
	r.log(now, a.By, ActReissued, note+", until "+r.Window.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

// ReleaseReissue gives the claim back after a failed attempt so a retry
// may try again.
func (r *Request) ReleaseReissue(token, errText string) error {
	return r.Reissue.release(token, errText)
}

// ReissueDone ends the reissue whose set was delivered.
func (r *Request) ReissueDone(token string) error {
	if r.Reissue == nil || r.Reissue.Claim != token {
		return ErrClaimLost
	}
	r.Reissue = nil
	return nil
}

// ReissueFailed gives up on the reissue token holds: action is ActRefused
// (the worker will not issue it; why is on the row) or ActReissueFailed
// (it could not be issued). The grant keeps its window and its current
// credentials.
func (r *Request) ReissueFailed(token, action, why string, now time.Time) error {
	if r.Reissue == nil || r.Reissue.Claim != token {
		return ErrClaimLost
	}
	r.Reissue = nil
	r.log(now, System, action, NoteNewCredentials+why)
	return nil
}

// AskCredentials is the requester asking for new credentials for request
// id's grant (the "New credentials" button, `/access creds <id>`). It
// checks the ask (MayReissue: only the requester, only an active grant of
// a kind with credentials, before its window end, not twice within
// ReissueInterval) and enqueues the worker's JobReissue; nothing is
// stored. Its refusals are user-facing.
func (s *Service) AskCredentials(ctx context.Context, user, id string) (Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	now := s.now()
	if err := r.MayReissue(user, now); err != nil {
		return r, err
	}
	ref := jobRef{RequestID: id, By: user, Asked: now}
	if err := s.enqueueErr(ctx, fmt.Sprintf("reissue/%s/%d", id, now.Unix()), JobReissue, ref); err != nil {
		return r, fmt.Errorf("new credentials for %s: %w", id, err)
	}
	return r, nil
}

// Reissue is JobReissue: it issues new credentials for request id's active
// grant, asked for by by at asked, and delivers them to the requester's
// DM. It claims the reissue as Activate claims an activation (a run that
// finds the claim fresh asks for a retry; one whose lease ran out is taken
// over), re-derives the grant (verifyGrant) and its window (verifyWindow)
// and issues until the window end, never past it. A refusal is recorded
// (ActRefused), ops are alerted and the requester told; a failure is
// retried up to MaxActivateAttempts, then recorded (ActReissueFailed) and
// told. An ask that no longer makes sense (the grant ended, a set was
// issued since) does nothing.
func (s *Service) Reissue(ctx context.Context, id, by string, asked time.Time) error {
	token := bot.NewID("c-")
	now := s.now()
	r, err := s.transition(ctx, id, func(r *Request) error { return r.ClaimReissue(by, asked, token, now) })
	var (
		no       *ErrNoNewCredentials
		inactive *ErrNotActive
	)
	switch {
	case errors.Is(err, ErrClaimed):
		return fmt.Errorf("new credentials for %s: %w (retry later)", id, err)
	case errors.As(err, &no), errors.As(err, &inactive), errors.Is(err, errReissueDone), errors.Is(err, ErrNotRequester):
		s.log.InfoContext(ctx, "access: new credentials not issued", "request", id, "by", by, "why", err.Error())
		return nil
	case err != nil:
		return fmt.Errorf("new credentials for %s: %w", id, err)
	}
	hctx, release := s.hold(ctx, id, func(now time.Time) error {
		_, err := s.requests.Update(ctx, id, func(r *Request) error { return r.RenewReissue(token, now) })
		return err
	})
	defer release()
	// A reissue is a grant: re-derive it as activation does, and check
	// that the window it ends at is the one the approvals gave.
	if err := errors.Join(s.verifyGrant(hctx, &r), verifyWindow(&r, now)); err != nil {
		var refused *refusal
		if errors.As(err, &refused) {
			return s.refuseReissue(ctx, id, token, refused.why)
		}
		return s.reissueFailed(ctx, id, token, fmt.Errorf("check the approvals: %w", held(hctx, err)))
	}
	end := r.Window.ExpiresAt
	if !now.Before(end) {
		return s.reissueFailed(ctx, id, token, bot.Permanent(&windowPassedError{end: end}))
	}
	spec, err := NewGrantSpec(&r, end, now, s.partition, s.protected...)
	if err != nil {
		return s.reissueFailed(ctx, id, token, bot.Permanent(err))
	}
	creds, err := s.granter.Issue(hctx, spec)
	if err != nil {
		return s.reissueFailed(ctx, id, token, fmt.Errorf("issue grant: %w", held(hctx, err)))
	}
	r, err = s.transition(ctx, id, func(r *Request) error { return r.RecordReissue(token, s.now()) })
	switch {
	case errors.Is(err, ErrClaimed):
		// An extension was approved meanwhile: nobody saw these
		// credentials, and they end at the window end. Its set answers
		// the ask, or a retry issues again if it lapses.
		return s.reissueFailed(ctx, id, token, fmt.Errorf("an extension is being applied: %w", err))
	case errors.Is(err, ErrClaimLost):
		// Taken over, or the grant ended: discard what nobody has seen.
		// Its session policy ends it at the window end; an early end
		// revoked every credential of the session name from then on.
		s.log.WarnContext(ctx, "access: reissue claim lost while issuing; discarding the credentials", "request", id)
		return nil
	case err != nil:
		return s.reissueFailed(ctx, id, token, fmt.Errorf("record the issue: %w", err))
	}
	if err := s.notifier.DeliverCredentials(hctx, r, creds); err != nil {
		// Nobody saw these credentials; a retry issues fresh ones.
		return s.reissueFailed(ctx, id, token, fmt.Errorf("deliver credentials: %w", held(hctx, err)))
	}
	if _, err := s.transition(ctx, id, func(r *Request) error { return r.ReissueDone(token) }); err != nil && !errors.Is(err, ErrClaimLost) {
		return fmt.Errorf("new credentials for %s: delivered but not recorded: %w", id, err)
	}
	return nil
}

// verifyWindow checks that r's window is what its activation and applied
// extensions made it, so that new credentials end where the approvals
// said. A window that is not is a *refusal.
func verifyWindow(r *Request, now time.Time) error {
	if r.Window.IsZero() || r.Window.ActivatedAt.After(now) || !r.Window.ExpiresAt.Equal(r.Window.ActivatedAt.Add(r.approvedLength())) {
		return refuse("the grant's window is not what its approvals gave")
	}
	return nil
}

// reissueFailed releases the reissue claim for a retry, or gives the
// reissue up when cause is permanent or attempts are used up, telling the
// requester (ActReissueFailed).
func (s *Service) reissueFailed(ctx context.Context, id, token string, cause error) error {
	now := s.now()
	var final bool
	_, err := s.transition(ctx, id, func(r *Request) error {
		if r.Reissue == nil || r.Reissue.Claim != token {
			return ErrClaimLost
		}
		final = bot.IsPermanent(cause) || r.Reissue.Attempts+1 >= MaxActivateAttempts
		if final {
			why := cause.Error()
			if wp := (*windowPassedError)(nil); errors.As(cause, &wp) {
				why = whyWindowOver(wp.end)
			}
			return r.ReissueFailed(token, ActReissueFailed, why, now)
		}
		return r.ReleaseReissue(token, cause.Error())
	})
	if errors.Is(err, ErrClaimLost) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("new credentials for %s: %w (recording the failure: %w)", id, cause, err)
	}
	if !final {
		return fmt.Errorf("new credentials for %s (will retry): %w", id, cause)
	}
	s.log.WarnContext(ctx, "access: new credentials could not be issued", "request", id, "err", cause)
	return nil
}

// refuseReissue records that the worker refuses new credentials for the
// grant (verifyGrant or verifyWindow said no), alerts ops and tells the
// requester. The grant keeps its window and current credentials.
func (s *Service) refuseReissue(ctx context.Context, id, token, why string) error {
	r, err := s.transition(ctx, id, func(r *Request) error { return r.ReissueFailed(token, ActRefused, why, s.now()) })
	if errors.Is(err, ErrClaimLost) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("new credentials for %s: refusing (%s): %w", id, why, err)
	}
	s.log.WarnContext(ctx, "access: new credentials refused; STS not called", "request", id, "why", why)
	s.alert(ctx, Alert{Channel: AlertOps, Action: ActRefused, Request: r, Text: alertRefused(&r, NoteNewCredentials+why)})
	return nil
}
