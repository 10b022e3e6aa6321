// Package slackdir resolves Slack users into the principals tokken's
// policies decide on: users.info for the e-mail, and membership of the
// Slack user groups the policies name. The access, domain and alert
// features share one Directory, so there is one user-group cache.
//
// A user of another organisation (another team in a Slack Connect channel,
// or a stranger) gets no e-mail in the principal: that organisation
// controls the account and its address, so an address that matches a
// member's must not make it one. Only its user id can.
//
// Lookup asks Slack about the user every time: it decides who may request,
// approve and be granted access, and a user deactivated in Slack is refused
// at once. What is only shown, or checked again before anything happens
// (the profiles `/access help` lists), uses Cached, which answers from a
// users.info answer younger than UserTTL.
package slackdir

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/slackapi"
)

// Users is the part of *slackapi.Client the directory calls.
type Users interface {
	UserInfo(ctx context.Context, userID string) (slackapi.User, error)
	UserGroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Directory implements access.Directory over Slack: users.info for the
// e-mail, and the members of the Slack user groups the policies name.
// Group memberships, and Slack's refusals to list a group, are cached for
// GroupTTL, so a burst of clicks does not become a burst of
// usergroups.users.list calls. A lookup asks users.info and the lists it
// lacks concurrently: one round trip to Slack, however many groups.
// Concurrent lookups of the same expired group each ask Slack for it.
type Directory struct {
	// Team returns the Slack team tokken is installed in (auth.test's
	// team_id, e.g. (*slackapi.Client).Team; set before the first Lookup).
	// A user of another team, or one Slack calls a stranger, is external:
	// e-mail addresses in groups.yaml never make them a member (see
	// Lookup). Nil: only strangers are recognised.
	Team func(context.Context) (string, error)

	slack  Users
	groups []string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu     sync.Mutex
	cache  map[string]groupMembers
	users  map[string]cachedUser // users.info answers, for Cached
	pruned time.Time             // when users was last cleared of stale answers
}

// GroupTTL is how long a user group's member list is trusted.
const GroupTTL = time.Minute

// UserTTL is how long Cached trusts a users.info answer: a user
// deactivated in Slack may still see what Cached serves (their requestable
// profiles) for this long, but cannot do anything with it, since every
// decision goes through Lookup.
const UserTTL = GroupTTL

type cachedUser struct {
	user slackapi.User
	at   time.Time
}

type groupMembers struct {
	members []string
	err     error // Slack's refusal to list the group
	at      time.Time
}

var _ access.Directory = (*Directory)(nil)

// New returns a Directory resolving membership of groups (Slack user
// group ids) through s.
func New(s Users, groups []string, log *slog.Logger) *Directory {
	if log == nil {
		log = slog.Default()
	}
	return &Directory{
		slack: s, groups: slices.Clone(groups), ttl: GroupTTL, now: time.Now, log: log,
		cache: map[string]groupMembers{}, users: map[string]cachedUser{},
	}
}

// Lookup returns the principal for userID. Unknown, deleted and bot users
// are errors wrapping access.ErrUnknownUser. An external user (of another
// team than Team, or a stranger) has no e-mail in the principal, so only
// their user id can make them a group member. A user group whose members cannot be listed is left out (the
// principal can only lose permissions by it) and logged.
func (d *Directory) Lookup(ctx context.Context, userID string) (bot.Principal, error) {
	return d.lookup(ctx, userID, false)
}

// Cached is d for what is only shown, or checked again through Lookup
// before anything happens: its Lookup answers from a users.info answer
// younger than UserTTL when there is one (group members are cached either
// way). On a burst of `/access help` it saves a Slack round trip per
// command.
func (d *Directory) Cached() access.Directory { return cached{d} }

type cached struct{ d *Directory }

func (c cached) Lookup(ctx context.Context, userID string) (bot.Principal, error) {
	return c.d.lookup(ctx, userID, true)
}

// lookup asks Slack at once for everything it needs and does not have
// cached: users.info, the member list of each user group older than
// GroupTTL, and the installation's team (Team, which answers from memory
// once auth.test has). A cold lookup so costs one round trip to Slack
// whatever the number of groups, instead of one after another. The lists
// are asked even when users.info then fails: they are cached for the next
// lookup, and waiting for them costs no longer than users.info.
func (d *Directory) lookup(ctx context.Context, userID string, recent bool) (bot.Principal, error) {
	var (
		wg    sync.WaitGroup
		home  string
		herr  error
		lists = make([]groupMembers, len(d.groups))
	)
	if d.Team != nil {
		wg.Go(func() { home, herr = d.Team(ctx) })
	}
	for i, g := range d.groups {
		if c, ok := d.cachedMembers(g); ok {
			lists[i] = c
			continue
		}
		wg.Go(func() { lists[i].members, lists[i].err = d.listMembers(ctx, g) })
	}
	u, err := d.userInfo(ctx, userID, recent)
	wg.Wait()
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
	if d.external(ctx, u, home, herr) {
		// Another organisation controls this account and its e-mail
		// address: an address that matches a member's must not make it
		// one. Only its user id (listed by an operator) can.
		p.Email = ""
		d.log.InfoContext(ctx, "external Slack user: e-mail-based membership does not apply", "user", userID, "team", u.TeamID, "stranger", u.IsStranger)
	}
	for i, g := range d.groups {
		if lists[i].err == nil && slices.Contains(lists[i].members, userID) { // a failure was logged by listMembers
			p.SlackGroups = append(p.SlackGroups, g)
		}
	}
	return p, nil
}

// userInfo is users.info for userID, or, when recent, the last answer if it
// is younger than UserTTL. Every answer is kept for Cached; failures are
// not.
func (d *Directory) userInfo(ctx context.Context, userID string, recent bool) (slackapi.User, error) {
	if recent {
		d.mu.Lock()
		c, ok := d.users[userID]
		d.mu.Unlock()
		if ok && d.now().Sub(c.at) < UserTTL {
			return c.user, nil
		}
	}
	u, err := d.slack.UserInfo(ctx, userID)
	if err != nil {
		return u, err
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.pruned) >= UserTTL { // keep only the users of the last minute
		for id, c := range d.users {
			if now.Sub(c.at) >= UserTTL {
				delete(d.users, id)
			}
		}
		d.pruned = now
	}
	d.users[userID] = cachedUser{user: u, at: now}
	return u, nil
}

// external reports whether u belongs to another organisation than the
// installation: a stranger, or a user of another team. home and herr are
// what Team answered (asked alongside users.info; unused when Team is nil).
// While the installation's team is unknown, every user counts as external
// (e-mail membership is the only thing that depends on it).
func (d *Directory) external(ctx context.Context, u slackapi.User, home string, herr error) bool {
	if u.IsStranger {
		return true
	}
	if d.Team == nil || u.TeamID == "" {
		return false
	}
	if herr != nil {
		d.log.WarnContext(ctx, "the installation's Slack team is unknown; e-mail membership is not applied", "err", herr)
		return true
	}
	return u.TeamID != home
}

// cachedMembers returns group's cached member list, or Slack's cached
// refusal to list it, while it is younger than the TTL.
func (d *Directory) cachedMembers(group string) (groupMembers, bool) {
	d.mu.Lock()
	c, ok := d.cache[group]
	d.mu.Unlock()
	if !ok || d.now().Sub(c.at) >= d.ttl {
		return groupMembers{}, false
	}
	return c, true
}

// listMembers asks Slack for group's members and caches the answer. A
// group Slack refuses to list (an error code in its answer: no_such_subteam
// for a group deleted or mistyped in groups.yaml, missing_scope) is cached
// too, as the refusal: it is logged once per TTL and not asked again on
// every lookup. A failure without an answer from Slack (the network, a rate
// limit the client gave up on) is not cached.
func (d *Directory) listMembers(ctx context.Context, group string) ([]string, error) {
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
