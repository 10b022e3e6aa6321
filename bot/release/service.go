package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokken/tokken/bot"
)

// KindApproval is the store kind of approvals, keyed by ApprovalID.
const KindApproval = "release_approval"

// Job kinds the service handles (Register).
const (
	// KindVote carries an Approve or Reject click (payload VoteRequest).
	KindVote = "release.vote"
	// KindExpire fires at an approval's expiry (payload ExpireRequest).
	KindExpire = "release.expire"
	// KindStart runs /release <pipeline> (payload StartRequest).
	KindStart = "release.start"
)

// KindStarted is the store kind of who started which execution, keyed by
// StartKey.
const KindStarted = "release_started"

// StartKey is the store key of the record of who started execution id of
// pipeline.
func StartKey(pipeline, executionID string) string { return pipeline + "/" + executionID }

// Started records who started an execution from Slack.
type Started struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// StartRequest is a /release command.
type StartRequest struct {
	// ID names the request; it is the StartPipelineExecution client
	// request token, so a retried job does not start a second execution.
	ID       string        `json:"id"`
	Pipeline string        `json:"pipeline"`
	By       bot.Principal `json:"by"`
	ReplyTo  ReplyTo       `json:"reply_to"`
}

// Context keys of the approve_release query (policies: CtxPipeline,
// CtxStage, CtxEnv).
const (
	CtxPipeline = "pipeline"
	CtxStage    = "stage"
	CtxEnv      = "env"
)

// System is the audit actor for what tokken does on its own.
const System = "tokken"

// approvalTTL keeps an approval record after CodePipeline's longest wait
// (seven days) for the audit of late clicks.
const approvalTTL = 30 * 24 * time.Hour

// VoteRequest is an approver's click.
type VoteRequest struct {
	ID      string        `json:"id"`
	By      bot.Principal `json:"by"`
	Approve bool          `json:"approve"`
	Reason  string        `json:"reason,omitempty"`
	ReplyTo ReplyTo       `json:"reply_to"`
}

// ExpireRequest names an approval whose token expires at At.
type ExpireRequest struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// Deps are the ports a Service needs; all are required.
type Deps struct {
	Store        bot.Store
	Pipelines    *Pipelines
	CodePipeline CodePipeline
	Notifier     Notifier
	Authorizer   bot.Authorizer
	Timers       bot.Timers
	Auditor      bot.Auditor
	Now          func() time.Time // default time.Now
	Log          *slog.Logger     // default slog.Default()
}

// Service runs release approvals. Every entry point is idempotent (SNS
// and jobs deliver at least once) and every change a conditional write.
type Service struct {
	d         Deps
	approvals bot.Table[Approval]
}

// NewService checks d and returns a Service.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Pipelines == nil || d.CodePipeline == nil || d.Notifier == nil || d.Authorizer == nil || d.Timers == nil || d.Auditor == nil {
		return nil, errors.New("release: every dependency (Store, Pipelines, CodePipeline, Notifier, Authorizer, Timers, Auditor) is required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	d.Log = d.Log.With("feature", "release")
	return &Service{d: d, approvals: bot.Table[Approval]{Store: d.Store, Kind: KindApproval}}, nil
}

// Register adds the service's job handlers to mux.
func (s *Service) Register(mux *bot.JobMux) {
	mux.Handle(KindVote, func(ctx context.Context, j bot.Job) error {
		var v VoteRequest
		if err := j.Decode(&v); err != nil {
			return err
		}
		return s.Vote(ctx, v)
	})
	// A vote job given up (dead-lettered) may leave its approval being
	// decided with nobody sending the decision: the card says so.
	mux.HandleGiveUp(KindVote, func(ctx context.Context, j bot.Job, cause string) error {
		var v VoteRequest
		if err := j.Decode(&v); err != nil {
			return err
		}
		return s.GiveUp(ctx, v.ID, j, cause)
	})
	mux.Handle(KindStart, func(ctx context.Context, j bot.Job) error {
		var r StartRequest
		if err := j.Decode(&r); err != nil {
			return err
		}
		return s.Start(ctx, r)
	})
	mux.Handle(KindExpire, func(ctx context.Context, j bot.Job) error {
		var e ExpireRequest
		if err := j.Decode(&e); err != nil {
			return err
		}
		return s.Expire(ctx, e)
	})
}

