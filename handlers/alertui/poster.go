package alertui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/slackapi"
)

// Slack is the part of the Slack Web API client (infra/slackapi) the alert
// UI uses.
type Slack interface {
	PostMessage(ctx context.Context, channel string, m slackapi.Message) (slackapi.MessageRef, error)
	UpdateMessage(ctx context.Context, ref slackapi.MessageRef, m slackapi.Message) error
	PostEphemeral(ctx context.Context, channel, user string, m slackapi.Message) error
}

// RateWindows is implemented by a Slack client that shares Slack's
// Retry-After windows among its callers (infra/slackapi.Client): it
// reports when the window open for a method and channel ends.
type RateWindows interface {
	RateLimitedUntil(method, channel string) time.Time
}

// Poster is the alert.Notifier that posts to Slack: alerts rendered by
// Render, thread lines, notices and storm summaries, with
// posts paced per channel and updates per message's channel. A post whose
// slot has not come returns an *alert.LaterError at once. So does one
// while Slack holds the channel's method at 429 (when the Slack client is
// a RateWindows): the slot is then one interval after the window ends,
// when the call that drew the 429 has posted. Every post deferred
// meanwhile names that one slot, so they coalesce into one flush instead
// of each retrying a second later for as long as the window lasts.
type Poster struct {
	slack Slack
	pace  *Pacer
	view  Options
	now   func() time.Time
}

// NewPoster returns a Poster. now nil means time.Now.
func NewPoster(s Slack, pace *Pacer, view Options, now func() time.Time) *Poster {
	if now == nil {
		now = time.Now
	}
	return &Poster{slack: s, pace: pace, view: view, now: now}
}

var _ alert.Notifier = (*Poster)(nil)

// held returns the *alert.LaterError for a call of method to channel while
// Slack's rate-limit window for them is open, nil otherwise.
func (p *Poster) held(method, channel string) error {
	rw, ok := p.slack.(RateWindows)
	if !ok {
		return nil
	}
	until := rw.RateLimitedUntil(method, channel)
	if until.IsZero() {
		return nil
	}
	return &alert.LaterError{Channel: channel, At: until.Add(p.pace.interval)}
}

