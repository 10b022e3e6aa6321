package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokken/tokken/bot"
)

// Activate is the activation job: it issues the grant of an activating
// request exactly once, however often the job is delivered. The run that
// claims the activation keeps its claim alive while it works (hold),
// schedules the expiry timer (so no grant exists without one), issues
// credentials ending at the window end fixed by the first claim, passes
// the RecordIssue fence, delivers them to the requester's DM and marks the
// request active.
//
// A run that finds another run's claim fresh returns an error wrapping
// ErrClaimed so that the queue retries it: if the holder finishes, the
// retry finds the request active and does nothing; if the holder died (a
// crash mid-AssumeRole), its lease runs out within claimLease and the retry
// takes over, issuing again for the same window end and recording
// ActReissued. Credentials a dead attempt may have issued end at that same
// recorded window end (their session policy denies everything after it),
// so none outlives the window. A failed attempt is retried up to
// MaxActivateAttempts; then the request fails with what to do.
func (s *Service) Activate(ctx context.Context, id string) error {
	token := bot.NewID("c-")
	now := s.now()
	r, err := s.transition(ctx, id, func(r *Request) error { return r.ClaimActivation(token, now) })
	var decided *ErrAlreadyDecided
	switch {
	case errors.As(err, &decided):
		s.log.InfoContext(ctx, "access: activation not needed", "request", id, "why", err.Error())
		return nil
	case errors.Is(err, ErrClaimed):
		return fmt.Errorf("activate %s: %w (its lease runs until %s; retry later)", id, err, r.Activation.LeaseUntil.UTC().Format(time.RFC3339))
	case err != nil:
		return fmt.Errorf("activate %s: %w", id, err)
	}
	if r.Activation.Interrupted {
		s.log.WarnContext(ctx, "access: took over an interrupted activation; issuing again for the same window",
			"request", id, "window_end", r.Window.ExpiresAt, "attempts", r.Activation.Attempts)
	}
	hctx, release := s.hold(ctx, id, func(now time.Time) error {
		_, err := s.requests.Update(ctx, id, func(r *Request) error { return r.RenewActivation(token, now) })
		return err
	})
	defer release()
	// Never trust the stored state: re-derive from the request's own record
	// and the policy in force that it may be granted (verify.go).
	if err := s.verifyGrant(hctx, &r); err != nil {
		var no *refusal
		if errors.As(err, &no) {
			return s.refuseActivation(ctx, id, token, no.why)
		}
		return s.activationFailed(ctx, id, token, fmt.Errorf("check the approvals: %w", held(hctx, err)), false)
	}
	end := r.Window.ExpiresAt
	if !now.Before(end) {
		return s.activationFailed(ctx, id, token, bot.Permanent(&windowPassedError{end: end}), false)
	}
	if r.Kind == KindIdentityCenter {
		return s.activateIDC(ctx, hctx, id, token, r)
	}
	spec, err := NewGrantSpec(&r, end, now, s.partition, s.protected...)
	if err != nil {
		return s.activationFailed(ctx, id, token, bot.Permanent(err), false)
	}
	if err := s.scheduleExpiry(hctx, id, end); err != nil {
		return s.activationFailed(ctx, id, token, held(hctx, err), false)
	}
	// What ending must end is recorded where only the worker writes,
	// before anything exists to end.
	if err := s.recordHeld(hctx, Held{Grant: r.Grant()}); err != nil {
		return s.activationFailed(ctx, id, token, held(hctx, err), false)
	}
	creds, err := s.granter.Issue(hctx, spec)
	if err != nil {
		return s.activationFailed(ctx, id, token, fmt.Errorf("issue grant: %w", held(hctx, err)), false)
	}
	r, err = s.transition(ctx, id, func(r *Request) error { return r.RecordIssue(token, s.now()) })
	if errors.Is(err, ErrClaimLost) {
		// Another run took over while this one issued: nobody has seen
		// these credentials, and their session policy ends at the window
		// end. Dropping them is all there is to do.
		s.log.WarnContext(ctx, "access: claim lost while issuing; discarding the credentials", "request", id)
		return nil
	}
	if err != nil {
		return s.activationFailed(ctx, id, token, fmt.Errorf("record the issue: %w", err), true)
	}
	if err := s.notifier.DeliverCredentials(hctx, r, creds); err != nil {
		// Nobody saw these credentials; a retry issues fresh ones.
		return s.activationFailed(ctx, id, token, fmt.Errorf("deliver credentials: %w", held(hctx, err)), true)
	}
	r, err = s.transition(ctx, id, func(r *Request) error { return r.Activated(token, s.now()) })
	if errors.Is(err, ErrClaimLost) {
		// This run was too slow: another run took over, or the sweep failed
		// the request. Unless someone else activated it, the credentials
		// just delivered must not outlive that decision.
		if r.State != StateActive {
			if rerr := s.granter.Revoke(ctx, r.Grant()); rerr != nil {
				return fmt.Errorf("activate %s: revoking credentials delivered after the claim was lost: %w", id, rerr)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("activate %s: credentials delivered but not recorded: %w", id, err)
	}
	return nil
}

// hold keeps a claim alive while its holder works: every renewEvery it
// calls renew with the current time. The returned context is cancelled,
// with a cause wrapping ErrClaimLost, when renew reports the claim lost or
// when renewals have failed for so long (claimLease-claimRenewEvery) that
// another run may be about to take over; the holder then stops before
// delivering anything. release stops the renewals and waits for them.
func (s *Service) hold(ctx context.Context, id string, renew func(now time.Time) error) (hctx context.Context, release func()) {
	hctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(s.renewEvery)
		defer tick.Stop()
		renewed := s.now()
		for {
			select {
			case <-hctx.Done():
				return
			case <-tick.C:
			}
			now := s.now()
			err := renew(now)
			switch {
			case err == nil:
				renewed = now
				s.log.DebugContext(ctx, "access: claim renewed", "request", id)
			case errors.Is(err, ErrClaimLost):
				cancel(fmt.Errorf("%w: another run took over or the request moved on", ErrClaimLost))
				return
			case hctx.Err() != nil:
				return
			case now.Sub(renewed) >= claimLease-claimRenewEvery:
				cancel(fmt.Errorf("%w: could not renew the claim since %s: %w", ErrClaimLost, renewed.UTC().Format(time.RFC3339), err))
				return
			default:
				s.log.WarnContext(ctx, "access: renewing a claim failed; retrying", "request", id, "err", err)
			}
		}
	}()
	return hctx, func() {
		cancel(nil)
		<-done
	}
}

// held explains err by hctx's cause when hold cancelled the work because
// the claim was lost.
func held(hctx context.Context, err error) error {
	if cause := context.Cause(hctx); cause != nil && errors.Is(cause, ErrClaimLost) {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// windowPassedError says the window fixed at the first claim ended before
// a retry could issue credentials: issuing now would grant nothing usable.
type windowPassedError struct{ end time.Time }

func (e *windowPassedError) Error() string {
	return "the access window ended at " + e.end.UTC().Format(time.RFC3339) + " before credentials could be issued"
}

// activationFailed releases the claim for a retry, or fails the request
// when cause is permanent or attempts are used up. maybeIssued says a grant
// may exist, so failing must end it (terminate, revoke) first.
func (s *Service) activationFailed(ctx context.Context, id, token string, cause error, maybeIssued bool) error {
	now := s.now()
	var final bool
	r, err := s.transition(ctx, id, func(r *Request) error {
		if r.State != StateActivating || r.Activation == nil || r.Activation.Claim != token {
			return ErrClaimLost
		}
		final = bot.IsPermanent(cause) || r.Activation.Attempts+1 >= MaxActivateAttempts
		if final {
			f := failureIssue(cause, now)
			if wp := (*windowPassedError)(nil); errors.As(cause, &wp) {
				f = failureWindowPassed(wp.end, now)
			}
			if ng := (*ErrRoleNotGrantable)(nil); errors.As(cause, &ng) {
				f = failureRoleNotGrantable(ng, now)
			}
			if r.Kind == KindIdentityCenter {
				f = failureIDC(cause, now)
			}
			return r.Fail(f, maybeIssued || r.Activation.Attempts > 0 || r.Activation.Issued > 0)
		}
		return r.ReleaseActivation(token, cause.Error())
	})
	if errors.Is(err, ErrClaimLost) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("activate %s: %w (recording the failure: %w)", id, cause, err)
	}
	if !final {
		return fmt.Errorf("activate %s (will retry): %w", id, cause)
	}
	s.log.WarnContext(ctx, "access: activation failed", "request", id, "err", cause)
	if r.State == StateEnding {
		if err := s.Finish(ctx, id); err != nil {
			s.log.ErrorContext(ctx, "access: cleaning up a failed activation; the sweep will retry", "request", id, "err", err)
		}
	}
	return nil
}

// refuseActivation fails the request whose grant verifyGrant refused, with
// why on its card and in the audit trail, and alerts ops. A grant an
// earlier attempt may have issued is ended first.
func (s *Service) refuseActivation(ctx context.Context, id, token, why string) error {
	now := s.now()
	r, err := s.transition(ctx, id, func(r *Request) error {
		if r.Activation == nil {
			return ErrClaimLost
		}
		return r.Refuse(token, why, r.Activation.Attempts > 0 || r.Activation.Issued > 0, now)
	})
	if errors.Is(err, ErrClaimLost) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("activate %s: refusing (%s): %w", id, why, err)
	}
	s.log.WarnContext(ctx, "access: grant refused; STS not called", "request", id, "why", why)
	s.alert(ctx, Alert{Channel: AlertOps, Action: ActRefused, Request: r, Text: alertRefused(&r, why)})
	if r.State == StateEnding {
		if err := s.Finish(ctx, id); err != nil {
			s.log.ErrorContext(ctx, "access: ending a refused activation; the sweep will retry", "request", id, "err", err)
		}
	}
	return nil
}

// Expire is the expiry timer's job: an active grant whose window has ended
// starts ending, and the end work runs here. A timer that fires early (the
// window was extended) re-schedules itself for the current end; one that
// fires for a request no longer active does nothing.
func (s *Service) Expire(ctx context.Context, id string) error {
	now := s.now()
	r, err := s.transition(ctx, id, func(r *Request) error { return r.BeginEnd(CauseExpired, System, "", now) })
	var decided *ErrAlreadyDecided
	var inactive *ErrNotActive
	switch {
	case errors.Is(err, ErrNotYet):
		return s.scheduleExpiry(ctx, id, r.endsAt())
	case errors.As(err, &decided), errors.As(err, &inactive):
		if r.State == StateEnding || r.State == StateRevokeFailed {
			return s.Finish(ctx, id)
		}
		return nil
	case err != nil:
		return fmt.Errorf("expire %s: %w", id, err)
	}
	return s.Finish(ctx, id)
}

// Finish does the work that ends access for a request that is ending or
// revoke_failed: terminate every live SSM session of the grant (ECS Exec
// sessions are SSM sessions), recording each in the trail, and, when
// ending before the window end, revoke the issued credentials; then mark it
// expired, revoked or failed (by its End.Cause). It is idempotent. On
// failure it counts the attempt and returns an error (so the job is
// retried); after MaxEndAttempts the request becomes revoke_failed and ops
// are alerted once, and the sweep keeps calling Finish.
func (s *Service) Finish(ctx context.Context, id string) error {
	r, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if r.State != StateEnding && r.State != StateRevokeFailed {
		return nil
	}
	// What to end comes from the worker's own record when there is one
	// (held.go): the request item may have been rewritten.
	h, found, err := s.holding(ctx, id)
	if err != nil {
		return fmt.Errorf("end access %s: %w", id, err)
	}
	if !found {
		h = Held{Grant: r.Grant(), IDC: r.IDC}
	}
	var (
		sessions   []Session
		terr, rerr error
		unassigned bool // an identity-center grant was removed
	)
	if h.Grant.Kind == KindIdentityCenter {
		// Identity Center has no sessions to end and no credentials to
		// revoke: the assignment tokken made goes, whenever access ends.
		unassigned, rerr = s.endIDC(ctx, h.IDC)
	} else {
		g := h.Grant
		sessions, terr = s.granter.TerminateSessions(ctx, g)
		if terr != nil {
			terr = fmt.Errorf("terminate sessions: %w", terr)
		}
		if r.Early() {
			if rerr = s.granter.Revoke(ctx, g); rerr != nil {
				rerr = fmt.Errorf("revoke credentials: %w", rerr)
			}
		}
	}
	now := s.now()
	if werr := errors.Join(terr, rerr); werr != nil {
		var failedNow bool
		r, err := s.transition(ctx, id, func(r *Request) (err error) {
			failedNow, err = r.EndFailed(sessions, werr.Error(), MaxEndAttempts, now)
			return err
		})
		if err == nil && failedNow {
			s.alert(ctx, Alert{Channel: AlertOps, Action: ActRevokeFailed, Request: r, Text: alertRevokeFailed(&r, werr)})
		}
		return fmt.Errorf("end access %s: %w", id, errors.Join(werr, err))
	}
	var decided *ErrAlreadyDecided
	r, err = s.transition(ctx, id, func(r *Request) error {
		if unassigned && (r.State == StateEnding || r.State == StateRevokeFailed) {
			r.log(now, System, ActIDCUnassigned, h.IDC.Describe()+" for "+h.IDC.Identifier)
		}
		_, err := r.Ended(sessions, now)
		return err
	})
	if errors.As(err, &decided) {
		s.dropHeld(ctx, id)
		return nil // another run finished first
	}
	if err != nil {
		return fmt.Errorf("end access %s: access ended but not recorded: %w", id, err)
	}
	s.dropHeld(ctx, id)
	if r.End != nil && r.End.Cause != CauseExpired {
		if err := s.timers.Cancel(ctx, expiryTimerID(id)); err != nil {
			s.log.WarnContext(ctx, "access: cancelling the expiry timer", "request", id, "err", err)
		}
	}
	return nil
}

// ApplyExtension is the extension job: it issues fresh credentials (same
// session name, the extended window end) once, delivers them, moves the
// window end and the expiry timer. If the grant ended meanwhile the
// extension lapses and the fresh credentials are revoked.
func (s *Service) ApplyExtension(ctx context.Context, id, ext string) error {
	token := bot.NewID("c-")
	now := s.now()
	r, err := s.transition(ctx, id, func(r *Request) error { return r.ClaimExtension(ext, token, now) })
	var decided *ErrAlreadyDecided
	switch {
	case errors.Is(err, ErrUnknownExtension), errors.As(err, &decided):
		s.log.InfoContext(ctx, "access: extension not needed", "request", id, "extension", ext, "why", err.Error())
		return nil
	case errors.Is(err, ErrClaimed):
		// Retried like a claimed activation: the holder finishes, or its
		// lease runs out and the retry takes over.
		return fmt.Errorf("extend %s: %w (retry later)", id, err)
	case err != nil:
		return fmt.Errorf("extend %s: %w", id, err)
	}
	hctx, stop := s.hold(ctx, id, func(now time.Time) error {
		_, err := s.requests.Update(ctx, id, func(r *Request) error { return r.RenewExtension(ext, token, now) })
		return err
	})
	defer stop()
	release := func(cause error) error {
		if _, err := s.requests.Update(ctx, id, func(r *Request) error { return r.ReleaseExtension(ext, token) }); err != nil {
			return fmt.Errorf("extend %s: %w (releasing the claim: %w)", id, cause, err)
		}
		return fmt.Errorf("extend %s (will retry): %w", id, cause)
	}
	x := r.extension(ext)
	// More time is a grant too: re-derive it as activation does.
	if err := s.verifyExtension(hctx, &r, x); err != nil {
		var no *refusal
		if !errors.As(err, &no) {
			return release(fmt.Errorf("check the approvals: %w", held(hctx, err)))
		}
		r, err := s.transition(ctx, id, func(r *Request) error { return r.RefuseExtension(ext, token, no.why, s.now()) })
		if errors.Is(err, ErrClaimLost) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extend %s: refusing (%s): %w", id, no.why, err)
		}
		s.log.WarnContext(ctx, "access: extension refused; STS not called", "request", id, "extension", ext, "why", no.why)
		s.alert(ctx, Alert{Channel: AlertOps, Action: ActRefused, Request: r, Text: alertRefused(&r, no.why)})
		return nil
	}
	if err := s.extendHeld(hctx, id, x.NewExpiresAt); err != nil {
		return release(held(hctx, err))
	}
	// An identity-center grant lasts as long as its assignment: more time
	// only moves the window end (and the expiry timer that removes it).
	if r.Kind != KindIdentityCenter {
		spec, err := NewGrantSpec(&r, x.NewExpiresAt, now, s.partition, s.protected...)
		if err != nil {
			_, ferr := s.transition(ctx, id, func(r *Request) error { return r.ExtensionFailed(ext, token, err.Error(), s.now()) })
			return bot.Permanent(errors.Join(fmt.Errorf("extend %s: %w", id, err), ferr))
		}
		creds, err := s.granter.Issue(hctx, spec)
		if err != nil {
			return release(fmt.Errorf("issue grant: %w", held(hctx, err)))
		}
		if err := s.notifier.DeliverCredentials(hctx, r, creds); err != nil {
			return release(fmt.Errorf("deliver credentials: %w", held(hctx, err)))
		}
	}
	var applied bool
	r, err = s.transition(ctx, id, func(r *Request) (err error) {
		applied, err = r.Extended(ext, token, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("extend %s: credentials delivered but not recorded: %w", id, err)
	}
	if !applied && r.Kind != KindIdentityCenter {
		if err := s.granter.Revoke(ctx, r.Grant()); err != nil {
			s.alert(ctx, Alert{Channel: AlertOps, Action: ActRevokeFailed, Request: r, Text: alertRevokeFailed(&r, err)})
			return fmt.Errorf("extend %s: revoking credentials of a lapsed extension: %w", id, err)
		}
		return nil
	}
	if !applied {
		return nil
	}
	if err := s.scheduleExpiry(ctx, id, r.Window.ExpiresAt); err != nil {
		// The old timer re-schedules itself when it fires early, and the
		// sweep expires anything past its window: log, do not re-issue.
		s.log.WarnContext(ctx, "access: moving the expiry timer", "request", id, "err", err)
	}
	return nil
}

// Sweep reconciles what timers and jobs may have missed; the app's
// reconcile sweep job calls it every bot.SweepInterval. It expires active grants past their window (and ends
// from its Held record any access whose window passed that its request did not end), retries ending
// and revoke_failed requests, re-enqueues stalled activations,
// extensions and reissues, fails activations older than ActivationDeadline, cancels
// requests pending longer than PendingTimeout, and tidies the open index.
// It carries on past individual failures and returns them joined.
func (s *Service) Sweep(ctx context.Context) error {
	entries, err := s.open.List(ctx, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := s.sweepOne(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	// Access whose window passed while its Held record remains: the
	// request's path missed it or its item no longer says to end it.
	helds, err := s.helds.List(ctx, bot.KeyRange{}, 0)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range helds {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if s.now().Before(e.Value.ends().Add(retryQuiet)) {
			continue
		}
		if err := s.endOverdue(ctx, e.Key, e.Value); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

func (s *Service) sweepOne(ctx context.Context, e bot.Versioned[openEntry]) error {
	now := s.now()
	r, err := s.Get(ctx, e.Value.ID)
	if errors.Is(err, bot.ErrNotFound) {
		// Submit writes the index entry first; an old orphan is a failed submit.
		if now.Sub(e.Value.Created) > retryQuiet {
			return s.open.Store.Delete(ctx, KindOpen, e.Key, e.Version)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if (r.Message.IsZero() || r.Unposted != nil) && !r.State.Final() && now.Sub(r.Created) > retryQuiet {
		// Its message was never posted (Slack refused, or failed longer
		// than the client retries): try again, so that it appears once
		// the bot is invited or Slack is back.
		s.render(ctx, r.ID)
	}
	switch r.State {
	case StatePending:
		if now.Sub(r.Created) > PendingTimeout {
			_, err := s.transition(ctx, r.ID, func(r *Request) error { return r.Abandon(reasonPendingTimeout, now) })
			return ignoreDecided(err)
		}
	case StateActivating:
		a := r.Activation
		if a == nil {
			return nil
		}
		if now.Sub(a.Since) > ActivationDeadline {
			_, err := s.transition(ctx, r.ID, func(r *Request) error {
				if r.State != StateActivating || r.Activation == nil {
					return r.alreadyDecided()
				}
				return r.Fail(failureStuck(now), r.Activation.Claim != "" || r.Activation.Attempts > 0)
			})
			if err := ignoreDecided(err); err != nil {
				return err
			}
			return s.Finish(ctx, r.ID)
		}
		if now.Sub(a.Since) > retryQuiet && (a.Claim == "" || !now.Before(a.LeaseUntil)) {
			return s.enqueueErr(ctx, fmt.Sprintf("activate/%s/%d", r.ID, now.Unix()), JobActivate, jobRef{RequestID: r.ID})
		}
	case StateActive:
		if !now.Before(r.endsAt()) {
			return s.Expire(ctx, r.ID)
		}
		if x := r.PendingExtension(); x != nil && x.State == ExtensionApproved &&
			(x.Claim == "" || !now.Before(x.LeaseUntil)) {
			return s.enqueueErr(ctx, fmt.Sprintf("extend/%s/%s/%d", r.ID, x.ID, now.Unix()), JobExtend,
				jobRef{RequestID: r.ID, ExtensionID: x.ID})
		}
		if a := r.Reissue; a != nil && now.Sub(a.Since) > retryQuiet && (a.Claim == "" || !now.Before(a.LeaseUntil)) {
			return s.enqueueErr(ctx, fmt.Sprintf("reissue/%s/%d", r.ID, now.Unix()), JobReissue,
				jobRef{RequestID: r.ID, By: a.By, Asked: a.Since})
		}
	case StateEnding:
		last := r.End.LastAttempt
		if last.IsZero() {
			last = r.End.At
		}
		if now.Sub(last) > retryQuiet {
			return s.Finish(ctx, r.ID)
		}
	case StateRevokeFailed:
		return s.Finish(ctx, r.ID)
	default:
		if r.State.Final() {
			return s.open.Store.Delete(ctx, KindOpen, e.Key, e.Version)
		}
	}
	return nil
}

func ignoreDecided(err error) error {
	var decided *ErrAlreadyDecided
	if errors.As(err, &decided) {
		return nil
	}
	return err
}

// shouldTell reports whether the requester hears about action in a DM.
func shouldTell(action string) bool {
	switch action {
	case ActApproved, ActActive, ActDenied, ActCancelled, ActFailed, ActRefused, ActExpired, ActRevoked,
		ActRevokeFailed, ActExtended, ActExtendDenied, ActExtendLapsed, ActReissueFailed:
		return true
	}
	return false
}