// Approval returns the stored approval id.
func (s *Service) Approval(ctx context.Context, id string) (Approval, error) {
	v, err := s.approvals.Get(ctx, id)
	return v.Value, err
}

// Intake turns an approval notification into one card in the pipeline's
// approver channel. A repeated delivery finds the stored approval and only
// posts the card if that had not happened. A pipeline pipelines.yaml does
// not cover is logged and dropped: nobody is configured to approve it.
func (s *Service) Intake(ctx context.Context, n Notification) error {
	a := n.Approval
	p, ok := s.d.Pipelines.Lookup(a.PipelineName)
	if !ok {
		s.d.Log.ErrorContext(ctx, "approval notification for a pipeline pipelines.yaml does not name; approve it in the console or add the pipeline",
			"pipeline", a.PipelineName, "stage", a.StageName, "action", a.ActionName)
		return nil
	}
	id := ApprovalID(a.PipelineName, a.StageName, a.ActionName, a.Token)
	cur, err := s.approvals.Get(ctx, id)
	switch {
	case err == nil:
		s.d.Log.InfoContext(ctx, "approval notification delivered again", "approval", id)
		return s.postAndArm(ctx, cur.Value, p.Channel)
	case !errors.Is(err, bot.ErrNotFound):
		return err
	}
	now := s.d.Now()
	ap := Approval{
		ID: id, Pipeline: a.PipelineName, Stage: a.StageName, Action: a.ActionName, Token: a.Token,
		Region: n.Region, ConsoleLink: n.ConsoleLink, ReviewLink: a.ApprovalReviewLink, ExternalLink: a.ExternalEntityLink,
		CustomData: clean(a.CustomData, 1000), Expires: n.ExpiresAt(), Env: p.Env, Required: max(p.Approvals, 1),
		State: StatePending, Created: now, Updated: now,
	}
	if ex, err := s.d.CodePipeline.Execution(ctx, a.PipelineName, a.StageName, a.ActionName, a.Token); err != nil {
		s.d.Log.WarnContext(ctx, "cannot read the execution waiting for approval; the card shows no source revisions", "approval", id, "err", err)
	} else {
		ap.Execution = &ex
		started, err := bot.Table[Started]{Store: s.d.Store, Kind: KindStarted}.Get(ctx, StartKey(a.PipelineName, ex.ID))
		switch {
		case err == nil:
			ap.StartedBy = started.Value.By
		case !errors.Is(err, bot.ErrNotFound):
			return err
		}
	}
	if err := s.approvals.Create(ctx, id, ap, approvalTTL); err != nil {
		if errors.Is(err, bot.ErrConflict) { // a concurrent delivery won
			return nil
		}
		return err
	}
	s.record(ctx, ap, "release.requested", System, "", map[string]string{"channel": p.Channel, "required": fmt.Sprint(ap.Required)})
	return s.postAndArm(ctx, ap, p.Channel)
}

