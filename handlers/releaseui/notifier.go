package releaseui

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokken/tokken/bot/release"
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

// Notifier implements release.Notifier over the Slack Web API.
type Notifier struct{ slack Poster }

var _ release.Notifier = (*Notifier)(nil)

// NewNotifier returns a Notifier posting with p.
func NewNotifier(p Poster) (*Notifier, error) {
	if p == nil {
		return nil, errors.New("releaseui: notifier needs a Slack client")
	}
	return &Notifier{slack: p}, nil
}

// Post posts the approval card to channel.
func (n *Notifier) Post(ctx context.Context, a release.Approval, channel string) (release.MessageRef, error) {
	ref, err := n.slack.PostMessage(ctx, channel, Render(a))
	if err != nil {
		return release.MessageRef{}, err
	}
	return release.MessageRef{Channel: ref.Channel, TS: ref.TS}, nil
}

// Update re-renders the card in place.
func (n *Notifier) Update(ctx context.Context, a release.Approval) error {
	if a.Message.IsZero() {
		return nil // not posted yet: the post renders what is stored then
	}
	return n.slack.UpdateMessage(ctx, slackapi.MessageRef{Channel: a.Message.Channel, TS: a.Message.TS}, Render(a))
}

// Reply answers a person: through their /release command's response_url,
// else ephemeral in the card's channel, else a DM.
func (n *Notifier) Reply(ctx context.Context, to release.ReplyTo, text string) error {
	m := slackapi.Message{Text: mrkdwn.Escape(text)}
	if to.ResponseURL != "" {
		if err := n.slack.PostToResponseURL(ctx, to.ResponseURL, slackapi.Response{Text: m.Text}); err == nil {
			return nil
		}
	}
	if to.Channel != "" {
		err := n.slack.PostEphemeral(ctx, to.Channel, to.User, m)
		if err == nil {
			return nil
		}
		if _, derr := n.slack.DM(ctx, to.User, m); derr != nil {
			return fmt.Errorf("reply to %s: %w", to.User, errors.Join(err, derr))
		}
		return nil
	}
	if _, err := n.slack.DM(ctx, to.User, m); err != nil {
		return fmt.Errorf("reply to %s: %w", to.User, err)
	}
	return nil
}
