package accessui

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/slackapi"
)

// Slack is the part of *slackapi.Client the access UI uses.
type Slack interface {
	PostMessage(ctx context.Context, channel string, m slackapi.Message) (slackapi.MessageRef, error)
	UpdateMessage(ctx context.Context, ref slackapi.MessageRef, m slackapi.Message) error
	PostEphemeral(ctx context.Context, channel, user string, m slackapi.Message) error
	DM(ctx context.Context, user string, m slackapi.Message) (slackapi.MessageRef, error)
	PostToResponseURL(ctx context.Context, responseURL string, r slackapi.Response) error
	OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) (*slack.View, error)
	UserInfo(ctx context.Context, userID string) (slackapi.User, error)
	UserGroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Notifier implements access.Notifier over the Slack Web API: one message
// per request in the profile's approver channel, updated in place; DMs to
// the requester (credentials only ever there); loud alerts to the audit and
// ops channels. It never logs message text: DMs may hold credentials.
type Notifier struct {
	slack    Slack
	cat      access.Catalogue
	audit    string // audit channel id ("" → approver channel)
	ops      string // ops channel id ("" → audit, then approver channel)
	loc      *time.Location
	region   string
	fallback string // channel for requests whose profile names none
}

var _ access.Notifier = (*Notifier)(nil)

func (n *Notifier) profile(r access.Request) access.Profile {
	if p, ok := n.cat.Profile(r.Profile); ok {
		return p
	}
	return access.Profile{Name: r.Profile, Kind: r.Kind}
}

// Changed posts r's approver message, or updates it in place.
func (n *Notifier) Changed(ctx context.Context, r access.Request) (access.MessageRef, error) {
	p := n.profile(r)
	m := RenderRequest(r, p, n.loc)
	if !r.Message.IsZero() {
		err := n.slack.UpdateMessage(ctx, slackapi.MessageRef{Channel: r.Message.Channel, TS: r.Message.TS}, m)
		if slackapi.Undeliverable(err) {
			// Removed from the channel or the channel archived since the
			// post: retrying cannot help, a person must act.
			return r.Message, &access.UndeliverableError{Channel: r.Message.Channel, Code: slackapi.ErrorCode(err), Err: err}
		}
		if err != nil {
			return r.Message, fmt.Errorf("update message of %s: %w", r.ID, err)
		}
		return r.Message, nil
	}
	channel := p.ApproverChannel
	if channel == "" {
		channel = n.fallback
	}
	var (
		ref slackapi.MessageRef
		err error
	)
	if channel != "" {
		ref, err = n.slack.PostMessage(ctx, channel, m)
	} else {
		// No channel at all (a no-approval profile without one): the
		// requester's DM still tracks the request.
		ref, err = n.slack.DM(ctx, r.Requester, m)
	}
	if channel != "" && slackapi.Undeliverable(err) {
		return access.MessageRef{}, &access.UndeliverableError{Channel: channel, Code: slackapi.ErrorCode(err), Err: err}
	}
	if err != nil {
		return access.MessageRef{}, fmt.Errorf("post message of %s: %w", r.ID, err)
	}
	return access.MessageRef{Channel: ref.Channel, TS: ref.TS}, nil
}

// Tell DMs the requester about action.
func (n *Notifier) Tell(ctx context.Context, r access.Request, action string) error {
	_, err := n.slack.DM(ctx, r.Requester, RenderTell(r, action, n.loc))
	if slackapi.UndeliverableDM(err) {
		return &access.UndeliverableError{Channel: "the DM of " + r.Requester, Code: slackapi.ErrorCode(err), Err: err}
	}
	if err != nil {
		return fmt.Errorf("tell %s about %s: %w", r.Requester, action, err)
	}
	return nil
}

// DeliverCredentials DMs c to the requester, and nowhere else.
func (n *Notifier) DeliverCredentials(ctx context.Context, r access.Request, c access.Credentials) error {
	if _, err := n.slack.DM(ctx, r.Requester, RenderCredentials(r, c, windowEnd(r), n.loc, n.region)); err != nil {
		return fmt.Errorf("deliver credentials of %s: %w", r.ID, err)
	}
	return nil
}

// windowEnd is the end of the window the credentials being delivered are
// for: an approved extension's new end, else the request's window (fixed
// at the first activation claim and kept by every retry).
func windowEnd(r access.Request) time.Time {
	if x := r.PendingExtension(); x != nil && x.State == access.ExtensionApproved {
		return x.NewExpiresAt
	}
	return r.Window.ExpiresAt
}

// Alert posts a to the audit or ops channel, falling back to the approver
// channel when none is configured, so a loud message is never dropped.
func (n *Notifier) Alert(ctx context.Context, a access.Alert) error {
	channels := []string{n.audit}
	if a.Channel == access.AlertOps {
		channels = []string{n.ops, n.audit}
	}
	channels = append(channels, n.profile(a.Request).ApproverChannel, n.fallback)
	for _, ch := range channels {
		if ch == "" {
			continue
		}
		if _, err := n.slack.PostMessage(ctx, ch, RenderAlert(a, n.loc)); err != nil {
			return fmt.Errorf("alert %s about %s in %s: %w", a.Action, a.Request.ID, ch, err)
		}
		return nil
	}
	return errors.New("alert " + a.Action + " about " + a.Request.ID + ": no channel configured")
}
