// Package domainui is the Slack and AWS-event face of Windows domain
// operations (bot/domainjoin): the /domain slash command, the Approve, Deny
// and Cancel buttons on an operation's message (Deny asks for a reason in a
// modal), the Block Kit rendering of that message and its thread, the
// domainjoin.Notifier over the Slack Web API, and the EventBridge "Tag
// Change on Resource" handler.
//
// Ingress does little on purpose: it parses and refuses malformed input at
// once (ephemerally, with what is allowed), and hands everything that needs
// EC2, the store or policy to the worker as a domainjoin job. The worker
// answers through the command's response_url or a DM.
package domainui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/router"
)

// ViewOpener opens a modal within the 3 seconds a trigger_id lives
// (*slackapi.Client).
type ViewOpener interface {
	OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) (*slack.View, error)
}

// Handler is the inbound side of /domain: commands, clicks, modal
// submissions and tag-change events, each turned into a domainjoin job.
type Handler struct {
	queue bot.Queue
	views ViewOpener
	tags  domainjoin.TagScheme
	log   *slog.Logger
}

// Deps are what a Handler needs.
type Deps struct {
	// Queue receives the domainjoin jobs. Required.
	Queue bot.Queue
	// Views opens the Deny reason modal; without it, Deny answers that it
	// cannot ask for a reason (an ingress without a bot token).
	Views ViewOpener
	// Tags is the tag scheme: tag-change events that change none of its
	// keys are ignored. Required (windows.DefaultScheme() by default).
	Tags domainjoin.TagScheme
	Log  *slog.Logger // default slog.Default()
}

// New returns a Handler.
func New(d Deps) (*Handler, error) {
	if d.Queue == nil {
		return nil, errors.New("domainui: a queue is required")
	}
	if err := d.Tags.Validate(); err != nil {
		return nil, fmt.Errorf("domainui: %w", err)
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Handler{queue: d.Queue, views: d.Views, tags: d.Tags, log: d.Log.With("feature", "domain")}, nil
}

// Command answers /domain. Help and malformed commands are answered at
// once; join, leave and status become a domain.command job whose outcome
// follows through the response_url.
func (h *Handler) Command(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
	c, err := domainjoin.ParseCommand(cmd.Text)
	if err != nil {
		if u, ok := domainjoin.AsUserError(err); ok {
			return router.Ephemeral(mrkdwn.Escape(u.Msg)), nil
		}
		return nil, fmt.Errorf("parse /domain: %w", err)
	}
	if c.Verb == domainjoin.VerbHelp {
		return router.Ephemeral(mrkdwn.Escape(domainjoin.Usage)), nil
	}
	if cmd.UserID == "" {
		return router.Ephemeral("Slack did not say who you are; try again."), nil
	}
	to := domainjoin.ReplyTo{User: cmd.UserID, Channel: cmd.ChannelID, ResponseURL: cmd.ResponseURL}
	job, err := domainjoin.NewCommandJob(c, bot.Principal{ID: cmd.UserID}, to)
	if err != nil {
		return nil, err
	}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		return nil, fmt.Errorf("enqueue /domain %s: %w", c.Verb, err)
	}
	h.log.InfoContext(ctx, "domain command queued", "verb", string(c.Verb), "op", job.ID, "user", cmd.UserID, "force", c.Force)
	if c.Verb == domainjoin.VerbStatus {
		return router.Ephemeral(fmt.Sprintf("Looking up %s…", mrkdwn.Escape(c.Instance))), nil
	}
	force := ""
	if c.Force {
		force = " (forced)"
	}
	return router.Ephemeral(mrkdwn.Escape(fmt.Sprintf("Checking %s before it can %s the domain%s; request %s. The answer follows here.",
		c.Instance, c.Verb, force, job.ID))), nil
}

// Interaction handles the buttons of an operation's message and the Deny
// reason modal. Approve and Cancel are queued at once; Deny opens the
// modal, whose submission queues the denial. Refusals (not allowed, own
// request, already decided) come back from the worker as private replies.
func (h *Handler) Interaction(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		if len(ic.ActionCallback.BlockActions) == 0 {
			return nil, nil
		}
		return nil, h.click(ctx, ic, ic.ActionCallback.BlockActions[0])
	case slack.InteractionTypeViewSubmission:
		if ic.View.CallbackID == CallbackDeny {
			return h.denySubmitted(ctx, ic)
		}
	}
	h.log.WarnContext(ctx, "unexpected domain interaction", "type", string(ic.Type), "callback_id", ic.View.CallbackID)
	return nil, nil
}

func (h *Handler) click(ctx context.Context, ic slack.InteractionCallback, a *slack.BlockAction) error {
	opID := strings.TrimSpace(a.Value)
	to := replyTo(ic)
	if opID == "" || !strings.HasPrefix(opID, "d-") {
		h.log.WarnContext(ctx, "domain button without an operation id", "action_id", a.ActionID)
		return nil
	}
	req := domainjoin.DecisionRequest{OpID: opID, By: bot.Principal{ID: ic.User.ID}, ReplyTo: to}
	switch a.ActionID {
	case ActionApprove:
		return h.enqueue(ctx, domainjoin.KindApprove, req)
	case ActionCancel:
		return h.enqueue(ctx, domainjoin.KindCancel, req)
	case ActionDeny:
		if h.views == nil {
			return h.enqueue(ctx, domainjoin.KindDeny, req) // the worker says a reason is required
		}
		if _, err := h.views.OpenView(ctx, ic.TriggerID, DenyModal(opID)); err != nil {
			return fmt.Errorf("open deny modal for %s: %w", opID, err)
		}
		return nil
	}
	h.log.WarnContext(ctx, "unknown domain action", "action_id", a.ActionID)
	return nil
}

// denySubmitted queues the denial, or keeps the modal open with an error
// when the reason is blank.
func (h *Handler) denySubmitted(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	opID := strings.TrimSpace(ic.View.PrivateMetadata)
	reason := ""
	if ic.View.State != nil {
		reason = strings.TrimSpace(ic.View.State.Values[blockReason][actionReason].Value)
	}
	if reason == "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "Say why: the requester sees the reason."}), nil
	}
	if !strings.HasPrefix(opID, "d-") {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{blockReason: "This form lost track of its request; close it and click Deny again."}), nil
	}
	req := domainjoin.DecisionRequest{
		OpID: opID, By: bot.Principal{ID: ic.User.ID}, Reason: reason,
		ReplyTo: domainjoin.ReplyTo{User: ic.User.ID},
	}
	return nil, h.enqueue(ctx, domainjoin.KindDeny, req)
}

func (h *Handler) enqueue(ctx context.Context, kind string, req domainjoin.DecisionRequest) error {
	job, err := bot.NewJob(bot.NewID("dj-"), kind, req)
	if err != nil {
		return err
	}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		return fmt.Errorf("enqueue %s for %s: %w", kind, req.OpID, err)
	}
	h.log.InfoContext(ctx, "domain decision queued", "kind", kind, "op", req.OpID, "user", req.By.ID)
	return nil
}

// replyTo is where to answer the person who clicked: an ephemeral message
// in the channel of the operation's message, else their DM. The click's
// response_url is not used: a post to it without replace_original=false
// could rewrite the operation message for everyone.
func replyTo(ic slack.InteractionCallback) domainjoin.ReplyTo {
	ch := ic.Container.ChannelID
	if ch == "" {
		ch = ic.Channel.ID
	}
	return domainjoin.ReplyTo{User: ic.User.ID, Channel: ch}
}
