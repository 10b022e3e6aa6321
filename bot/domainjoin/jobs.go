package domainjoin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Job kinds the service handles (Register).
const (
	// KindCommand runs a /domain command (payload CommandRequest).
	KindCommand = "domain.command"
	// KindApprove and KindDeny carry an Approve / Deny click on an
	// operation's message (payload DecisionRequest).
	KindApprove = "domain.approve"
	KindDeny    = "domain.deny"
	// KindCancel ends an unfinished operation (payload DecisionRequest).
	KindCancel = "domain.cancel"
	// KindCheck is the periodic progress check, fired by the timer
	// "domain-check/<op id>" (payload CheckRequest).
	KindCheck = "domain.check"
	// KindTagEvent carries an EventBridge tag-change event for an
	// instance (payload TagEvent).
	KindTagEvent = "domain.tag_event"
)

// CommandRequest is a /domain command to run.
type CommandRequest struct {
	// OpID is the id the operation gets if the command starts one; fixed
	// by whoever enqueues the job so retries resume the same operation.
	OpID      string        `json:"op_id"`
	Command   Command       `json:"command"`
	Principal bot.Principal `json:"principal"`
	ReplyTo   ReplyTo       `json:"reply_to"`
}

// DecisionRequest is an approver's (or the requester's) decision on an
// operation.
type DecisionRequest struct {
	OpID    string        `json:"op_id"`
	By      bot.Principal `json:"by"`
	Reason  string        `json:"reason,omitempty"`
	ReplyTo ReplyTo       `json:"reply_to"`
}

// CheckRequest names the operation a progress check is for, and the time
// the check was due (zero: at once).
type CheckRequest struct {
	OpID string    `json:"op_id"`
	At   time.Time `json:"at,omitzero"`
}

// TagEvent is the part of an EventBridge "Tag Change on Resource" event the
// service needs: the instance (from resources[0]) and its tags after the
// change (detail.tags).
type TagEvent struct {
	InstanceID string            `json:"instance_id"`
	Tags       map[string]string `json:"tags"`
	At         time.Time         `json:"at,omitzero"`
}

// NewCommandJob builds the job for a /domain command typed by p. The
// operation id is chosen here, once, so that redelivery of the job resumes
// the same operation instead of starting a second one.
func NewCommandJob(c Command, p bot.Principal, to ReplyTo) (bot.Job, error) {
	id := bot.NewID("d-")
	return bot.NewJob(id, KindCommand, CommandRequest{OpID: id, Command: c, Principal: p, ReplyTo: to})
}

// Register adds the service's job handlers to mux.
func (s *Service) Register(mux *bot.JobMux) {
	mux.Handle(KindCommand, handler(s.Command))
	mux.Handle(KindApprove, handler(s.Approve))
	mux.Handle(KindDeny, handler(s.Deny))
	mux.Handle(KindCancel, handler(s.Cancel))
	mux.Handle(KindCheck, handler(func(ctx context.Context, r CheckRequest) error { return s.Check(ctx, r.OpID, r.At) }))
	mux.Handle(KindTagEvent, handler(s.TagChanged))
	// A given-up job that carried an operation forward ends it: otherwise
	// the operation would wait for a job that never runs again. (A tag
	// event is not needed: the check timer reads the same tags.)
	for _, kind := range []string{KindCommand, KindApprove, KindDeny, KindCancel, KindCheck} {
		mux.HandleGiveUp(kind, func(ctx context.Context, j bot.Job, cause string) error {
			var ref struct {
				OpID string `json:"op_id"`
			}
			if err := j.Decode(&ref); err != nil {
				return err
			}
			if ref.OpID == "" {
				return bot.Permanent(fmt.Errorf("given-up %s job %s names no operation", j.Kind, j.ID))
			}
			return s.GiveUp(ctx, ref.OpID, j, cause)
		})
	}
}

func handler[T any](fn func(context.Context, T) error) bot.JobHandler {
	return func(ctx context.Context, j bot.Job) error {
		var v T
		if err := j.Decode(&v); err != nil {
			return err
		}
		return fn(ctx, v)
	}
}

// Status describes the instance ref names: its state, the domain tags and
// the operation in progress, if any. Unknown or ambiguous refs are
// *UserError.
func (s *Service) Status(ctx context.Context, ref string) (string, error) {
	cands, err := s.instances.Find(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("find instance %q: %w", ref, err)
	}
	inst, err := Resolve(ref, cands)
	if err != nil {
		return "", err
	}
	t := s.cfg.Tags
	var b strings.Builder
	platform := inst.Platform
	if platform == "" {
		platform = "not Windows"
	}
	fmt.Fprintf(&b, "%s: %s, %s.", inst.Label(), orUnknown(inst.State), platform)
	status := inst.Tags[t.Status]
	switch status {
	case "":
		fmt.Fprintf(&b, "\nNo %s tag: the instance has not reported a domain state.", t.Status)
	default:
		fmt.Fprintf(&b, "\n%s=%s", t.Status, Clean(status, 64))
		if ack := inst.Tags[t.Ack]; ack != "" {
			fmt.Fprintf(&b, " (for request %s)", Clean(ack, 64))
		}
		if p := inst.Tags[t.Progress]; p != "" {
			fmt.Fprintf(&b, ", %s=%s", t.Progress, Clean(p, 64))
		}
		if status == t.Failed {
			fmt.Fprintf(&b, ", reason: %s", Clean(inst.Tags[t.Reason], 256))
		}
	}
	if c := inst.Tags[t.Control]; c != "" {
		fmt.Fprintf(&b, "\nRequested state: %s=%s.", t.Control, Clean(c, 64))
	}
	lock, err := s.locks.Get(ctx, inst.ID)
	switch {
	case err == nil:
		state := "in progress"
		if op, err := s.Operation(ctx, lock.Value.OpID); err == nil {
			state = strings.ReplaceAll(string(op.State), "_", " ")
		}
		fmt.Fprintf(&b, "\nIn progress: %s (%s, requested by %s, %s).", lock.Value.OpID, lock.Value.Action, lock.Value.Requester, state)
	case errors.Is(err, bot.ErrNotFound):
	default:
		return "", err
	}
	return b.String(), nil
}
