// Package domainjoin is the lifecycle of a Windows domain operation: a
// request to have an EC2 instance join or leave the Active Directory domain,
// carried out by tagging the instance and rebooting it, then followed through
// the tags the instance's bootstrap script writes back (infra/windows) until
// it is joined, unjoined, failed or timed out.
//
// The package is pure: it imports no SDK. Service drives the lifecycle
// through the ports it declares (Instances, Notifier) and the ones in package
// bot (Authorizer, Timers, Auditor, Store). Its decisions (Validate, Resolve,
// Observe, ParseCommand) are plain functions, tested by tables.
package domainjoin

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Action is what an operation asks of the instance.
type Action string

// Actions.
const (
	ActionJoin  Action = "join"
	ActionLeave Action = "leave"
)

// State is where an operation is in its life.
//
//	pending_approval -> tagging -> rebooting -> waiting -> joined | unjoined | failed | timed_out
//	pending_approval -> denied | cancelled
//	tagging | rebooting | waiting -> failed | timed_out | cancelled
type State string

// States.
const (
	StatePendingApproval State = "pending_approval"
	StateTagging         State = "tagging"   // setting the control tag
	StateRebooting       State = "rebooting" // asking EC2 to reboot
	StateWaiting         State = "waiting"   // watching the instance's tags
	StateJoined          State = "joined"
	StateUnjoined        State = "unjoined"
	StateFailed          State = "failed"
	StateTimedOut        State = "timed_out"
	StateDenied          State = "denied"
	StateCancelled       State = "cancelled"
)

// Terminal reports whether no further transition can happen.
func (s State) Terminal() bool {
	switch s {
	case StateJoined, StateUnjoined, StateFailed, StateTimedOut, StateDenied, StateCancelled:
		return true
	}
	return false
}

// Progress is one tag value seen on the instance during an operation.
type Progress struct {
	At    time.Time `json:"at"`
	Key   string    `json:"key"`
	Value string    `json:"value"`
}

// MessageRef locates the Slack message that tracks an operation in place;
// progress goes to the thread under it.
type MessageRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// IsZero reports whether no message has been posted yet.
func (m MessageRef) IsZero() bool { return m.Channel == "" && m.TS == "" }

// Operation is one domain join or leave, from request to outcome. It is
// stored as a versioned record; every change is a conditional write.
type Operation struct {
	ID           string `json:"id"` // "d-" + bot.NewID
	InstanceID   string `json:"instance_id"`
	InstanceName string `json:"instance_name,omitempty"`
	// InstanceTags are the instance's tags at request time: what policy
	// saw, and sees again when an approver decides.
	InstanceTags map[string]string `json:"instance_tags,omitempty"`
	Action       Action            `json:"action"`
	Force        bool              `json:"force,omitempty"`
	Requester    string            `json:"requester"` // Slack user id
	State        State             `json:"state"`
	// NeedsApproval is what policy said at request time.
	NeedsApproval bool `json:"needs_approval,omitempty"`
	// DecidedBy is the approver (or denier, or canceller); DecisionReason
	// is the reason they gave, if any.
	DecidedBy      string `json:"decided_by,omitempty"`
	DecisionReason string `json:"decision_reason,omitempty"`
	// Started is when the request was accepted, Updated the last change.
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// ApprovalDeadline ends a pending approval (cancelled when passed).
	ApprovalDeadline time.Time `json:"approval_deadline,omitzero"`
	// Deadline is when a started operation times out; set on tagging.
	Deadline time.Time `json:"deadline,omitzero"`
	// Seen is the progress observed on the instance, oldest first.
	Seen []Progress `json:"seen,omitempty"`
	// Reason says why the operation failed, timed out or was cancelled.
	Reason  string     `json:"reason,omitempty"`
	Message MessageRef `json:"message,omitzero"`
}

// last returns the last value seen for key, or "".
func (op Operation) last(key string) string {
	for i := len(op.Seen) - 1; i >= 0; i-- {
		if op.Seen[i].Key == key {
			return op.Seen[i].Value
		}
	}
	return ""
}