// postAndArm posts ap's card unless it has been posted, then arms the
// expiry timer (scheduling the same timer again replaces it, so a repeated
// delivery may do it again). A card rendered from a state that changed
// while it was being posted is updated at once.
func (s *Service) postAndArm(ctx context.Context, ap Approval, channel string) error {
	if ap.Message.IsZero() {
		ref, err := s.d.Notifier.Post(ctx, ap, channel)
		if err != nil {
			return fmt.Errorf("post approval card %s: %w", ap.ID, err)
		}
		cur, err := s.approvals.Update(ctx, ap.ID, func(a *Approval) error {
			if !a.Message.IsZero() {
				return bot.ErrNoChange
			}
			a.Message = ref
			return nil
		})
		if err != nil {
			return err
		}
		if cur.Message == ref && (cur.State != ap.State || len(cur.Approvals) != len(ap.Approvals)) {
			if err := s.d.Notifier.Update(ctx, cur); err != nil {
				return fmt.Errorf("update approval card %s: %w", ap.ID, err)
			}
		}
		ap = cur
	}
	if ap.Expires.IsZero() || ap.State.Final() {
		return nil
	}
	id := "release-expire/" + ap.ID
	job, err := bot.NewJob(id, KindExpire, ExpireRequest{ID: ap.ID, At: ap.Expires})
	if err != nil {
		return err
	}
	if err := s.d.Timers.Schedule(ctx, bot.Timer{ID: id, At: ap.Expires, Job: job}); err != nil {
		return fmt.Errorf("schedule expiry of %s: %w", ap.ID, err)
	}
	return nil
}

// userError is a refusal told to the person who clicked.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func userErrorf(format string, args ...any) error { return &userError{fmt.Sprintf(format, args...)} }

// Vote records an Approve or Reject click. Refusals (not allowed, already
// voted, already decided, expired) are replied to the clicker; an error
// means the job should be retried.
func (s *Service) Vote(ctx context.Context, v VoteRequest) error {
	err := s.vote(ctx, v)
	var u *userError
	if errors.As(err, &u) {
		return s.d.Notifier.Reply(ctx, v.ReplyTo, u.msg)
	}
	return err
}

func (s *Service) vote(ctx context.Context, v VoteRequest) error {
	cur, err := s.approvals.Get(ctx, v.ID)
	if errors.Is(err, bot.ErrNotFound) {
		return userErrorf("There is no release approval %s any more.", v.ID)
	}
	if err != nil {
		return err
	}
	ap := cur.Value
	if ap.State == StateDeciding && (ap.ApprovedBy(v.By.ID) || (ap.Rejection != nil && ap.Rejection.By == v.By.ID)) {
		return s.decide(ctx, ap) // a retry of the vote that decided it
	}
	if ap.State.Final() || ap.State == StateDeciding {
		// Re-render the card: if the update that followed the decision
		// failed, a later click repairs it.
		if err := s.d.Notifier.Update(ctx, ap); err != nil {
			s.d.Log.WarnContext(ctx, "approval card not updated", "approval", ap.ID, "err", err)
		}
		return userErrorf("This release approval is already %s.", describeState(ap))
	}
	now := s.d.Now()
	if !ap.Expires.IsZero() && !now.Before(ap.Expires) {
		return s.expire(ctx, ap.ID)
	}
	reason := clean(v.Reason, 300)
	if !v.Approve && reason == "" {
		return userErrorf("Say why you reject the release: the reason goes to CodePipeline and the card.")
	}
	d, err := s.d.Authorizer.Authorize(ctx, bot.AuthzQuery{
		Principal: v.By, Action: bot.ActionApproveRelease, Now: now,
		Context: map[string]string{CtxPipeline: ap.Pipeline, CtxStage: ap.Stage, CtxEnv: ap.Env},
	})
	if err != nil {
		return fmt.Errorf("authorize approve_release on %s: %w", ap.Pipeline, err)
	}
	if !d.Allow {
		s.record(ctx, ap, "release.refused", v.By.ID, strings.Join(d.Reasons, "; "), nil)
		return userErrorf("You may not approve or reject releases of %s (stage %s): %s", ap.Pipeline, ap.Stage, strings.Join(d.Reasons, "; "))
	}
	starter, err := s.starter(ctx, ap)
	if err != nil {
		return err
	}
	if v.Approve && v.By.ID == starter {
		s.record(ctx, ap, "release.refused", v.By.ID, "started the release", nil)
		return userErrorf("You started this release; someone else must approve it.")
	}
	if v.Approve && ap.ApprovedBy(v.By.ID) {
		return userErrorf("You have already approved this release; it needs %d distinct approvers (%d so far).", ap.Required, len(ap.Approvals))
	}
	ap, err = s.approvals.Update(ctx, ap.ID, func(a *Approval) error {
		if a.State != StatePending {
			return userErrorf("This release approval is already %s.", describeState(*a))
		}
		if v.Approve {
			if a.ApprovedBy(v.By.ID) {
				return userErrorf("You have already approved this release.")
			}
			a.Approvals = append(a.Approvals, Vote{By: v.By.ID, At: now, Reason: reason})
			a.Required = max(a.Required, d.Approvals)
			if len(a.Approvals) >= a.Required {
				a.State = StateDeciding
			}
		} else {
			a.Rejection = &Vote{By: v.By.ID, At: now, Reason: reason}
			a.State = StateDeciding
		}
		if a.State == StateDeciding {
			// The decision and its approvers are stored before anything
			// is sent (decide).
			a.Sending = &Sending{Approved: a.Rejection == nil, Summary: Summary(*a)}
		}
		a.Updated = now
		return nil
	})
	if err != nil {
		return err
	}
	if v.Approve {
		s.record(ctx, ap, "release.approval", v.By.ID, reason, map[string]string{"approvals": fmt.Sprintf("%d/%d", len(ap.Approvals), ap.Required)})
	} else {
		s.record(ctx, ap, "release.rejection", v.By.ID, reason, nil)
	}
	if ap.State != StateDeciding {
		if err := s.d.Notifier.Update(ctx, ap); err != nil {
			s.d.Log.WarnContext(ctx, "approval card not updated", "approval", ap.ID, "err", err)
		}
		return s.d.Notifier.Reply(ctx, v.ReplyTo, fmt.Sprintf("Your approval is recorded: %d of %d distinct approvers.", len(ap.Approvals), ap.Required))
	}
	return s.decide(ctx, ap)
}

