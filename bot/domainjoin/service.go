package domainjoin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Store kinds used by the service.
const (
	// KindOperation holds Operations keyed by id.
	KindOperation = "domain_op"
	// KindLock holds one Lock per instance with an operation in progress,
	// keyed by instance id; created with a conditional write so two
	// operations on one instance cannot both start.
	KindLock = "domain_lock"
)

// System is the audit actor for transitions tokken makes on its own.
const System = "tokken"

// Defaults for Config.
const (
	DefaultTimeout         = 20 * time.Minute
	DefaultCheckEvery      = 30 * time.Second
	DefaultApprovalTimeout = 4 * time.Hour
)

// Config tunes a Service. Zero durations take the defaults.
type Config struct {
	// Tags is the tag vocabulary shared with the instance-side script
	// (windows.DefaultScheme() unless the fleet's script was rendered with
	// other keys). Required.
	Tags TagScheme
	// Timeout bounds an operation from tagging to outcome (default 20m).
	Timeout time.Duration
	// CheckEvery is the polling interval of the progress check (default
	// 30s); tag-change events make it react sooner on AWS.
	CheckEvery time.Duration
	// ApprovalTimeout cancels a request nobody decided on (default 4h).
	ApprovalTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives operational logs (default slog.Default()).
	Log *slog.Logger
}

// Deps are the ports a Service needs. All are required.
type Deps struct {
	Store      bot.Store
	Instances  Instances
	Notifier   Notifier
	Authorizer bot.Authorizer
	Timers     bot.Timers
	Auditor    bot.Auditor
}

// Lock marks an instance as having a domain operation in progress.
type Lock struct {
	OpID      string    `json:"op_id"`
	Action    Action    `json:"action"`
	Requester string    `json:"requester"`
	Created   time.Time `json:"created"`
}

// Service runs domain operations: it validates and authorizes requests,
// takes the per-instance lock, posts the tracking message, asks for approval
// when policy requires it, tags and reboots the instance, and follows its
// tags to the outcome. Every entry point is idempotent (jobs are delivered at
// least once) and every state change is a conditional write.
type Service struct {
	cfg       Config
	store     bot.Store
	ops       bot.Table[Operation]
	locks     bot.Table[Lock]
	instances Instances
	notify    Notifier
	authz     bot.Authorizer
	timers    bot.Timers
	audit     bot.Auditor
}

