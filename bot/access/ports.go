package access

import (
	"context"
	"fmt"

	"github.com/tokken/tokken/bot"
)

// Notifier tells Slack what happened. Implemented by the Slack adapter. The
// Service calls it after a state change is stored; a Notifier error is
// logged and never undoes the change, so every method must be safe to call
// again with the same or a newer Request.
//
// Refusals and answers to the user who acted (ephemeral messages) are not
// the Notifier's job: the Service returns domain errors and the handler that
// holds the interaction's response_url answers with Explain(err).
type Notifier interface {
	// Changed renders r in the one approver-channel message that tracks it
	// (the profile's ApproverChannel): when r.Message is zero it posts the
	// message and returns its reference, otherwise it updates r.Message in
	// place (chat.update) and returns it. The rendering follows r.State:
	// pending (k of ApprovalsNeeded, by whom), activating, active (until
	// Window.ExpiresAt, approved by whom, break-glass needing review),
	// ending, expired, revoked (End.By, End.Why), denied (Denial), failed
	// (Failure.What and Failure.Do), revoke_failed (loudly, in red), and any
	// pending extension. When Slack refuses posts to the channel until a
	// person acts (the bot is not in it, it is archived or gone, posting
	// is restricted) it returns an *UndeliverableError: the Service then
	// marks the request unposted, tells the requester and alerts ops.
	Changed(ctx context.Context, r Request) (MessageRef, error)
	// Tell sends r.Requester a DM about the step named by action (one of the
	// Act* constants, e.g. ActActive, ActDenied, ActExpired).
	Tell(ctx context.Context, r Request, action string) error
	// DeliverCredentials sends c to r.Requester's DM, and nowhere else: a
	// console sign-in link, CLI exports, and for ssm grants the
	// `aws ssm start-session --target …` commands. It must not log, store
	// or echo c. An error means the requester may not have received them;
	// the Service will issue fresh credentials and call it again.
	DeliverCredentials(ctx context.Context, r Request, c Credentials) error
	// Alert posts a loud message to the audit or ops channel.
	Alert(ctx context.Context, a Alert) error
}

// UndeliverableError reports that Slack refuses posts to Channel until a
// person acts; retrying alone cannot help. Code is Slack's error code
// (channel_not_found, not_in_channel, is_archived, restricted_action).
type UndeliverableError struct {
	Channel string
	Code    string
	Err     error
}

func (e *UndeliverableError) Error() string {
	return fmt.Sprintf("cannot post to %s: %s: %v", e.Channel, e.Code, e.Err)
}

func (e *UndeliverableError) Unwrap() error { return e.Err }

// AlertChannel selects where an Alert goes.
type AlertChannel string

// Alert channels.
const (
	// AlertAudit is the audit channel: break-glass uses needing review.
	AlertAudit AlertChannel = "audit"
	// AlertOps is the ops channel: revocations that keep failing,
	// requests whose message cannot be posted.
	AlertOps AlertChannel = "ops"
)

// Alert is a loud message about a request.
type Alert struct {
	Channel AlertChannel
	Action  string  // the Act* constant that caused it
	Request Request // the request as stored after the change
	// Text is a plain-text summary (it quotes user input: escape it).
	Text string
}

// Directory resolves Slack users into principals for policy decisions
// (users.info for the e-mail, usergroups for SlackGroups).
type Directory interface {
	// Lookup returns the principal for a Slack user id; an unknown user is
	// an error.
	Lookup(ctx context.Context, userID string) (bot.Principal, error)
}

// Inventory resolves instance ids into targets with their tags, so that
// profile selectors and policies can match on tags (EC2
// DescribeInstances). Ids that do not exist are left out of the result.
type Inventory interface {
	Instances(ctx context.Context, ids []string) ([]bot.Target, error)
}