// Summary is the PutApprovalResult summary of ap: who decided in Slack
// and their reasons, cut to MaxSummary bytes.
func Summary(ap Approval) string {
	var b strings.Builder
	if ap.Rejection != nil {
		fmt.Fprintf(&b, "Rejected in Slack by %s", ap.Rejection.By)
		if ap.Rejection.Reason != "" {
			fmt.Fprintf(&b, ": %s", ap.Rejection.Reason)
		}
	} else {
		b.WriteString("Approved in Slack by ")
		for i, v := range ap.Approvals {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.By)
			if v.Reason != "" {
				fmt.Fprintf(&b, " (%s)", v.Reason)
			}
		}
	}
	b.WriteString(" via tokken")
	out := b.String()
	if len(out) <= MaxSummary {
		return out
	}
	// Counted in bytes, stricter than characters, so the cut fits however
	// CodePipeline counts; cut on a character boundary.
	cut := MaxSummary - len("…")
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "…"
}

// decide sends the decision of an approval in StateDeciding to
// CodePipeline and records what came of it. Each call is counted in the
// store before it is made, so a run that dies after CodePipeline took the
// decision but before it was recorded leaves a trace its retry finds.
func (s *Service) decide(ctx context.Context, ap Approval) error {
	if ap.Sending == nil {
		ap.Sending = &Sending{Approved: ap.Rejection == nil, Summary: Summary(ap)}
	}
	err := s.verifyDecision(ctx, ap)
	var refused *refusal
	if err != nil && !errors.As(err, &refused) {
		return err
	}
	verified := ap.Sending.Summary
	now := s.d.Now()
	ap, err = s.approvals.Update(ctx, ap.ID, func(a *Approval) error {
		if a.State != StateDeciding {
			return bot.ErrNoChange
		}
		if a.Sending == nil {
			a.Sending = &Sending{Approved: a.Rejection == nil, Summary: Summary(*a)}
		}
		switch {
		case refused != nil:
			return refused
		case a.Sending.Summary != verified:
			return &refusal{"the votes changed while they were counted"}
		}
		a.Sending.Attempts++
		a.Sending.Last = now
		return nil
	})
	if errors.As(err, &refused) {
		s.d.Log.WarnContext(ctx, "release decision refused; PutApprovalResult not called", "approval", ap.ID, "why", refused.why)
		return s.finish(ctx, ap.ID, StateFailed, "release.refused", "tokken refused to send this decision: "+refused.why+"; decide in the CodePipeline console",
			nil, func(a Approval) bool { return a.State == StateDeciding })
	}
	if err != nil {
		return err
	}
	if ap.State != StateDeciding {
		return nil // finished meanwhile (another delivery of the job, or given up)
	}
	send := *ap.Sending
	err = s.d.CodePipeline.PutApprovalResult(ctx, Result{
		Pipeline: ap.Pipeline, Stage: ap.Stage, Action: ap.Action, Token: ap.Token, Approved: send.Approved, Summary: send.Summary,
	})
	summary := send.Summary
	var next State
	var detail map[string]string
	action := ""
	switch {
	case err == nil && send.Approved:
		next, action = StateApproved, "release.approved"
	case err == nil:
		next, action = StateRejected, "release.rejected"
	case errors.Is(err, ErrAlreadyCompleted):
		next, action, detail, err = s.alreadyCompleted(ctx, ap)
		if err != nil {
			return err
		}
	case errors.Is(err, ErrInvalidToken):
		next, action = StateInvalid, "release.token_invalid"
		if !ap.Expires.IsZero() && !s.d.Now().Before(ap.Expires) {
			next, action = StateExpired, "release.expired"
		}
	case bot.IsPermanent(err):
		next, action, summary = StateFailed, "release.failed", "CodePipeline refused the decision: "+err.Error()
	default:
		return fmt.Errorf("put approval result for %s: %w", ap.ID, err)
	}
	return s.finish(ctx, ap.ID, next, action, summary, detail, func(a Approval) bool { return a.State == StateDeciding })
}

