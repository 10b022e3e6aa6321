// Package releaseui is the Slack and SNS face of release approvals
// (bot/release): the SNS handler that turns CodePipeline's approval
// notification into the service's intake on the worker, the Approve and
// Reject buttons of the approval card (Reject asks for a reason in a
// modal), the card's Block Kit rendering and the release.Notifier over the
// Slack Web API.
//
// Ingress does little on purpose: a click becomes a release.vote job; the
// worker decides it (policy, quorum, PutApprovalResult) and answers the
// clicker privately.
package releaseui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// ViewOpener opens a modal within the 3 seconds a trigger_id lives
// (*slackapi.Client).
type ViewOpener interface {
	OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) (*slack.View, error)
}

// Handler is the inbound side of the approval card.
type Handler struct {
	queue bot.Queue
	views ViewOpener
	log   *slog.Logger
}

// New returns a Handler queueing votes on q; views opens the Reject
// reason modal (nil: Reject answers that a reason cannot be asked for).
func New(q bot.Queue, views ViewOpener, log *slog.Logger) (*Handler, error) {
	if q == nil {
		return nil, errors.New("releaseui: a queue is required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{queue: q, views: views, log: log.With("feature", "release")}, nil
}

// Interaction handles the card's buttons and the Reject reason modal.
func (h *Handler) Interaction(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		if len(ic.ActionCallback.BlockActions) == 0 {
			return nil, nil
		}
		return nil, h.click(ctx, ic, ic.ActionCallback.BlockActions[0])
	case slack.InteractionTypeViewSubmission:
		if ic.View.CallbackID == CallbackReject {
			return h.rejectSubmitted(ctx, ic)
		}
	}
	h.log.WarnContext(ctx, "unexpected release interaction", "type", string(ic.Type), "callback_id", ic.View.CallbackID)
	return nil, nil
}

func (h *Handler) click(ctx context.Context, ic slack.InteractionCallback, a *slack.BlockAction) error {
	id := strings.TrimSpace(a.Value)
	if !strings.HasPrefix(id, "rel-") {
		h.log.WarnContext(ctx, "release button without an approval id", "action_id", a.ActionID)
		return nil
	}
	ch := ic.Container.ChannelID
	if ch == "" {
		ch = ic.Channel.ID
	}
	v := release.VoteRequest{ID: id, By: bot.Principal{ID: ic.User.ID}, ReplyTo: release.ReplyTo{User: ic.User.ID, Channel: ch}}
	switch a.ActionID {
	case ActionApprove:
		v.Approve = true
		return h.enqueue(ctx, v)
	case ActionReject:
		if h.views == nil {
			return h.enqueue(ctx, v) // the worker says a reason is required
		}
		if _, err := h.views.OpenView(ctx, ic.TriggerID, RejectModal(id, ch)); err != nil {
			return fmt.Errorf("open reject modal for %s: %w", id, err)
		}
		return nil
	}
	h.log.WarnContext(ctx, "unknown release action", "action_id", a.ActionID)
	return nil
}

// rejectSubmitted queues the rejection, or keeps the modal open with an
// error when the reason is blank.
func (h *Handler) rejectSubmitted(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	id, ch, _ := strings.Cut(strings.TrimSpace(ic.View.PrivateMetadata), " ")
	reason := ""
	if ic.View.State != nil {
		reason = strings.TrimSpace(ic.View.State.Values[blockReason][actionReason].Value)
	}
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "Say why: the reason goes to CodePipeline and the card."}), nil
	}
	if !strings.HasPrefix(id, "rel-") {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "This form lost track of its release; close it and click Reject again."}), nil
	}
	return nil, h.enqueue(ctx, release.VoteRequest{
		ID: id, By: bot.Principal{ID: ic.User.ID}, Reason: reason, ReplyTo: release.ReplyTo{User: ic.User.ID, Channel: ch},
	})
}

func (h *Handler) enqueue(ctx context.Context, v release.VoteRequest) error {
	job, err := bot.NewJob(bot.NewID("rv-"), release.KindVote, v)
	if err != nil {
		return err
	}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		return fmt.Errorf("enqueue vote on %s: %w", v.ID, err)
	}
	h.log.InfoContext(ctx, "release vote queued", "approval", v.ID, "user", v.By.ID, "approve", v.Approve)
	return nil
}

// Usage is the /release help.
const Usage = "Usage: /release <pipeline> starts an execution of a pipeline pipelines.yaml names, when the rules allow you. " +
	"Its manual approval comes to the pipeline's approver channel, where someone else must approve it."

// Command answers /release <pipeline>: help and malformed names at once;
// a well-formed request becomes a release.start job whose outcome follows
// through the response_url.
func (h *Handler) Command(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	name := strings.TrimSpace(cmd.Text)
	if name == "" || name == "help" {
		return ephemeral(Usage), nil
	}
	if err := release.ValidateMatch(name); err != nil || strings.ContainsAny(name, "*?") {
		return ephemeral(fmt.Sprintf("%q is not a pipeline name (1 to 100 of A-Z a-z 0-9 . @ _ -).\n%s", name, Usage)), nil
	}
	if cmd.UserID == "" {
		return ephemeral("Slack did not say who you are; try again."), nil
	}
	id := bot.NewID("rs-")
	job, err := bot.NewJob(id, release.KindStart, release.StartRequest{
		ID: id, Pipeline: name, By: bot.Principal{ID: cmd.UserID},
		ReplyTo: release.ReplyTo{User: cmd.UserID, Channel: cmd.ChannelID, ResponseURL: cmd.ResponseURL},
	})
	if err != nil {
		return nil, err
	}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		return nil, fmt.Errorf("enqueue /release %s: %w", name, err)
	}
	h.log.InfoContext(ctx, "release start queued", "pipeline", name, "user", cmd.UserID, "request", id)
	return ephemeral(fmt.Sprintf("Starting %s… the answer follows here.", name)), nil
}

// ephemeral is an answer only the user sees; text is plain and escaped
// here (it may echo what the user typed).
func ephemeral(text string) *slack.Msg {
	return &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: mrkdwn.Escape(text)}
}

// Intaker is the service's intake (*release.Service).
type Intaker interface {
	Intake(ctx context.Context, n release.Notification) error
}

// SNS returns the worker's handler of approval notifications: IsApproval
// tells them from other SNS messages (CloudWatch alarms). A message that
// is not a readable notification is logged and dropped, since redelivering
// it cannot make it readable.
func SNS(in Intaker, log *slog.Logger) func(ctx context.Context, msg events.SNSEntity) error {
	return func(ctx context.Context, msg events.SNSEntity) error {
		n, err := release.ParseNotification([]byte(msg.Message))
		if err != nil {
			log.ErrorContext(ctx, "unreadable CodePipeline approval notification dropped", "feature", "release", "message_id", msg.MessageID, "topic", msg.TopicArn, "err", err)
			return nil
		}
		log.InfoContext(ctx, "approval notification received", "feature", "release", "message_id", msg.MessageID,
			"pipeline", n.Approval.PipelineName, "stage", n.Approval.StageName, "action", n.Approval.ActionName)
		return in.Intake(ctx, n)
	}
}

// IsApproval reports whether an SNS message is a CodePipeline approval
// notification.
func IsApproval(msg events.SNSEntity) bool { return release.IsNotification(msg.Message) }
