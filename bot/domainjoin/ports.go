package domainjoin

import "context"

// Instances is the EC2 side of a domain operation. The adapter (infra/)
// implements it with DescribeInstances, CreateTags and RebootInstances.
// Errors that retrying cannot fix (the instance is in the wrong state, access
// denied) should be wrapped with bot.Permanent: the operation then fails at
// once with the error's text instead of being retried until it times out.
type Instances interface {
	// Find returns the instances ref may mean. An instance id (bot.IsInstanceID)
	// matches that instance; anything else matches the Name tag exactly
	// (DescribeInstances filter tag:Name). Terminated instances are
	// included so the caller can say so. No match is an empty slice and a
	// nil error.
	Find(ctx context.Context, ref string) ([]Instance, error)
	// SetTags creates or overwrites tags on the instance (CreateTags).
	SetTags(ctx context.Context, instanceID string, tags map[string]string) error
	// Reboot asks EC2 to reboot the instance (RebootInstances).
	Reboot(ctx context.Context, instanceID string) error
}

// ReplyTo says where to answer a person privately: the response URL of
// their slash command while it is valid, else a DM to User.
type ReplyTo struct {
	User        string `json:"user"`
	Channel     string `json:"channel,omitempty"`
	ResponseURL string `json:"response_url,omitempty"`
}

// Notifier is the Slack side of a domain operation. Texts passed to it are
// plain text (they may contain instance-written tag values and user input):
// the implementation escapes them for mrkdwn.
type Notifier interface {
	// Reply answers a person privately: refusals, status, outcomes.
	Reply(ctx context.Context, to ReplyTo, text string) error
	// Post posts the message that tracks op in place, in the channel the
	// deployment configures for domain operations, and returns where it is.
	// While op.State is pending_approval the message carries Approve and
	// Deny buttons whose value is op.ID (the same mechanics as access
	// requests; clicks come back as KindApprove / KindDeny jobs).
	Post(ctx context.Context, op Operation) (MessageRef, error)
	// Update re-renders op's message in place (chat.update): state, who
	// decided, the progress seen, the outcome.
	Update(ctx context.Context, op Operation) error
	// Thread adds lines to the thread under op's message.
	Thread(ctx context.Context, op Operation, lines []string) error
	// Alert raises a tokken alert about op (a timed-out operation).
	Alert(ctx context.Context, op Operation, summary string) error
}