// refusal says why the worker will not send a stored decision.
type refusal struct{ why string }

func (e *refusal) Error() string { return "refused: " + e.why }

// starter is the Slack user who started ap's execution with /release, as
// the approval recorded it or, when the approval arrived before the start
// was recorded, as the start record says now; "" when nobody did.
func (s *Service) starter(ctx context.Context, ap Approval) (string, error) {
	if ap.StartedBy != "" || ap.Execution == nil || ap.Execution.ID == "" {
		return ap.StartedBy, nil
	}
	started, err := bot.Table[Started]{Store: s.d.Store, Kind: KindStarted}.Get(ctx, StartKey(ap.Pipeline, ap.Execution.ID))
	switch {
	case errors.Is(err, bot.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("who started %s: %w", ap.ID, err)
	}
	return started.Value.By, nil
}

// verifyDecision re-derives, just before tokken sends it, that the stored
// decision of a is the one its votes make: the store (which the
// internet-facing ingress may write) is not taken at its word for an
// approval. An approval needs as many distinct approvers as the most of
// the stored number, pipelines.yaml's and the rules' @approvals now, each
// permitted by the rules now to approve this release and none of them the
// one who started it; the summary sent is the one the votes give. A
// refusal is a *refusal; other errors are failures to ask (retried).
func (s *Service) verifyDecision(ctx context.Context, a Approval) error {
	send := a.Sending
	switch {
	case send.Approved != (a.Rejection == nil):
		return &refusal{"the decision stored is not the one its votes make"}
	case send.Summary != Summary(a):
		return &refusal{"the summary stored is not the one its votes make"}
	case !send.Approved:
		return nil // a rejection never lets a release through
	}
	p, ok := s.d.Pipelines.Lookup(a.Pipeline)
	if !ok {
		return &refusal{fmt.Sprintf("pipelines.yaml no longer names pipeline %s", a.Pipeline)}
	}
	starter, err := s.starter(ctx, a)
	if err != nil {
		return err
	}
	need := max(a.Required, p.Approvals, 1)
	seen := map[string]bool{}
	var lapsed []string
	for _, v := range a.Approvals {
		switch {
		case v.By == "" || v.By == System || seen[v.By]:
			continue
		case v.By == starter || v.By == a.StartedBy:
			lapsed = append(lapsed, v.By+" started the release")
			continue
		}
		d, err := s.d.Authorizer.Authorize(ctx, bot.AuthzQuery{
			Principal: bot.Principal{ID: v.By}, Action: bot.ActionApproveRelease, Now: s.d.Now(),
			Context: map[string]string{CtxPipeline: a.Pipeline, CtxStage: a.Stage, CtxEnv: a.Env},
		})
		if err != nil {
			return fmt.Errorf("authorize approve_release on %s for %s: %w", a.Pipeline, v.By, err)
		}
		if !d.Allow {
			lapsed = append(lapsed, v.By+" may not approve it")
			continue
		}
		seen[v.By] = true
		need = max(need, d.Approvals)
	}
	if len(seen) < need {
		why := fmt.Sprintf("%d of the %d distinct approvers needed count", len(seen), need)
		if len(lapsed) > 0 {
			why += " (" + strings.Join(lapsed, "; ") + ")"
		}
		return &refusal{why}
	}
	return nil
}

// alreadyCompleted says whose decision an approval carries that
// CodePipeline reports already completed while tokken was sending its
// own. CodePipeline shows the decided action's summary (GetPipelineState):
// tokken's own summary and outcome there mean an earlier call of tokken
// made it (its run died before recording it), anything else that someone
// decided outside Slack. When CodePipeline no longer shows the approval (a
// newer execution reached the stage), an earlier attempt of tokken's is
// taken as the one that decided, and this very first attempt finding it
// decided as a decision made elsewhere; the audit line says it is
// unconfirmed. A failed read is retried (the job's error).
func (s *Service) alreadyCompleted(ctx context.Context, ap Approval) (State, string, map[string]string, error) {
	send := *ap.Sending
	ours := func(how string) (State, string, map[string]string, error) {
		if send.Approved {
			return StateApproved, "release.approved", map[string]string{"confirmed": how}, nil
		}
		return StateRejected, "release.rejected", map[string]string{"confirmed": how}, nil
	}
	execID := ""
	if ap.Execution != nil {
		execID = ap.Execution.ID
	}
	out, err := s.d.CodePipeline.Outcome(ctx, ap.Pipeline, ap.Stage, ap.Action, ap.Token, execID)
	if err != nil && !bot.IsPermanent(err) {
		return "", "", nil, fmt.Errorf("read the outcome of %s, already decided: %w", ap.ID, err)
	}
	if err != nil {
		s.d.Log.WarnContext(ctx, "cannot read whose decision the approval carries", "approval", ap.ID, "err", err)
	}
	wantStatus := "Failed"
	if send.Approved {
		wantStatus = "Succeeded"
	}
	switch {
	case out.Known && out.Summary == send.Summary && out.Status == wantStatus:
		s.d.Log.InfoContext(ctx, "an earlier attempt of tokken decided the approval", "approval", ap.ID, "attempts", send.Attempts)
		return ours("CodePipeline shows tokken's decision")
	case out.Known:
		return StateElsewhere, "release.decided_elsewhere", map[string]string{"by": out.By, "status": out.Status}, nil
	case send.Attempts > 1:
		s.d.Log.WarnContext(ctx, "approval already decided after an earlier attempt of tokken, which CodePipeline no longer shows; taken as tokken's", "approval", ap.ID, "attempts", send.Attempts)
		return ours("unconfirmed: an earlier attempt of tokken's, which CodePipeline no longer shows")
	}
	return StateElsewhere, "release.decided_elsewhere", nil, nil
}

// finish moves approval id to the final state next when cond holds, then
// audits it (with extra in the detail) and updates the card.
func (s *Service) finish(ctx context.Context, id string, next State, action, summary string, extra map[string]string, cond func(Approval) bool) error {
	changed := false
	ap, err := s.approvals.Update(ctx, id, func(a *Approval) error {
		if !cond(*a) {
			return bot.ErrNoChange
		}
		a.State, a.Updated, changed = next, s.d.Now(), true
		switch next {
		case StateApproved, StateRejected:
			a.Summary = summary
		case StateFailed:
			a.Failure = summary
		}
		return nil
	})
	if err != nil || !changed {
		return err
	}
	detail := map[string]string{"state": string(next)}
	for k, v := range extra {
		detail[k] = v
	}
	if ap.Summary != "" {
		detail["summary"] = ap.Summary
	}
	if ap.Failure != "" {
		detail["failure"] = ap.Failure
	}
	s.record(ctx, ap, action, System, "", detail)
	if err := s.d.Timers.Cancel(ctx, "release-expire/"+id); err != nil {
		s.d.Log.WarnContext(ctx, "expiry timer not cancelled; it will find the approval decided", "approval", id, "err", err)
	}
	if err := s.d.Notifier.Update(ctx, ap); err != nil {
		return fmt.Errorf("update approval card %s: %w", id, err)
	}
	return nil
}

// Expire marks the approval expired when its token's time has come (the
// timer job). An early delivery re-arms the timer.
func (s *Service) Expire(ctx context.Context, e ExpireRequest) error {
	if now := s.d.Now(); now.Before(e.At) {
		job, err := bot.NewJob(fmt.Sprintf("release-expire/%s/%d", e.ID, e.At.UnixNano()), KindExpire, e)
		if err != nil {
			return err
		}
		return s.d.Timers.Schedule(ctx, bot.Timer{ID: "release-expire/" + e.ID, At: e.At, Job: job})
	}
	err := s.expire(ctx, e.ID)
	if errors.Is(err, bot.ErrNotFound) || errors.As(err, new(*userError)) {
		return nil // gone, or expired now / decided before
	}
	return err
}

func (s *Service) expire(ctx context.Context, id string) error {
	// A decision being sent is left to its job: what CodePipeline answers
	// says whether it made it in time.
	err := s.finish(ctx, id, StateExpired, "release.expired", "", nil, func(a Approval) bool { return a.State == StatePending })
	if err != nil {
		return err
	}
	ap, err := s.Approval(ctx, id)
	if err != nil {
		return err
	}
	return userErrorf("This release approval is %s.", describeState(ap))
}

// describeState says in words where ap stands, for refusals.
func describeState(ap Approval) string {
	switch ap.State {
	case StateDeciding:
		return "being decided"
	case StateApproved:
		return "approved"
	case StateRejected:
		return "rejected"
	case StateExpired:
		return "expired: CodePipeline no longer accepts a decision"
	case StateElsewhere:
		return "decided outside Slack (in the console or by another tool)"
	case StateInvalid:
		return "no longer current in CodePipeline (the token is not valid)"
	case StateFailed:
		return "failed"
	}
	return string(ap.State)
}

// record appends an audit line; a failure is logged (the decision stands).
func (s *Service) record(ctx context.Context, ap Approval, action, actor, reason string, detail map[string]string) {
	d := map[string]string{"pipeline": ap.Pipeline, "stage": ap.Stage, "action": ap.Action}
	if ap.Env != "" {
		d["env"] = ap.Env
	}
	for k, v := range detail {
		d[k] = v
	}
	e := bot.AuditEvent{At: s.d.Now(), Actor: actor, Action: action, Subject: ap.ID, Reason: reason, Detail: d}
	if err := s.d.Auditor.Record(ctx, e); err != nil {
		s.d.Log.ErrorContext(ctx, "audit line not recorded", "approval", ap.ID, "audit_action", action, "err", err)
	}
}

// Start runs /release: it starts an execution of a pipeline pipelines.yaml
// names when the rules let the user (start_release), and records who
// started it, so that its approval never counts them. Refusals are
// replied to the user.
func (s *Service) Start(ctx context.Context, r StartRequest) error {
	err := s.start(ctx, r)
	var u *userError
	if errors.As(err, &u) {
		return s.d.Notifier.Reply(ctx, r.ReplyTo, u.msg)
	}
	return err
}

func (s *Service) start(ctx context.Context, r StartRequest) error {
	if r.ID == "" || r.By.ID == "" {
		return bot.Permanent(errors.New("release start: request id and user are required"))
	}
	p, ok := s.d.Pipelines.Lookup(r.Pipeline)
	if !ok {
		takes := make([]string, 0, len(s.d.Pipelines.Entries))
		for _, e := range s.d.Pipelines.Entries {
			takes = append(takes, e.Match)
		}
		return userErrorf("tokken takes no approvals for pipeline %s (pipelines.yaml does not name it), so it does not start it either. Pipelines it takes: %s.", r.Pipeline, strings.Join(takes, ", "))
	}
	d, err := s.d.Authorizer.Authorize(ctx, bot.AuthzQuery{
		Principal: r.By, Action: bot.ActionStartRelease, Now: s.d.Now(),
		Context: map[string]string{CtxPipeline: r.Pipeline, CtxEnv: p.Env},
	})
	if err != nil {
		return fmt.Errorf("authorize start_release on %s: %w", r.Pipeline, err)
	}
	if !d.Allow {
		return userErrorf("You may not start %s: %s", r.Pipeline, strings.Join(d.Reasons, "; "))
	}
	id, err := s.d.CodePipeline.Start(ctx, r.Pipeline, r.ID)
	if err != nil {
		if bot.IsPermanent(err) {
			return userErrorf("CodePipeline did not start %s: %v", r.Pipeline, err)
		}
		return err
	}
	now := s.d.Now()
	starts := bot.Table[Started]{Store: s.d.Store, Kind: KindStarted}
	if err := starts.Create(ctx, StartKey(r.Pipeline, id), Started{By: r.By.ID, At: now}, approvalTTL); err != nil && !errors.Is(err, bot.ErrConflict) {
		return err
	}
	e := bot.AuditEvent{At: now, Actor: r.By.ID, Action: "release.started", Subject: StartKey(r.Pipeline, id),
		Detail: map[string]string{"pipeline": r.Pipeline, "execution": id, "env": p.Env}}
	if err := s.d.Auditor.Record(ctx, e); err != nil {
		s.d.Log.ErrorContext(ctx, "audit line not recorded", "audit_action", e.Action, "err", err)
	}
	return s.d.Notifier.Reply(ctx, r.ReplyTo, fmt.Sprintf("Started %s (execution %s). Its approval comes to the approver channel, where someone else must approve it.", r.Pipeline, id))
}

// GiveUp ends approval id as failed when job j, which was sending its
// decision, was given up: the card then tells approvers to decide in the
// console instead of showing a decision being sent forever. An approval
// in any other state is left alone.
func (s *Service) GiveUp(ctx context.Context, id string, j bot.Job, cause string) error {
	reason := fmt.Sprintf("tokken gave up sending the decision (job %s %s: %s); decide in the CodePipeline console", j.Kind, j.ID, cause)
	err := s.finish(ctx, id, StateFailed, "release.failed", reason, nil, func(a Approval) bool { return a.State == StateDeciding })
	if errors.Is(err, bot.ErrNotFound) {
		return nil
	}
	return err
}