// NewService checks cfg and deps and returns a Service.
func NewService(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Tags.Validate(); err != nil {
		return nil, fmt.Errorf("domainjoin: %w", err)
	}
	if d.Store == nil || d.Instances == nil || d.Notifier == nil || d.Authorizer == nil || d.Timers == nil || d.Auditor == nil {
		return nil, errors.New("domainjoin: every dependency (Store, Instances, Notifier, Authorizer, Timers, Auditor) is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = DefaultApprovalTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{
		cfg:       cfg,
		store:     d.Store,
		ops:       bot.Table[Operation]{Store: d.Store, Kind: KindOperation},
		locks:     bot.Table[Lock]{Store: d.Store, Kind: KindLock},
		instances: d.Instances,
		notify:    d.Notifier,
		authz:     d.Authorizer,
		timers:    d.Timers,
		audit:     d.Auditor,
	}, nil
}

// Operation returns the stored operation id.
func (s *Service) Operation(ctx context.Context, id string) (Operation, error) {
	v, err := s.ops.Get(ctx, id)
	if err != nil {
		return Operation{}, err
	}
	return v.Value, nil
}

// Command runs a parsed /domain command for req.Principal. Refusals
// (unknown instance, not allowed, already joined, busy) are replied to the
// person and are not errors; an error means the job should be retried.
func (s *Service) Command(ctx context.Context, req CommandRequest) error {
	switch req.Command.Verb {
	case VerbHelp:
		return s.reply(ctx, req.ReplyTo, Usage)
	case VerbStatus:
		text, err := s.Status(ctx, req.Command.Instance)
		if err != nil {
			return s.replyErr(ctx, req.ReplyTo, err)
		}
		return s.reply(ctx, req.ReplyTo, text)
	case VerbJoin, VerbLeave:
		return s.replyErr(ctx, req.ReplyTo, s.start(ctx, req))
	}
	return s.reply(ctx, req.ReplyTo, "Unknown subcommand.\n"+Usage)
}

// start creates the operation and, unless approval is needed, carries it
// out. A retry of the same request (same OpID) resumes where it stopped.
func (s *Service) start(ctx context.Context, req CommandRequest) error {
	if req.OpID == "" || req.Principal.ID == "" {
		return bot.Permanent(errors.New("domain command: op id and principal are required"))
	}
	if cur, err := s.ops.Get(ctx, req.OpID); err == nil {
		return s.resume(ctx, cur.Value)
	} else if !errors.Is(err, bot.ErrNotFound) {
		return err
	}

	action := req.Command.Action()
	ref := req.Command.Instance
	cands, err := s.instances.Find(ctx, ref)
	if err != nil {
		return fmt.Errorf("find instance %q: %w", ref, err)
	}
	inst, err := Resolve(ref, cands)
	if err != nil {
		return err
	}
	if err := s.cfg.Tags.ValidateRequest(inst, action, req.Command.Force); err != nil {
		return err
	}
	needsApproval, err := s.authorizeRequest(ctx, req.Principal, action, inst)
	if err != nil {
		return err
	}

	now := s.cfg.Now()
	op := Operation{
		ID: req.OpID, InstanceID: inst.ID, InstanceName: inst.Name, InstanceTags: inst.Tags,
		Action: action, Force: req.Command.Force, Requester: req.Principal.ID,
		NeedsApproval: needsApproval, Started: now, Updated: now,
	}
	if needsApproval {
		op.State = StatePendingApproval
		op.ApprovalDeadline = now.Add(s.cfg.ApprovalTimeout)
	} else {
		op.State = StateTagging
		op.Deadline = now.Add(s.cfg.Timeout)
	}
	if err := s.lock(ctx, inst, op); err != nil {
		return err
	}
	if err := s.ops.Create(ctx, op.ID, op, 0); err != nil {
		if !errors.Is(err, bot.ErrConflict) {
			return err
		}
		cur, gerr := s.ops.Get(ctx, op.ID)
		if gerr != nil {
			return gerr
		}
		return s.resume(ctx, cur.Value)
	}
	s.record(ctx, op, "domain.requested", op.Requester, "", map[string]string{"needs_approval": fmt.Sprint(needsApproval)})
	if needsApproval {
		if err := s.scheduleCheck(ctx, op.ID, op.ApprovalDeadline); err != nil {
			return err
		}
	}
	if err := s.resume(ctx, op); err != nil {
		return err
	}
	if needsApproval {
		return s.reply(ctx, req.ReplyTo, fmt.Sprintf("Request %s to %s %s needs approval; it has been posted for approvers.", op.ID, op.Action, op.label()))
	}
	return s.reply(ctx, req.ReplyTo, fmt.Sprintf("Started %s: %s %s. Progress follows in the operation's thread.", op.ID, op.Action, op.label()))
}

// resume continues op after a retry or an approval: post its message if
// that has not happened, then tag and reboot if it is approved.
func (s *Service) resume(ctx context.Context, op Operation) error {
	if op.Message.IsZero() && !op.State.Terminal() {
		ref, err := s.notify.Post(ctx, op)
		if err != nil {
			return fmt.Errorf("post operation %s: %w", op.ID, err)
		}
		op, err = s.ops.Update(ctx, op.ID, func(o *Operation) error {
			if !o.Message.IsZero() {
				return bot.ErrNoChange
			}
			o.Message = ref
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.begin(ctx, op)
}

// begin drives an approved operation through tagging and rebooting to
// waiting. Each step is committed before the next; a retry repeats at most
// the step that did not commit (setting tags is idempotent; a repeated
// reboot request only comes from a retry within seconds of the first).
func (s *Service) begin(ctx context.Context, op Operation) error {
	for {
		var (
			next State
			err  error
			line string
		)
		switch op.State {
		case StateTagging:
			tags := map[string]string{s.cfg.Tags.Control: s.cfg.Tags.controlValue(op.Action), s.cfg.Tags.Request: op.ID}
			next, line = StateRebooting, fmt.Sprintf("Tagged %s=%s, %s=%s.", s.cfg.Tags.Control, tags[s.cfg.Tags.Control], s.cfg.Tags.Request, op.ID)
			// The check timer is armed before the first call to AWS: it
			// enforces the deadline, so an operation whose tagging keeps
			// failing, or whose job dies between steps, still times out.
			if err = s.scheduleCheck(ctx, op.ID, s.nextCheck(op)); err == nil {
				err = s.instances.SetTags(ctx, op.InstanceID, tags)
			}
		case StateRebooting:
			err = s.instances.Reboot(ctx, op.InstanceID)
			next, line = StateWaiting, "Reboot requested; waiting for the instance to report."
		default:
			return nil
		}
		if err != nil {
			if bot.IsPermanent(err) {
				reason := fmt.Sprintf("%s failed: %v", op.State, err)
				_, ferr := s.end(ctx, op.ID, StateFailed, System, reason, func(o Operation) bool { return o.State == op.State })
				return ferr
			}
			return fmt.Errorf("%s %s: %w", op.State, op.ID, err)
		}
		from := op.State
		op, err = s.move(ctx, op.ID, func(o *Operation) error {
			if o.State != from {
				return bot.ErrNoChange
			}
			o.State = next
			return nil
		})
		if err != nil {
			return err
		}
		if op.State != next {
			continue // someone else moved it; act on what is stored
		}
		s.record(ctx, op, "domain."+string(next), System, "", nil)
		s.show(ctx, op, []string{line})
	}
}

// Approve records by's approval of operation id and starts it. Refusals
// (own request, not allowed, already decided) are replied to by.
func (s *Service) Approve(ctx context.Context, req DecisionRequest) error {
	return s.replyErr(ctx, req.ReplyTo, s.approve(ctx, req))
}

func (s *Service) approve(ctx context.Context, req DecisionRequest) error {
	op, err := s.decidable(ctx, req, bot.ActionApprove)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	op, err = s.move(ctx, op.ID, func(o *Operation) error {
		if o.State != StatePendingApproval {
			return &decidedError{op: *o}
		}
		o.State = StateTagging
		o.DecidedBy = req.By.ID
		o.Deadline = now.Add(s.cfg.Timeout)
		return nil
	})
	var de *decidedError
	if errors.As(err, &de) {
		if de.op.DecidedBy == req.By.ID && (de.op.State == StateTagging || de.op.State == StateRebooting) {
			return s.begin(ctx, de.op) // a retry of this very approval
		}
		return de.userError()
	}
	if err != nil {
		return err
	}
	s.record(ctx, op, "domain.approved", req.By.ID, "", nil)
	s.show(ctx, op, []string{"Approved by " + req.By.ID + "."})
	s.tell(ctx, op, fmt.Sprintf("Your request %s to %s %s was approved by %s.", op.ID, op.Action, op.label(), req.By.ID))
	return s.begin(ctx, op)
}

// Deny records by's refusal of operation id with a reason and releases the
// instance.
func (s *Service) Deny(ctx context.Context, req DecisionRequest) error {
	return s.replyErr(ctx, req.ReplyTo, s.deny(ctx, req))
}

func (s *Service) deny(ctx context.Context, req DecisionRequest) error {
	if strings.TrimSpace(req.Reason) == "" {
		return userErrorf("Say why you deny the request: the requester sees the reason.")
	}
	op, err := s.decidable(ctx, req, bot.ActionApprove)
	if err != nil {
		return err
	}
	_, err = s.end(ctx, op.ID, StateDenied, req.By.ID, Clean(req.Reason, 500), func(o Operation) bool {
		return o.State == StatePendingApproval
	})
	return err
}

// Cancel ends an operation that has not finished, on request of its
// requester or of someone policy allows to approve it. Tags already set
// stay: the instance may still complete the change.
func (s *Service) Cancel(ctx context.Context, req DecisionRequest) error {
	return s.replyErr(ctx, req.ReplyTo, s.cancel(ctx, req))
}

func (s *Service) cancel(ctx context.Context, req DecisionRequest) error {
	op, err := s.Operation(ctx, req.OpID)
	if err != nil {
		return s.unknownOp(req.OpID, err)
	}
	if op.Requester != req.By.ID {
		if _, err := s.decidable(ctx, req, bot.ActionApprove); err != nil {
			return err
		}
	}
	reason := "cancelled by " + req.By.ID
	if r := Clean(req.Reason, 500); r != "" {
		reason += ": " + r
	}
	_, err = s.end(ctx, op.ID, StateCancelled, req.By.ID, reason, func(o Operation) bool { return !o.State.Terminal() })
	return err
}

// decidable loads the operation and checks that by may decide on it: not
// the requester, and allowed by policy to approve this domain action.
func (s *Service) decidable(ctx context.Context, req DecisionRequest, action bot.Action) (Operation, error) {
	op, err := s.Operation(ctx, req.OpID)
	if err != nil {
		return Operation{}, s.unknownOp(req.OpID, err)
	}
	if op.Requester == req.By.ID {
		return Operation{}, userErrorf("You cannot decide on your own request %s: another approver must.", op.ID)
	}
	d, err := s.authz.Authorize(ctx, bot.AuthzQuery{
		Principal: req.By,
		Action:    action,
		Targets:   []bot.Target{{ID: op.InstanceID, Tags: op.InstanceTags}},
		Now:       s.cfg.Now(),
		Context:   map[string]string{"requester": op.Requester},
	})
	if err != nil {
		return Operation{}, fmt.Errorf("authorize %s on %s: %w", action, op.ID, err)
	}
	if !d.Allow {
		return Operation{}, userErrorf("You may not decide on %s: %s", op.ID, reasons(d))
	}
	return op, nil
}

func (s *Service) unknownOp(id string, err error) error {
	if errors.Is(err, bot.ErrNotFound) {
		return userErrorf("There is no domain operation %s.", id)
	}
	return err
}

// Check is the periodic progress check of operation id (the timer job):
// it reads the instance's tags, applies them, ends the operation on an
// outcome or the deadline, and schedules the next check otherwise. A check
// delivered before its time (at, when set) looks at nothing: it re-arms its
// timer for the time that remains, so an early delivery never turns into a
// loop of checks.
func (s *Service) Check(ctx context.Context, id string, at time.Time) error {
	if !at.IsZero() && s.cfg.Now().Before(at) {
		return s.scheduleCheck(ctx, id, at)
	}
	op, err := s.Operation(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		s.cfg.Log.WarnContext(ctx, "domain check for unknown operation", "op", id)
		return nil
	}
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	switch {
	case op.State.Terminal():
		return nil
	case op.State == StatePendingApproval:
		if now.Before(op.ApprovalDeadline) {
			return s.scheduleCheck(ctx, op.ID, op.ApprovalDeadline)
		}
		reason := fmt.Sprintf("not approved within %s", s.cfg.ApprovalTimeout)
		_, err := s.end(ctx, op.ID, StateCancelled, System, reason, func(o Operation) bool { return o.State == StatePendingApproval })
		return err
	}
	cands, err := s.instances.Find(ctx, op.InstanceID)
	if err != nil {
		return fmt.Errorf("check %s: find %s: %w", op.ID, op.InstanceID, err)
	}
	inst, found := Instance{}, false
	for _, c := range cands {
		if c.ID == op.InstanceID {
			inst, found = c, true
		}
	}
	if !found || inst.Gone() {
		reason := "the instance no longer exists"
		if found {
			reason = "the instance is " + inst.State
		}
		_, err := s.end(ctx, op.ID, StateFailed, System, reason, func(o Operation) bool { return !o.State.Terminal() })
		return err
	}
	op, err = s.observe(ctx, op.ID, inst.Tags)
	if err != nil {
		return err
	}
	if op.State.Terminal() {
		return nil
	}
	return s.scheduleCheck(ctx, op.ID, s.nextCheck(op))
}

// GiveUp ends operation id as failed because job j, which was carrying it
// forward, was given up (dead-lettered): the requester is told, the
// instance released, and the operators alerted with the operation, the
// instance and the job. An operation that has already ended is left alone.
func (s *Service) GiveUp(ctx context.Context, id string, j bot.Job, cause string) error {
	op, err := s.Operation(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		return bot.Permanent(fmt.Errorf("given-up %s job %s: no operation %s", j.Kind, j.ID, id))
	}
	if err != nil {
		return err
	}
	if op.State.Terminal() {
		return nil
	}
	step := strings.ReplaceAll(string(op.State), "_", " ")
	reason := fmt.Sprintf("tokken gave up while %s (job %s %s: %s)", step, j.Kind, j.ID, cause)
	changed, err := s.end(ctx, id, StateFailed, System, reason, func(o Operation) bool { return !o.State.Terminal() })
	if err != nil {
		if _, ok := AsUserError(err); ok {
			return nil // ended meanwhile by someone else
		}
		return err
	}
	if changed {
		op, _ = s.Operation(ctx, id)
		summary := fmt.Sprintf("Domain %s of %s failed: %s", op.Action, op.label(), reason)
		if err := s.notify.Alert(ctx, op, summary); err != nil {
			return fmt.Errorf("alert on given-up operation %s: %w", id, err)
		}
	}
	return nil
}

// TagChanged applies a tag-change event (EventBridge "Tag Change on
// Resource") to the operation in progress on the instance, if any.
func (s *Service) TagChanged(ctx context.Context, ev TagEvent) error {
	lock, err := s.locks.Get(ctx, ev.InstanceID)
	if errors.Is(err, bot.ErrNotFound) {
		return nil // no operation on this instance: not ours
	}
	if err != nil {
		return err
	}
	_, err = s.observe(ctx, lock.Value.OpID, ev.Tags)
	if errors.Is(err, bot.ErrNotFound) {
		return nil
	}
	return err
}

// observe applies tags to the stored operation with a conditional write and
// shows what changed. Concurrent observers (timer and event) both compute
// from the stored state; only the one whose write lands posts lines.
func (s *Service) observe(ctx context.Context, id string, tags map[string]string) (Operation, error) {
	var lines []string
	op, err := s.ops.Update(ctx, id, func(o *Operation) error {
		next, l := s.cfg.Tags.Observe(*o, tags, s.cfg.Now())
		lines = l
		if len(l) == 0 {
			return bot.ErrNoChange
		}
		*o = next
		return nil
	})
	if err != nil {
		return Operation{}, err
	}
	if len(lines) == 0 {
		return op, nil
	}
	s.show(ctx, op, lines)
	if op.State.Terminal() {
		s.finished(ctx, op, System)
	}
	return op, nil
}

// end moves an operation to a terminal state if allowed(op) holds, then
// releases the instance and tells everyone. It returns the stored operation
// and whether this call made the change.
func (s *Service) end(ctx context.Context, id string, to State, by, reason string, allowed func(Operation) bool) (bool, error) {
	op, err := s.move(ctx, id, func(o *Operation) error {
		if !allowed(*o) {
			return &decidedError{op: *o}
		}
		o.State = to
		o.Reason = reason
		if to == StateDenied || to == StateCancelled {
			o.DecidedBy = by
			o.DecisionReason = reason
		}
		return nil
	})
	var de *decidedError
	if errors.As(err, &de) {
		if de.op.State == to {
			return false, nil // a retry of this very change
		}
		return false, de.userError()
	}
	if err != nil {
		return false, err
	}
	s.show(ctx, op, []string{endLine(op)})
	s.finished(ctx, op, by)
	return true, nil
}

// finished does what follows a terminal state: release the lock, stop the
// timer, audit, alert on timeout, tell the requester.
func (s *Service) finished(ctx context.Context, op Operation, by string) {
	log := s.cfg.Log.With("op", op.ID, "instance", op.InstanceID, "state", string(op.State))
	if err := s.unlock(ctx, op); err != nil {
		log.ErrorContext(ctx, "release instance lock", "err", err)
	}
	if err := s.timers.Cancel(ctx, checkTimerID(op.ID)); err != nil {
		log.WarnContext(ctx, "cancel check timer", "err", err)
	}
	s.record(ctx, op, "domain."+string(op.State), by, op.Reason, nil)
	if op.State == StateTimedOut {
		summary := fmt.Sprintf("Domain %s of %s timed out: %s", op.Action, op.label(), op.Reason)
		if err := s.notify.Alert(ctx, op, summary); err != nil {
			log.ErrorContext(ctx, "raise timeout alert", "err", err)
		}
	}
	s.tell(ctx, op, endLine(op))
}

func endLine(op Operation) string {
	switch op.State {
	case StateJoined, StateUnjoined:
		return fmt.Sprintf("%s %s: %s is %s.", op.ID, op.Action, op.label(), op.State)
	case StateDenied:
		return fmt.Sprintf("%s was denied by %s: %s", op.ID, op.DecidedBy, op.DecisionReason)
	case StateCancelled:
		return fmt.Sprintf("%s was cancelled (%s). Tags already set on the instance stay as they are.", op.ID, op.Reason)
	case StateTimedOut:
		return fmt.Sprintf("%s timed out: %s. Check the instance's transcript (see docs/windows.md).", op.ID, op.Reason)
	default:
		return fmt.Sprintf("%s %s of %s failed: %s", op.ID, op.Action, op.label(), op.Reason)
	}
}

// move applies fn to the stored operation with a conditional write and
// stamps Updated.
func (s *Service) move(ctx context.Context, id string, fn func(*Operation) error) (Operation, error) {
	now := s.cfg.Now()
	return s.ops.Update(ctx, id, func(o *Operation) error {
		if err := fn(o); err != nil {
			return err
		}
		o.Updated = now
		return nil
	})
}

// show updates op's message and posts lines to its thread. Failures are
// logged, not returned: the state change has committed, and the message is
// rendered from the stored operation (Seen holds the whole history), so
// the next update repairs it.
func (s *Service) show(ctx context.Context, op Operation, lines []string) {
	if op.Message.IsZero() {
		return
	}
	log := s.cfg.Log.With("op", op.ID)
	if err := s.notify.Update(ctx, op); err != nil {
		log.WarnContext(ctx, "update operation message", "err", err)
	}
	if len(lines) > 0 {
		if err := s.notify.Thread(ctx, op, lines); err != nil {
			log.WarnContext(ctx, "post thread lines", "err", err)
		}
	}
}

// tell sends the requester a private line; failures are logged.
func (s *Service) tell(ctx context.Context, op Operation, text string) {
	if err := s.notify.Reply(ctx, ReplyTo{User: op.Requester}, text); err != nil {
		s.cfg.Log.WarnContext(ctx, "tell requester", "op", op.ID, "err", err)
	}
}

// record appends an audit event. A failure is logged at error level with
// the whole event (the JSON log is itself an audit sink), not returned:
// the transition it describes has already committed.
func (s *Service) record(ctx context.Context, op Operation, action, actor, reason string, extra map[string]string) {
	detail := map[string]string{"instance": op.InstanceID, "operation": string(op.Action), "state": string(op.State)}
	if op.InstanceName != "" {
		detail["instance_name"] = op.InstanceName
	}
	for k, v := range extra {
		detail[k] = v
	}
	e := bot.AuditEvent{At: s.cfg.Now(), Actor: actor, Action: action, Subject: op.ID, Reason: reason, Detail: detail}
	if err := s.audit.Record(ctx, e); err != nil {
		s.cfg.Log.ErrorContext(ctx, "audit event not stored", "err", err, "audit_action", e.Action,
			"subject", e.Subject, "actor", e.Actor, "reason", e.Reason, "detail", e.Detail)
	}
}

func (s *Service) reply(ctx context.Context, to ReplyTo, text string) error {
	if err := s.notify.Reply(ctx, to, text); err != nil {
		return fmt.Errorf("reply to %s: %w", to.User, err)
	}
	return nil
}

// replyErr replies with a *UserError's text and returns nil; other errors
// are returned for the job to be retried.
func (s *Service) replyErr(ctx context.Context, to ReplyTo, err error) error {
	if u, ok := AsUserError(err); ok {
		return s.reply(ctx, to, u.Msg)
	}
	return err
}

// authorizeRequest asks policy whether p may run action on inst, and
// whether it needs approval first: an allowed decision with Approvals > 0
// (e.g. a rule annotated @approvals("1") for Env=prod instances). One
// approval by someone other than the requester is then required.
func (s *Service) authorizeRequest(ctx context.Context, p bot.Principal, action Action, inst Instance) (needsApproval bool, err error) {
	q := bot.AuthzQuery{
		Principal: p,
		Action:    botAction(action),
		Targets:   []bot.Target{{ID: inst.ID, Tags: inst.Tags}},
		Now:       s.cfg.Now(),
	}
	d, err := s.authz.Authorize(ctx, q)
	if err != nil {
		return false, fmt.Errorf("authorize %s on %s: %w", q.Action, inst.ID, err)
	}
	if !d.Allow {
		return false, userErrorf("You may not %s %s to the domain: %s", action, inst.Label(), reasons(d))
	}
	return d.Approvals > 0, nil
}

func botAction(a Action) bot.Action {
	if a == ActionLeave {
		return bot.ActionDomainLeave
	}
	return bot.ActionDomainJoin
}

func reasons(d bot.Decision) string {
	if len(d.Reasons) == 0 {
		return "no policy rule permits it."
	}
	return strings.Join(d.Reasons, "; ")
}

// lock takes the per-instance lock for op, or says who holds it.
func (s *Service) lock(ctx context.Context, inst Instance, op Operation) error {
	ttl := s.cfg.ApprovalTimeout + s.cfg.Timeout + time.Hour // housekeeping only
	l := Lock{OpID: op.ID, Action: op.Action, Requester: op.Requester, Created: op.Started}
	for range 3 {
		err := s.locks.Create(ctx, inst.ID, l, ttl)
		if !errors.Is(err, bot.ErrConflict) {
			return err
		}
		cur, err := s.locks.Get(ctx, inst.ID)
		if errors.Is(err, bot.ErrNotFound) {
			continue // released between our write and our read
		}
		if err != nil {
			return err
		}
		if cur.Value.OpID == op.ID {
			return nil
		}
		state := "in progress"
		if other, err := s.Operation(ctx, cur.Value.OpID); err == nil {
			state = strings.ReplaceAll(string(other.State), "_", " ")
		}
		return userErrorf("Another domain operation on %s is in progress: %s (%s, requested by %s, %s). Wait for it to finish.",
			inst.Label(), cur.Value.OpID, cur.Value.Action, cur.Value.Requester, state)
	}
	return fmt.Errorf("lock %s: %w", inst.ID, bot.ErrConflict)
}

// unlock releases the instance if op still holds it.
func (s *Service) unlock(ctx context.Context, op Operation) error {
	cur, err := s.locks.Get(ctx, op.InstanceID)
	if errors.Is(err, bot.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Value.OpID != op.ID {
		return nil
	}
	if err := s.store.Delete(ctx, KindLock, op.InstanceID, cur.Version); err != nil {
		return fmt.Errorf("delete lock %s: %w", op.InstanceID, err)
	}
	return nil
}

func checkTimerID(opID string) string { return "domain-check/" + opID }

// nextCheck is when to look at op again: after CheckEvery, but not after
// its deadline.
func (s *Service) nextCheck(op Operation) time.Time {
	at := s.cfg.Now().Add(s.cfg.CheckEvery)
	if !op.Deadline.IsZero() && op.Deadline.Before(at) {
		return op.Deadline
	}
	return at
}

func (s *Service) scheduleCheck(ctx context.Context, opID string, at time.Time) error {
	id := checkTimerID(opID)
	// The job id names this one check (nanoseconds, not seconds): a queue
	// ignores an id that is still pending, so a check that schedules the
	// next one while it is still running must not share its id, or the next
	// check is dropped and the operation is never followed again.
	job, err := bot.NewJob(fmt.Sprintf("%s/%d", id, at.UnixNano()), KindCheck, CheckRequest{OpID: opID, At: at})
	if err != nil {
		return err
	}
	if err := s.timers.Schedule(ctx, bot.Timer{ID: id, At: at, Job: job}); err != nil {
		return fmt.Errorf("schedule %s: %w", id, err)
	}
	return nil
}

// decidedError reports that an operation is no longer in the state a
// decision needs.
type decidedError struct{ op Operation }

func (e *decidedError) Error() string { return fmt.Sprintf("operation %s is %s", e.op.ID, e.op.State) }

func (e *decidedError) userError() error {
	who := ""
	if e.op.DecidedBy != "" {
		who = " by " + e.op.DecidedBy
	}
	return userErrorf("%s is already %s%s.", e.op.ID, strings.ReplaceAll(string(e.op.State), "_", " "), who)
}
