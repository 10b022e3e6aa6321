package accessui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
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
		if err := n.slack.UpdateMessage(ctx, slackapi.MessageRef{Channel: r.Message.Channel, TS: r.Message.TS}, m); err != nil {
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
	if slackapi.Undeliverable(err) {
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

// Directory implements access.Directory over Slack: users.info for the
// e-mail, and the members of the Slack user groups the policies name.
// Group memberships, and Slack's refusals to list a group, are cached for
// GroupTTL, so a burst of clicks does not become a burst of
// usergroups.users.list calls.
type Directory struct {
	// Team returns the Slack team tokken is installed in (auth.test's
	// team_id, e.g. (*slackapi.Client).Team; set before the first Lookup).
	// A user of another team, or one Slack calls a stranger, is external:
	// e-mail addresses in groups.yaml never make them a member (see
	// Lookup). Nil: only strangers are recognised.
	Team func(context.Context) (string, error)

	slack  Slack
	groups []string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu    sync.Mutex
	cache map[string]groupMembers
}

// GroupTTL is how long a user group's member list is trusted.
const GroupTTL = time.Minute

type groupMembers struct {
	members []string
	err     error // Slack's refusal to list the group
	at      time.Time
}

var _ access.Directory = (*Directory)(nil)

// NewDirectory returns a Directory resolving membership of groups (Slack
// user group ids).
func NewDirectory(s Slack, groups []string, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.Default()
	}
	return &Directory{slack: s, groups: slices.Clone(groups), ttl: GroupTTL, now: time.Now, log: log, cache: map[string]groupMembers{}}
}

// Lookup returns the principal for userID. Unknown, deleted and bot users
// are errors wrapping access.ErrUnknownUser. An external user (of another
// team than Team, or a stranger) has no e-mail in the principal, so only
// their user id can make them a group member. A user group whose members cannot be listed is left out (the
// principal can only lose permissions by it) and logged.
func (d *Directory) Lookup(ctx context.Context, userID string) (bot.Principal, error) {
	u, err := d.slack.UserInfo(ctx, userID)
	if err != nil {
		if slackapi.ErrorCode(err) == "user_not_found" {
			return bot.Principal{}, fmt.Errorf("look up user %s: %w (%w)", userID, access.ErrUnknownUser, err)
		}
		return bot.Principal{}, fmt.Errorf("look up user %s: %w", userID, err)
	}
	if u.Deleted || u.IsBot {
		return bot.Principal{}, fmt.Errorf("look up user %s: deactivated or a bot: %w", userID, access.ErrUnknownUser)
	}
	p := bot.Principal{ID: userID, Email: u.Email}
	if d.external(ctx, u) {
		// Another organisation controls this account and its e-mail
		// address: an address that matches a member's must not make it
		// one. Only its user id (listed by an operator) can.
		p.Email = ""
		d.log.InfoContext(ctx, "external Slack user: e-mail-based membership does not apply", "user", userID, "team", u.TeamID, "stranger", u.IsStranger)
	}
	for _, g := range d.groups {
		members, err := d.members(ctx, g)
		if err != nil {
			continue // logged by members
		}
		if slices.Contains(members, userID) {
			p.SlackGroups = append(p.SlackGroups, g)
		}
	}
	return p, nil
}

// external reports whether u belongs to another organisation than the
// installation: a stranger, or a user of another team. While the
// installation's team is unknown, every user counts as external (e-mail
// membership is the only thing that depends on it).
func (d *Directory) external(ctx context.Context, u slackapi.User) bool {
	if u.IsStranger {
		return true
	}
	if d.Team == nil || u.TeamID == "" {
		return false
	}
	home, err := d.Team(ctx)
	if err != nil {
		d.log.WarnContext(ctx, "the installation's Slack team is unknown; e-mail membership is not applied", "err", err)
		return true
	}
	return u.TeamID != home
}

// members returns group's members, from the cache while it is younger
// than the TTL. A group Slack refuses to list (an error code in its answer:
// no_such_subteam for a group deleted or mistyped in groups.yaml,
// missing_scope) is cached too, as the refusal: it is logged once per TTL
// and not asked again on every lookup. A failure without an answer from
// Slack (the network, a rate limit the client gave up on) is not cached.
func (d *Directory) members(ctx context.Context, group string) ([]string, error) {
	d.mu.Lock()
	c, ok := d.cache[group]
	d.mu.Unlock()
	if ok && d.now().Sub(c.at) < d.ttl {
		return c.members, c.err
	}
	m, err := d.slack.UserGroupMembers(ctx, group)
	if err != nil {
		d.log.WarnContext(ctx, "user group members unavailable; deciding without it", "group", group, "err", err)
		if code := slackapi.ErrorCode(err); code == "" || code == "ratelimited" {
			return nil, err
		}
	}
	d.mu.Lock()
	d.cache[group] = groupMembers{members: m, err: err, at: d.now()}
	d.mu.Unlock()
	return m, err
}
