package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokken/tokken/bot"
)

// Activate is the activation job: it issues the grant of an activating
// request exactly once, however often the job is delivered. The run that
// claims the activation schedules the expiry timer (so no grant exists
// without one), issues credentials for a window that starts now, delivers
// them to the requester's DM and marks the request active. Other runs
// return nil at once. A failed attempt is retried up to
// MaxActivateAttempts; then the request fails with what to do.
func (s *Service) Activate(ctx context.Context, id string) error {
	token := bot.NewID("c-")
	now := s.now()
	r, err := s.transition(ctx, id, func(r *Request) error { return r.ClaimActivation(token, now) })
	var decided *ErrAlreadyDecided
	switch {
	case errors.Is(err, ErrClaimed), errors.As(err, &decided):
		s.log.InfoContext(ctx, "access: activation not needed", "request", id, "why", err.Error())
		return nil
	case err != nil:
		return fmt.Errorf("activate %s: %w", id, err)
	}
	end := now.Add(r.Duration)
	spec, err := NewGrantSpec(&r, end, now, s.partition)
	if err != nil {
		return s.activationFailed(ctx, id, token, bot.Permanent(err), false)
	}
	if err := s.scheduleExpiry(ctx, id, end); err != nil {
		return s.activationFailed(ctx, id, token, err, false)
	}
	creds, err := s.granter.Issue(ctx, spec)
	if err != nil {
		return s.activationFailed(ctx, id, token, fmt.Errorf("issue grant: %w", err), false)
	}
	if err := s.notifier.DeliverCredentials(ctx, r, creds); err != nil {
		// Nobody saw these credentials; a retry issues fresh ones.
		return s.activationFailed(ctx, id, token, fmt.Errorf("deliver credentials: %w", err), true)
	}
	w := Window{ActivatedAt: now, ExpiresAt: end}
	r, err = s.transition(ctx, id, func(r *Request) error { return r.Activated(token, w, s.now()) })
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
			return r.Fail(failureIssue(cause, now), maybeIssued || r.Activation.Attempts > 0)
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
		return s.scheduleExpiry(ctx, id, r.Window.ExpiresAt)
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
// revoke_failed: terminate every live SSM session of the grant and, when
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
	g := r.Grant()
	n, terr := s.granter.TerminateSessions(ctx, g)
	if terr != nil {
		terr = fmt.Errorf("terminate sessions: %w", terr)
	}
	var rerr error
	if r.Early() {
		if rerr = s.granter.Revoke(ctx, g); rerr != nil {
			rerr = fmt.Errorf("revoke credentials: %w", rerr)
		}
	}
	now := s.now()
	if werr := errors.Join(terr, rerr); werr != nil {
		var failedNow bool
		r, err := s.transition(ctx, id, func(r *Request) (err error) {
			failedNow, err = r.EndFailed(n, werr.Error(), MaxEndAttempts, now)
			return err
		})
		if err == nil && failedNow {
			s.alert(ctx, Alert{Channel: AlertOps, Action: ActRevokeFailed, Request: r, Text: alertRevokeFailed(&r, werr)})
		}
		return fmt.Errorf("end access %s: %w", id, errors.Join(werr, err))
	}
	var decided *ErrAlreadyDecided
	r, err = s.transition(ctx, id, func(r *Request) error { _, err := r.Ended(n, now); return err })
	if errors.As(err, &decided) {
		return nil // another run finished first
	}
	if err != nil {
		return fmt.Errorf("end access %s: access ended but not recorded: %w", id, err)
	}
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
	case errors.Is(err, ErrClaimed), errors.Is(err, ErrUnknownExtension), errors.As(err, &decided):
		s.log.InfoContext(ctx, "access: extension not needed", "request", id, "extension", ext, "why", err.Error())
		return nil
	case err != nil:
		return fmt.Errorf("extend %s: %w", id, err)
	}
	x := r.extension(ext)
	spec, err := NewGrantSpec(&r, x.NewExpiresAt, now, s.partition)
	if err != nil {
		_, ferr := s.transition(ctx, id, func(r *Request) error { return r.ExtensionFailed(ext, token, err.Error(), s.now()) })
		return bot.Permanent(errors.Join(fmt.Errorf("extend %s: %w", id, err), ferr))
	}
	release := func(cause error) error {
		if _, err := s.requests.Update(ctx, id, func(r *Request) error { return r.ReleaseExtension(ext, token) }); err != nil {
			return fmt.Errorf("extend %s: %w (releasing the claim: %w)", id, cause, err)
		}
		return fmt.Errorf("extend %s (will retry): %w", id, cause)
	}
	creds, err := s.granter.Issue(ctx, spec)
	if err != nil {
		return release(fmt.Errorf("issue grant: %w", err))
	}
	if err := s.notifier.DeliverCredentials(ctx, r, creds); err != nil {
		return release(fmt.Errorf("deliver credentials: %w", err))
	}
	var applied bool
	r, err = s.transition(ctx, id, func(r *Request) (err error) {
		applied, err = r.Extended(ext, token, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("extend %s: credentials delivered but not recorded: %w", id, err)
	}
	if !applied {
		if err := s.granter.Revoke(ctx, r.Grant()); err != nil {
			s.alert(ctx, Alert{Channel: AlertOps, Action: ActRevokeFailed, Request: r, Text: alertRevokeFailed(&r, err)})
			return fmt.Errorf("extend %s: revoking credentials of a lapsed extension: %w", id, err)
		}
		return nil
	}
	if err := s.scheduleExpiry(ctx, id, r.Window.ExpiresAt); err != nil {
		// The old timer re-schedules itself when it fires early, and the
		// sweep expires anything past its window: log, do not re-issue.
		s.log.WarnContext(ctx, "access: moving the expiry timer", "request", id, "err", err)
	}
	return nil
}

// Sweep reconciles what timers and jobs may have missed; it runs every
// SweepEvery. It expires active grants past their window, retries ending
// and revoke_failed requests, re-enqueues stalled activations and
// extensions, fails activations older than ActivationDeadline, cancels
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
		if now.Sub(a.Since) > retryQuiet && (a.Claim == "" || now.Sub(a.ClaimedAt) > claimTimeout) {
			return s.enqueueErr(ctx, fmt.Sprintf("activate/%s/%d", r.ID, now.Unix()), JobActivate, jobRef{RequestID: r.ID})
		}
	case StateActive:
		if !now.Before(r.Window.ExpiresAt) {
			return s.Expire(ctx, r.ID)
		}
		if x := r.PendingExtension(); x != nil && x.State == ExtensionApproved &&
			(x.Claim == "" || now.Sub(x.ClaimedAt) > claimTimeout) {
			return s.enqueueErr(ctx, fmt.Sprintf("extend/%s/%s/%d", r.ID, x.ID, now.Unix()), JobExtend,
				jobRef{RequestID: r.ID, ExtensionID: x.ID})
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
	case ActApproved, ActActive, ActDenied, ActCancelled, ActFailed, ActExpired, ActRevoked,
		ActRevokeFailed, ActExtended, ActExtendDenied, ActExtendLapsed:
		return true
	}
	return false
}