func (p *Poster) post(ctx context.Context, channel string, m slackapi.Message) (string, error) {
	if err := p.held("chat.postMessage", channel); err != nil {
		return "", fmt.Errorf("post to %s: %w", channel, err)
	}
	var ref slackapi.MessageRef
	err := p.pace.Do(ctx, "post:"+channel, func(ctx context.Context) error {
		var err error
		ref, err = p.slack.PostMessage(ctx, channel, m)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("post to %s: %w", channel, later(channel, err))
	}
	return ref.TS, nil
}

func (p *Poster) update(ctx context.Context, channel, ts string, m slackapi.Message) error {
	if err := p.held("chat.update", channel); err != nil {
		return fmt.Errorf("update %s/%s: %w", channel, ts, err)
	}
	err := p.pace.Do(ctx, "update:"+channel, func(ctx context.Context) error {
		return p.slack.UpdateMessage(ctx, slackapi.MessageRef{Channel: channel, TS: ts}, m)
	})
	if err != nil {
		return fmt.Errorf("update %s/%s: %w", channel, ts, later(channel, err))
	}
	return nil
}

// later turns the pacer's refusal into the alert.LaterError the service
// defers on; other errors pass unchanged.
func later(channel string, err error) error {
	var busy *BusyError
	if errors.As(err, &busy) {
		return &alert.LaterError{Channel: channel, At: busy.Next}
	}
	return err
}

// RenderRecord renders an alert record as its Slack message: Render
// with with tokken's state (mention while open and not silenced,
// acknowledgement, silence) and a flapping counter.
func RenderRecord(r alert.Record, now time.Time, view Options) slackapi.Message {
	st := State{AckedBy: r.AckedBy, AckedAt: r.AckedAt}
	if r.Silenced(now) {
		st.SilencedBy, st.SilencedUntil = r.SilencedBy, r.SilencedUntil
	} else {
		st.Mention = r.Decision.Mention
	}
	msg := Render(r.Alert, st, view)
	if r.Flaps > 0 && len(msg.Attachments) > 0 {
		text := fmt.Sprintf(":repeat: *Flapping:* opened %d times", r.Flaps+1)
		if !r.FlapSince.IsZero() {
			text += " since " + r.FlapSince.In(loc(view)).Format("15:04 MST")
		}
		att := &msg.Attachments[0]
		att.Blocks.BlockSet = append(att.Blocks.BlockSet,
			slack.NewContextBlock("flapping", slack.NewTextBlockObject(slack.MarkdownType, text, false, false)))
	}
	return slackapi.Message{Text: msg.Text, Attachments: msg.Attachments}
}

func loc(view Options) *time.Location {
	if view.Location != nil {
		return view.Location
	}
	l, err := time.LoadLocation(DefaultZone)
	if err != nil {
		return time.UTC
	}
	return l
}

// PostAlert implements alert.Notifier.
func (p *Poster) PostAlert(ctx context.Context, channel string, r alert.Record) (string, error) {
	return p.post(ctx, channel, RenderRecord(r, p.now(), p.view))
}

// UpdateAlert implements alert.Notifier.
func (p *Poster) UpdateAlert(ctx context.Context, channel, ts string, r alert.Record) error {
	return p.update(ctx, channel, ts, RenderRecord(r, p.now(), p.view))
}

// PostThread implements alert.Notifier: the lines become one reply.
func (p *Poster) PostThread(ctx context.Context, channel, ts string, lines []alert.Line) error {
	if len(lines) == 0 {
		return nil
	}
	text := make([]string, 0, len(lines))
	for _, l := range lines {
		text = append(text, RenderLine(l, p.view))
	}
	_, err := p.post(ctx, channel, slackapi.Message{Text: strings.Join(text, "\n"), ThreadTS: ts})
	return err
}

// MaxReplyText bounds the text of one thread reply, in characters: Slack
// truncates a message's text past 40,000.
const MaxReplyText = 40000

// FitLines implements alert.LineFitter: how many of lines, from the first,
// PostThread can send in one reply within MaxReplyText (as rendered, mrkdwn
// escapes included); at least 1.
func (p *Poster) FitLines(lines []alert.Line) int {
	n, size := 0, 0
	for _, l := range lines {
		add := utf8.RuneCountInString(RenderLine(l, p.view))
		if n > 0 {
			add++ // the newline joining it
		}
		if n > 0 && size+add > MaxReplyText {
			break
		}
		n, size = n+1, size+add
	}
	return n
}

var _ alert.LineFitter = (*Poster)(nil)

// RenderLine renders one thread line as mrkdwn.
func RenderLine(l alert.Line, view Options) string {
	when := ""
	if !l.At.IsZero() {
		when = l.At.In(loc(view)).Format("15:04") + " "
	}
	who := mrkdwn.Mention(l.Actor)
	if who == "" {
		who = "someone"
	}
	status := func() string {
		if l.Alert == nil {
			return ""
		}
		return StatusLine(*l.Alert, view)
	}
	switch l.Kind {
	case alert.LineStatus, alert.LineResolved:
		return status()
	case alert.LineResend:
		return status() + " _(notified again)_"
	case alert.LineReopened:
		return ":repeat: reopened · " + status()
	case alert.LineAck:
		return when + ":eyes: Acknowledged by " + who
	case alert.LineSilenced:
		s := when + ":no_bell: Silenced by " + who + " until " + l.Until.In(loc(view)).Format("01/02 15:04 MST")
		if r := strings.TrimSpace(l.Text); r != "" {
			s += " — " + mrkdwn.Escape(mrkdwn.Truncate(r, 200))
		}
		return s
	case alert.LineUnsilence:
		return when + ":bell: Silence ended by " + who
	case alert.LineCloseReq:
		return when + ":white_check_mark: " + who + " asked Mackerel to close this alert"
	case alert.LineNew:
		if l.Alert == nil {
			return when + "new alert"
		}
		a := *l.Alert
		title := mrkdwn.Escape(Title(a))
		if a.URL != "" {
			title = mrkdwn.Link(a.URL, Title(a))
		}
		return "• " + title + " · " + status()
	case alert.LineNoticeNew:
		if l.Notice == nil {
			return when + "notice"
		}
		t := mrkdwn.Escape(l.Notice.Title)
		if l.Notice.URL != "" {
			t = mrkdwn.Link(l.Notice.URL, l.Notice.Title)
		}
		return "• " + when + t
	}
	return when + mrkdwn.Escape(mrkdwn.Truncate(l.Text, 500))
}

// PostNotice implements alert.Notifier.
func (p *Poster) PostNotice(ctx context.Context, channel string, n alert.Notice) (string, error) {
	msg := RenderNotice(n, p.view)
	return p.post(ctx, channel, slackapi.Message{Text: msg.Text, Attachments: msg.Attachments})
}

// PostStorm implements alert.Notifier.
func (p *Poster) PostStorm(ctx context.Context, channel string, st alert.Storm) (string, error) {
	return p.post(ctx, channel, RenderStorm(st, p.view))
}

// UpdateStorm implements alert.Notifier.
func (p *Poster) UpdateStorm(ctx context.Context, channel, ts string, st alert.Storm) error {
	return p.update(ctx, channel, ts, RenderStorm(st, p.view))
}

// RenderStorm renders a storm summary: how many alerts since when, by
// status, how many resolved, the busiest monitors.
func RenderStorm(st alert.Storm, view Options) slackapi.Message {
	l := loc(view)
	text := fmt.Sprintf(":rotating_light: *Alert storm:* %d new alerts in this channel since %s — each one is listed in the thread",
		st.New, st.Started.In(l).Format("15:04 MST"))
	var lines []string
	var by []string
	for _, s := range []alert.Status{alert.StatusCritical, alert.StatusUnknown, alert.StatusWarning, alert.StatusOK} {
		if n := st.ByStatus[s]; n > 0 {
			by = append(by, fmt.Sprintf("%d %s", n, s.Word()))
		}
	}
	if len(by) > 0 {
		lines = append(lines, "*By status:* "+strings.Join(by, " · "))
	}
	lines = append(lines, fmt.Sprintf("*Resolved since:* %d of %d", st.Resolved, st.New))
	if st.Notices > 0 {
		lines = append(lines, fmt.Sprintf("*Other events:* %d", st.Notices))
	}
	if top := st.TopMonitors(5); len(top) > 0 {
		var ms []string
		for _, m := range top {
			ms = append(ms, fmt.Sprintf("%s (%d)", mrkdwn.Escape(mrkdwn.Truncate(m.Monitor, 80)), m.Count))
		}
		lines = append(lines, "*Top monitors:* "+strings.Join(ms, ", "))
	}
	lines = append(lines, fmt.Sprintf("*Last alert:* %s", st.Last.In(l).Format("15:04:05 MST")))
	color := ColorCritical
	if st.New > 0 && st.Resolved >= st.New {
		color = ColorResolved
	}
	ctx := "tokken groups alerts while more than the threshold arrive per minute; alerts get their own messages again after a quiet spell."
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Join(lines, "\n"), false, false), nil, nil),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, ctx, false, false)),
	}
	return slackapi.Message{Text: text, Attachments: []slack.Attachment{{
		Color: color, Fallback: fmt.Sprintf("Alert storm: %d new alerts", st.New), Blocks: slack.Blocks{BlockSet: blocks},
	}}}
}
