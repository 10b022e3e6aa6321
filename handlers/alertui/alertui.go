// Package alertui is the Slack and webhook face of tokken's alerts:
//
//   - Parsing (mackerel.go, cloudwatch.go) turns inbound deliveries into
//     bot/alert events: Mackerel webhooks (every event type), CloudWatch
//     alarms delivered through SNS, and CloudWatch "Alarm State Change"
//     events delivered by EventBridge. Parsers are strict about structure
//     and lenient about values: a body that is not a JSON object, or an
//     alert without an id, is an error wrapping ErrBadPayload; numbers that
//     arrive as floats or strings, null timestamps, missing metric values,
//     upper or lower case statuses and unknown event types are all
//     accepted. Nothing there panics on any input (the parsers are fuzzed).
//   - Webhook serves POST /webhooks/mackerel: HTTP Basic auth compared in
//     constant time, a 1 MiB body limit, parsing (400 with the reason for a
//     bad payload), and the delivery stored before the 2xx answer, so
//     Mackerel never sees a slow or failing endpoint and nothing is lost.
//   - SNS and EventBridge adapt CloudWatch alarms arriving through Lambda.
//   - Rendering (render.go) turns alerts and notices into Slack messages
//     that read like Mackerel's own notifications: a colour bar by status
//     and the status word in text (for colour-blind readers and Slack
//     keyword notifications), the title "[org] CRITICAL: <monitor> — <host
//     or service>", host link and status, roles, the metric line, times in
//     a configured zone, the memo as an escaped quote, the graph, and the
//     on-call buttons.
//   - Poster is the alert.Notifier: those messages, thread lines, storm
//     summaries, paced per channel.
//   - UI handles /alerts (list, silence, unsilence) and the buttons on alert
//     messages (Ack, Silence 1h / 4h / until 09:00 tomorrow, Close, Request
//     access), each checked against the policies (bot.ActionAlertAct);
//     refusals and mistakes are ephemeral and change nothing.
package alertui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/mackerel"
	"github.com/tokken/tokken/infra/slackapi"
)

// Command is the slash command the UI answers.
const Command = "/alerts"

// Directory resolves a Slack user into the principal policies decide on
// (the same contract as bot/access.Directory: infra/slackdir serves both).
type Directory interface {
	Lookup(ctx context.Context, userID string) (bot.Principal, error)
}

// AccessPrefill is what "Request access to this host" knows about the
// target: the EC2 instance when the alert names one, else the Mackerel host
// name for the access UI to resolve, and a reason quoting the alert.
type AccessPrefill struct {
	InstanceID string
	HostName   string
	Reason     string
	AlertKey   string
}

// AccessModalOpener opens the access request modal pre-filled. The access
// UI implements it; it must call views.open with triggerID at once (the
// trigger lives three seconds).
type AccessModalOpener interface {
	Open(ctx context.Context, triggerID, userID string, prefill AccessPrefill) error
}

// Closer closes an alert at its source (Mackerel's API).
type Closer interface {
	Close(ctx context.Context, alertID, reason string) error
}

// Downtimer creates Mackerel downtimes for silences Mackerel can express,
// and deletes them when the silence is ended early.
type Downtimer interface {
	MonitorID(ctx context.Context, name string) (string, error)
	CreateDowntime(ctx context.Context, d mackerel.Downtime) (string, error)
	DeleteDowntime(ctx context.Context, id string) error
}

// Deps are what the UI needs. Service, Slack, Authorizer and Directory are
// required; Closer, Downtimer and Access are optional (the Close button
// then explains that MACKEREL_API_KEY is not set, silences stay
// tokken-side, and "Request access" answers with the /access command to
// run).
type Deps struct {
	Service    *alert.Service
	Slack      Slack
	Authorizer bot.Authorizer
	Directory  Directory
	Closer     Closer
	Downtimer  Downtimer
	Access     AccessModalOpener
	// View is the rendering options (time zone).
	View Options
	Now  func() time.Time
	Log  *slog.Logger
}

// UI handles /alerts and the alert buttons.
type UI struct {
	d Deps
}

// New checks d and returns the UI.
func New(d Deps) (*UI, error) {
	if d.Service == nil || d.Slack == nil || d.Authorizer == nil || d.Directory == nil {
		return nil, errors.New("alertui: needs the alert service, Slack, an authorizer and a directory")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &UI{d: d}, nil
}

// Register adds the /alerts command and the button handlers to r. The
// buttons' action ids carry no namespace separator, so each is its own
// namespace.
func (u *UI) Register(r *router.Router) {
	r.HandleCommand(Command, u.command)
	for _, id := range []string{
		ActionAck, ActionSilence1h, ActionSilence4h,
		ActionSilenceTomorrow, ActionClose, ActionRequestAccess,
	} {
		r.HandleInteraction(id, u.action)
	}
}

// ephemeral shows text to user in channel only.
func (u *UI) ephemeral(ctx context.Context, channel, user, text string) error {
	if channel == "" {
		return fmt.Errorf("ephemeral to %s: no channel", user)
	}
	if err := u.d.Slack.PostEphemeral(ctx, channel, user, slackapi.Message{Text: text}); err != nil {
		return fmt.Errorf("ephemeral to %s: %w", user, err)
	}
	return nil
}