// Instance is what tokken knows about an EC2 instance: enough to resolve a
// name, validate a request and follow its tags. Adapters fill it from
// DescribeInstances (InstanceId, State.Name, Platform, Tags).
type Instance struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"` // the Name tag
	// State is the EC2 state name: pending, running, stopping, stopped,
	// shutting-down, terminated.
	State string `json:"state"`
	// Platform is "windows" for Windows instances, empty otherwise (the
	// DescribeInstances Platform field).
	Platform string            `json:"platform,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// Label names the instance for people: "web-01 (i-0abc...)" or the id.
func (in Instance) Label() string {
	if in.Name == "" {
		return in.ID
	}
	return fmt.Sprintf("%s (%s)", in.Name, in.ID)
}

// Gone reports whether the instance is terminated or on its way there.
func (in Instance) Gone() bool { return in.State == "terminated" || in.State == "shutting-down" }

// ValidateRequest decides whether action may start on inst: refusals are
// *UserError with the reason and what to do. Authorization and the
// per-instance lock are checked separately (by Service).
func (s TagScheme) ValidateRequest(inst Instance, action Action, force bool) error {
	if inst.Gone() {
		return userErrorf("%s is %s: nothing to %s.", inst.Label(), inst.State, action)
	}
	if !strings.EqualFold(inst.Platform, "windows") {
		return userErrorf("%s is not a Windows instance: only Windows instances can join the domain.", inst.Label())
	}
	if inst.State != "running" {
		return userErrorf("%s is %s: it must be running so it can be rebooted into the change. Start it and try again.", inst.Label(), orUnknown(inst.State))
	}
	if !force && inst.Tags[s.Status] == s.doneValue(action) {
		return userErrorf("%s is already %s (tag %s=%s). Add --force to run it again.",
			inst.Label(), s.doneValue(action), s.Status, s.doneValue(action))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

// Observe applies the instance's current tags to op at time now and returns
// the updated operation and the lines to post in its thread, oldest first.
// Lines are empty, and op comes back unchanged, when nothing changed.
//
// Only tags the script wrote for this operation count (Ack == op.ID); any
// change of Progress or Status is recorded in Seen; Status = Joined /
// Unjoined (matching the action) or Failed ends the operation; so does the
// deadline passing while waiting. Operations that have not started
// (pending approval) or have ended are left alone.
func (s TagScheme) Observe(op Operation, tags map[string]string, now time.Time) (Operation, []string) {
	switch op.State {
	case StateTagging, StateRebooting, StateWaiting:
	default:
		return op, nil
	}
	next := op
	next.Seen = append([]Progress(nil), op.Seen...)
	var lines []string
	if tags[s.Ack] == op.ID {
		for _, key := range []string{s.Progress, s.Status} {
			v, ok := tags[key]
			if !ok || v == next.last(key) {
				continue
			}
			v = Clean(v, 256)
			next.Seen = append(next.Seen, Progress{At: now, Key: key, Value: v})
			lines = append(lines, fmt.Sprintf("%s: %s", key, v))
		}
		switch tags[s.Status] {
		case s.doneValue(op.Action):
			next.State = doneState(op.Action)
			lines = append(lines, fmt.Sprintf("%s is %s.", op.label(), s.doneValue(op.Action)))
		case s.Failed:
			next.State = StateFailed
			next.Reason = Clean(tags[s.Reason], 256)
			if next.Reason == "" {
				next.Reason = "the instance reported failure without a reason"
			}
			lines = append(lines, fmt.Sprintf("Failed: %s", next.Reason))
		}
	}
	if !next.State.Terminal() && !op.Deadline.IsZero() && !now.Before(op.Deadline) {
		next.State = StateTimedOut
		last := next.last(s.Progress)
		if last == "" {
			last = "nothing reported by the instance"
		}
		next.Reason = fmt.Sprintf("no answer within %s (last progress: %s)", op.Deadline.Sub(op.Started).Round(time.Second), last)
		lines = append(lines, "Timed out: "+next.Reason)
	}
	if len(lines) == 0 {
		return op, nil
	}
	next.Updated = now
	return next, lines
}

func doneState(a Action) State {
	if a == ActionLeave {
		return StateUnjoined
	}
	return StateJoined
}

func (op Operation) label() string {
	return Instance{ID: op.InstanceID, Name: op.InstanceName}.Label()
}

// Clean makes text from an instance or a user safe to store and show as
// plain text: control characters become spaces, runs of space collapse, and
// the result is cut to at most max runes. Escaping for mrkdwn is the
// notifier's job.
func Clean(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			break
		}
		if space {
			if n+1 >= max {
				break // no trailing space
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
