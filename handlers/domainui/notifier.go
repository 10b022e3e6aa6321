package domainui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/slackapi"
)

// Poster is the part of *slackapi.Client the notifier uses.
type Poster interface {
	PostMessage(ctx context.Context, channel string, m slackapi.Message) (slackapi.MessageRef, error)
	UpdateMessage(ctx context.Context, ref slackapi.MessageRef, m slackapi.Message) error
	PostEphemeral(ctx context.Context, channel, user string, m slackapi.Message) error
	DM(ctx context.Context, user string, m slackapi.Message) (slackapi.MessageRef, error)
	PostToResponseURL(ctx context.Context, responseURL string, r slackapi.Response) error
}

// AlertCheck is the check name of the tokken alert a timed-out operation
// raises (alert key "tokken:domain_timeout:<op id>").
const AlertCheck = "domain_timeout"

// AlertCheckFailed is the check name of the tokken alert an operation that
// failed because tokken gave up on it raises (alert key
// "tokken:domain_failed:<op id>").
const AlertCheckFailed = "domain_failed"

// AlertCheckOf is the check name of the alert about op: AlertCheck for a
// timeout, AlertCheckFailed otherwise.
func AlertCheckOf(op domainjoin.Operation) string {
	if op.State == domainjoin.StateFailed {
		return AlertCheckFailed
	}
	return AlertCheck
}

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	// Channel is where operation messages are posted (a channel id). When
	// empty, the message goes to the requester's DM: fine for operations
	// that need no approval, but approvers cannot see it there, so set it
	// wherever policy requires approval.
	Channel string
	// Raise, if set, sends an alert about an operation (timed out, or
	// given up) through tokken's alert pipeline (routes, acknowledgement,
	// one message per key): the wiring builds alert.Operational(check,
	// opID, critical, summary, now), check from AlertCheckOf.
	// Without it the timeout is posted as a plain alert message where the
	// operation's message is.
	Raise func(ctx context.Context, check, opID, summary string) error
	// Log receives fallbacks and failures (default slog.Default()).
	Log *slog.Logger
}

// Notifier implements domainjoin.Notifier over the Slack Web API: one
// message per operation, updated in place; progress as replies in its
// thread; private answers through the command's response_url while it
// works, else a DM.
type Notifier struct {
	slack Poster
	cfg   NotifierConfig
}

var _ domainjoin.Notifier = (*Notifier)(nil)

// NewNotifier returns a Notifier posting with p.
func NewNotifier(p Poster, cfg NotifierConfig) (*Notifier, error) {
	if p == nil {
		return nil, errors.New("domainui: notifier needs a Slack client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Notifier{slack: p, cfg: cfg}, nil
}

// Reply answers a person privately, trying in turn: the response_url of
// their command (ephemeral, where they typed it), an ephemeral message in
// the channel they clicked in, and a DM. A step that fails (response_url
// used up or expired, bot not in the channel) falls through to the next.
func (n *Notifier) Reply(ctx context.Context, to domainjoin.ReplyTo, text string) error {
	m := slackapi.Message{Text: mrkdwn.Escape(text)}
	var errs []error
	if to.ResponseURL != "" {
		err := n.slack.PostToResponseURL(ctx, to.ResponseURL, slackapi.Response{Text: m.Text})
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("response_url: %w", err))
	}
	if to.User == "" {
		return fmt.Errorf("reply: no user to fall back to: %w", errors.Join(errs...))
	}
	if to.Channel != "" {
		err := n.slack.PostEphemeral(ctx, to.Channel, to.User, m)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("ephemeral in %s: %w", to.Channel, err))
	}
	if len(errs) > 0 {
		n.cfg.Log.WarnContext(ctx, "private reply falls back to a DM", "user", to.User, "err", errors.Join(errs...))
	}
	if _, err := n.slack.DM(ctx, to.User, m); err != nil {
		return fmt.Errorf("reply to %s: %w", to.User, errors.Join(append(errs, err)...))
	}
	return nil
}

// Post posts the message that tracks op.
func (n *Notifier) Post(ctx context.Context, op domainjoin.Operation) (domainjoin.MessageRef, error) {
	m := Render(op)
	var (
		ref slackapi.MessageRef
		err error
	)
	if n.cfg.Channel != "" {
		ref, err = n.slack.PostMessage(ctx, n.cfg.Channel, m)
	} else {
		ref, err = n.slack.DM(ctx, op.Requester, m)
	}
	if n.cfg.Channel != "" && slackapi.Undeliverable(err) {
		// Slack refuses posts there until a person acts: retrying the job
		// cannot help, so it is given up at once (and its operation with
		// it) rather than retried in vain while the instance stays locked.
		return domainjoin.MessageRef{}, bot.Permanent(fmt.Errorf("post operation %s: tokken cannot post to %s (%s): invite the bot there (/invite @tokken) or fix TOKKEN_DOMAIN_CHANNEL: %w",
			op.ID, n.cfg.Channel, slackapi.ErrorCode(err), err))
	}
	if err != nil {
		return domainjoin.MessageRef{}, fmt.Errorf("post operation %s: %w", op.ID, err)
	}
	return domainjoin.MessageRef{Channel: ref.Channel, TS: ref.TS}, nil
}

// Update re-renders op's message in place.
func (n *Notifier) Update(ctx context.Context, op domainjoin.Operation) error {
	if op.Message.IsZero() {
		return fmt.Errorf("update operation %s: it has no message yet", op.ID)
	}
	if err := n.slack.UpdateMessage(ctx, ref(op), Render(op)); err != nil {
		return fmt.Errorf("update operation %s: %w", op.ID, err)
	}
	return nil
}

// Thread adds lines to the thread under op's message, as one reply.
func (n *Notifier) Thread(ctx context.Context, op domainjoin.Operation, lines []string) error {
	if op.Message.IsZero() {
		return fmt.Errorf("thread of operation %s: it has no message yet", op.ID)
	}
	m := RenderThread(lines)
	if m.Text == "" {
		return nil
	}
	m.ThreadTS = op.Message.TS
	if _, err := n.slack.PostMessage(ctx, op.Message.Channel, m); err != nil {
		return fmt.Errorf("thread of operation %s: %w", op.ID, err)
	}
	return nil
}

// Alert raises a tokken alert about op: through the alert pipeline when
// one is wired, else as a top-level message where op's message is (so it
// is seen outside the thread).
func (n *Notifier) Alert(ctx context.Context, op domainjoin.Operation, summary string) error {
	if n.cfg.Raise != nil {
		if err := n.cfg.Raise(ctx, AlertCheckOf(op), op.ID, summary); err != nil {
			return fmt.Errorf("raise alert for %s: %w", op.ID, err)
		}
		return nil
	}
	channel := op.Message.Channel
	if channel == "" {
		channel = n.cfg.Channel
	}
	m := RenderAlert(op, summary)
	var err error
	if channel != "" {
		_, err = n.slack.PostMessage(ctx, channel, m)
	} else {
		_, err = n.slack.DM(ctx, op.Requester, m)
	}
	if err != nil {
		return fmt.Errorf("alert for %s: %w", op.ID, err)
	}
	return nil
}

func ref(op domainjoin.Operation) slackapi.MessageRef {
	return slackapi.MessageRef{Channel: op.Message.Channel, TS: op.Message.TS}
}
