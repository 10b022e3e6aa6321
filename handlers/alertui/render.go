package alertui

// Rendering is pure: the same alert, state and options give the same
// message, so the lifecycle can re-render and chat.update at every change
// (acknowledged, silenced, resolved) and golden files pin the output. Button
// values carry only the alert key; the state behind them lives in the store.

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Asia/Tokyo must load on Lambda images without a zoneinfo database

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// Action ids of the buttons on an alert message. Every button's value is
// the alert key (alert.Alert.Key) and nothing else.
const (
	ActionAck             = "alert.ack"
	ActionSilence1h       = "alert.silence.1h"
	ActionSilence4h       = "alert.silence.4h"
	ActionSilenceTomorrow = "alert.silence.tomorrow" // until 09:00 tomorrow in Options.Location
	ActionClose           = "alert.close"            // Mackerel alerts only: closes via Mackerel's API
	ActionRequestAccess   = "alert.request_access"   // opens the access modal for the alert's instance
)

// BlockActions is the block id of the buttons row.
const BlockActions = "alert_actions"

// Attachment colours. Firing, acknowledged, resolved and silenced follow
// common practice (Grafana OnCall); host status colours are Mackerel's.
const (
	ColorCritical = "#a30200"
	ColorWarning  = "#f2c744"
	ColorUnknown  = "#8a6ea8"
	ColorResolved = "#2eb886"
	ColorAcked    = "#daa038"
	ColorSilenced = "#dddddd"
	ColorNotice   = "#c6cacc"
)

var hostStatusColors = map[string]string{
	"working":     "#4dbddb",
	"standby":     "#70bf16",
	"maintenance": "#f4bd0b",
	"poweroff":    "#c6cacc",
}

// DefaultZone is the time zone used when Options.Location is nil.
const DefaultZone = "Asia/Tokyo"

// DefaultMaxRoles is how many roles are listed before "+N more".
const DefaultMaxRoles = 5

// Slack limits the renderer stays within.
const (
	maxSectionText = 3000
	maxMemo        = 2000 // runes before escaping, leaving room for entities and "> "
	maxMessage     = 1000
	maxButtonValue = 2000
)

// Options configure rendering. The zero value is usable.
type Options struct {
	// Location is the zone times are shown in; nil means Asia/Tokyo.
	Location *time.Location
	// MaxRoles caps the role lines; 0 means DefaultMaxRoles.
	MaxRoles int
}

func (o Options) loc() *time.Location {
	if o.Location != nil {
		return o.Location
	}
	loc, err := time.LoadLocation(DefaultZone)
	if err != nil { // cannot happen with time/tzdata linked in
		return time.UTC
	}
	return loc
}

func (o Options) maxRoles() int {
	if o.MaxRoles > 0 {
		return o.MaxRoles
	}
	return DefaultMaxRoles
}

// State is what tokken knows about an alert beyond the source's payload:
// the routing mention and on-call actions taken in Slack.
type State struct {
	// Mention is the routing decision's mention (alert.Decision.Mention);
	// it is rendered only while the alert is open and not silenced.
	Mention string
	// AckedBy is the Slack user id who acknowledged, at AckedAt.
	AckedBy string
	AckedAt time.Time
	// SilencedBy silenced the alert until SilencedUntil (zero: not
	// silenced).
	SilencedBy    string
	SilencedUntil time.Time
}

// Message is a rendered Slack message: Text is the top-level text (shown,
// used for push and keyword notifications, carries the mention) and the
// attachment carries the colour bar and the blocks.
type Message struct {
	Text        string             `json:"text"`
	Attachments []slack.Attachment `json:"attachments"`
}

// MsgOptions returns the message as slack-go options for chat.postMessage
// and chat.update.
func (m Message) MsgOptions() []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionAttachments(m.Attachments...)}
}

// Title is the plain (unescaped) title of an alert:
// "[org] CRITICAL: <monitor> — <host or service>". Escape it before putting
// it in mrkdwn.
func Title(a alert.Alert) string {
	var b strings.Builder
	if a.Org != "" {
		b.WriteString("[" + a.Org + "] ")
	}
	b.WriteString(a.Status.Word() + ": " + a.Monitor)
	if t := a.Target(); t != "" {
		b.WriteString(" — " + t)
	}
	return b.String()
}

// Render renders a as its one Slack message in its current state: firing,
// acknowledged, silenced, or resolved (green, "OK — resolved after 12m",
// buttons removed).
func Render(a alert.Alert, st State, opt Options) Message {
	loc := opt.loc()
	silenced := !st.SilencedUntil.IsZero()
	acked := st.AckedBy != ""

	title := mrkdwn.Escape(Title(a))
	if a.URL != "" {
		title = mrkdwn.Link(a.URL, Title(a))
	}
	text := "*" + title + "*"
	if !a.Open {
		text += " — " + resolvedPhrase(a)
	}
	if m := mrkdwn.Mention(st.Mention); m != "" && a.Open && !silenced {
		text = m + " " + text
	}

	var lines []string
	lines = append(lines, statusLine(a, loc))
	lines = append(lines, targetLines(a, opt.maxRoles())...)
	if l := metricLine(a); l != "" {
		lines = append(lines, l)
	}
	switch msg := strings.TrimSpace(a.Message); {
	case msg == "":
	case a.Source == alert.SourceCloudWatch:
		// The alarm's state reason ("Threshold Crossed: 1 out of the last 1
		// datapoints …"): the line a responder reads first, shown even
		// when a metric line was read from it.
		lines = append(lines, "*Reason:* "+mrkdwn.Escape(mrkdwn.Truncate(msg, maxMessage)))
	case !hasMetricLine(a):
		lines = append(lines, "*Message:* "+mrkdwn.Escape(mrkdwn.Truncate(msg, maxMessage)))
	}
	if a.User != "" && !a.Open {
		lines = append(lines, "*Closed by:* "+mrkdwn.Escape(a.User)+trigger(a))
	}
	if acked {
		lines = append(lines, fmt.Sprintf("*Acknowledged* by <@%s>%s", slackID(st.AckedBy), at(st.AckedAt, loc)))
	}
	if silenced {
		lines = append(lines, fmt.Sprintf("*Silenced* by <@%s> until %s", slackID(st.SilencedBy), stamp(st.SilencedUntil, loc)))
	}

	blocks := []slack.Block{section(strings.Join(lines, "\n"))}
	if memo := mrkdwn.Quote(mrkdwn.Truncate(a.Memo, maxMemo)); memo != "" {
		blocks = append(blocks, section("*Memo*\n"+memo))
	}
	if a.ImageURL != "" && mrkdwn.SafeURL(a.ImageURL) {
		blocks = append(blocks, slack.NewImageBlock(a.ImageURL, "metric graph", "", nil))
	}
	if a.Open {
		if b := actions(a, acked, silenced); b != nil {
			blocks = append(blocks, b)
		}
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, contextLine(a), false, false)))

	color := statusColor(a.Status)
	switch {
	case !a.Open:
		color = ColorResolved
	case silenced:
		color = ColorSilenced
	case acked:
		color = ColorAcked
	}
	fallback := Title(a)
	if !a.Open {
		fallback += " — " + resolvedPhrase(a)
	}
	return Message{
		Text: text,
		Attachments: []slack.Attachment{{
			Color:    color,
			Fallback: mrkdwn.Escape(fallback),
			Blocks:   slack.Blocks{BlockSet: blocks},
		}},
	}
}

// StatusLine is a one-line summary for the alert's thread when it changes
// status or is re-sent: "14:05 JST WARNING → CPU % 75 > 70".
func StatusLine(a alert.Alert, opt Options) string {
	loc := opt.loc()
	when := a.StatusChangedAt
	if when.IsZero() {
		when = a.OpenedAt
	}
	if !a.Open && !a.ClosedAt.IsZero() {
		when = a.ClosedAt
	}
	var b strings.Builder
	if !when.IsZero() {
		t := when.In(loc)
		b.WriteString(t.Format("15:04 MST") + " ")
	}
	b.WriteString("*" + a.Status.Word() + "*")
	if !a.Open {
		b.WriteString(" — " + resolvedPhrase(a))
	}
	if l := metricLine(a); l != "" {
		b.WriteString(" · " + strings.TrimPrefix(l, "*Metric:* "))
	} else if msg := strings.TrimSpace(a.Message); msg != "" {
		b.WriteString(" · " + mrkdwn.Escape(mrkdwn.Truncate(firstLine(msg), 200)))
	}
	return b.String()
}

func resolvedPhrase(a alert.Alert) string {
	if d := a.Duration(); d > 0 {
		return "resolved after " + Duration(d)
	}
	return "resolved"
}

func statusColor(s alert.Status) string {
	switch s {
	case alert.StatusCritical:
		return ColorCritical
	case alert.StatusWarning:
		return ColorWarning
	case alert.StatusOK:
		return ColorResolved
	}
	return ColorUnknown
}

func section(text string) *slack.SectionBlock {
	if len([]rune(text)) > maxSectionText {
		text = string([]rune(text)[:maxSectionText-1]) + "…"
	}
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// statusLine: "*CRITICAL* from 06/03 14:00 JST" or
// "*OK* from 06/03 14:00 to 14:12 JST (12m)".
func statusLine(a alert.Alert, loc *time.Location) string {
	line := "*" + a.Status.Word() + "*"
	if !a.OpenedAt.IsZero() {
		from := a.OpenedAt.In(loc)
		line += " from " + from.Format("01/02 15:04")
		if !a.Open && !a.ClosedAt.IsZero() {
			to := a.ClosedAt.In(loc)
			layout := "15:04"
			if to.Format("01/02") != from.Format("01/02") {
				layout = "01/02 15:04"
			}
			line += " to " + to.Format(layout)
		}
		line += " " + from.Format("MST")
		if d := a.Duration(); d > 0 {
			line += " (" + Duration(d) + ")"
		}
	} else if !a.Open && !a.ClosedAt.IsZero() {
		line += " at " + stamp(a.ClosedAt, loc)
	}
	return line
}

func targetLines(a alert.Alert, maxRoles int) []string {
	var lines []string
	if h := a.Host; h != nil {
		name := h.Name
		if name == "" {
			name = h.ID
		}
		l := "*Host:* " + mrkdwn.Link(h.URL, name)
		if h.Status != "" {
			l += " (" + mrkdwn.Escape(h.Status) + ")"
		}
		if h.Retired {
			l += " (retired)"
		}
		if id := a.InstanceID(); id != "" && id != name {
			l += " · " + mrkdwn.Escape(id)
		}
		lines = append(lines, l)
		for i, r := range h.Roles {
			if i == maxRoles {
				lines = append(lines, fmt.Sprintf("*Role:* +%d more", len(h.Roles)-maxRoles))
				break
			}
			lines = append(lines, "*Role:* "+mrkdwn.Link(r.ServiceURL, "["+r.Service+"]")+" "+mrkdwn.Link(r.RoleURL, r.Role))
		}
	}
	if a.Service != "" {
		lines = append(lines, "*Service:* "+mrkdwn.Link(a.ServiceURL, a.Service))
	}
	return lines
}

// hasMetricLine reports whether the alert is a metric alert with something
// to show in the metric line.
func hasMetricLine(a alert.Alert) bool {
	return a.Metric.Value != nil
}

// metricLine: "*Metric:* CPU % 96.52 > 90" while firing; "CPU % 41.2" when
// OK (no operator or threshold, as Mackerel does); "" when there is no
// value (a manual close).
func metricLine(a alert.Alert) string {
	m := a.Metric
	if m.Value == nil {
		return ""
	}
	parts := []string{}
	if m.Label != "" {
		parts = append(parts, mrkdwn.Escape(m.Label))
	}
	parts = append(parts, Number(*m.Value))
	if a.Status != alert.StatusOK {
		th := m.Critical
		if a.Status == alert.StatusWarning || th == nil {
			if m.Warning != nil {
				th = m.Warning
			}
		}
		if th != nil && m.Operator != "" {
			parts = append(parts, mrkdwn.Escape(m.Operator), Number(*th))
		}
	}
	return "*Metric:* " + strings.Join(parts, " ")
}

func trigger(a alert.Alert) string {
	if a.Trigger == "" {
		return ""
	}
	return " (" + mrkdwn.Escape(a.Trigger) + ")"
}

func contextLine(a alert.Alert) string {
	src := map[alert.Source]string{
		alert.SourceMackerel: "Mackerel", alert.SourceCloudWatch: "CloudWatch", alert.SourceTokken: "tokken",
	}[a.Source]
	if src == "" {
		src = mrkdwn.Escape(string(a.Source))
	}
	parts := []string{src}
	switch {
	case a.Kind == alert.KindAlertGroup:
		parts = append(parts, "alert group")
	case a.Source == alert.SourceMackerel && a.MonitorType != "":
		parts = append(parts, mrkdwn.Escape(a.MonitorType)+" monitor")
	case a.MonitorType != "":
		parts = append(parts, mrkdwn.Escape(strings.ReplaceAll(a.MonitorType, "-", " ")))
	}
	if a.Source == alert.SourceCloudWatch && a.Region != "" {
		parts = append(parts, mrkdwn.Escape(a.Region))
	}
	if a.Trigger != "" && a.Open {
		parts = append(parts, "trigger: "+mrkdwn.Escape(a.Trigger))
	}
	return strings.Join(parts, " · ")
}

func actions(a alert.Alert, acked, silenced bool) *slack.ActionBlock {
	if a.Key == "" || len(a.Key) > maxButtonValue {
		return nil
	}
	button := func(id, label string) *slack.ButtonBlockElement {
		return slack.NewButtonBlockElement(id, a.Key, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
	}
	var els []slack.BlockElement
	if !acked {
		els = append(els, button(ActionAck, "Ack").WithStyle(slack.StylePrimary))
	}
	if !silenced {
		els = append(els,
			button(ActionSilence1h, "Silence 1h"),
			button(ActionSilence4h, "Silence 4h"),
			button(ActionSilenceTomorrow, "Silence until 09:00 tomorrow"))
	}
	if a.Source == alert.SourceMackerel && a.Kind == alert.KindAlert {
		confirm := slack.NewConfirmationBlockObject(
			slack.NewTextBlockObject(slack.PlainTextType, "Close this alert in Mackerel?", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "It stays closed until the monitor fires again.", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Close", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
		els = append(els, button(ActionClose, "Close").WithStyle(slack.StyleDanger).WithConfirm(confirm))
	}
	if a.InstanceID() != "" || (a.Source == alert.SourceMackerel && a.Host != nil && a.Host.Name != "") {
		els = append(els, button(ActionRequestAccess, "Request access to this host"))
	}
	if len(els) == 0 {
		return nil
	}
	return slack.NewActionBlock(BlockActions, els...)
}

// RenderNotice renders a non-alert event plainly: the title, the host with
// its status colour for host events, who did it, and the message or memo.
// Notices have no buttons and never mention.
func RenderNotice(n alert.Notice, opt Options) Message {
	loc := opt.loc()
	prefix := n.Org
	if prefix == "" {
		prefix = map[alert.Source]string{alert.SourceMackerel: "Mackerel", alert.SourceCloudWatch: "AWS"}[n.Source]
	}
	title := n.Title
	if prefix != "" {
		title = "[" + prefix + "] " + title
	}
	var lines []string
	if h := n.Host; h != nil {
		lines = append(lines, targetLines(alert.Alert{Host: h}, opt.maxRoles())...)
	}
	if n.Monitor != "" {
		lines = append(lines, "*Monitor:* "+mrkdwn.Escape(n.Monitor))
	}
	if msg := strings.TrimSpace(n.Message); msg != "" {
		lines = append(lines, mrkdwn.Quote(mrkdwn.Truncate(msg, maxMemo)))
	}
	if n.Kind == alert.KindUnknown {
		lines = append(lines, "tokken does not know this event type; the full payload is stored.")
	}
	blocks := []slack.Block{}
	if len(lines) > 0 {
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}
	ctx := []string{"event: " + mrkdwn.Escape(cmp.Or(n.Type, string(n.Kind)))}
	if !n.At.IsZero() {
		ctx = append(ctx, stamp(n.At, loc))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, strings.Join(ctx, " · "), false, false)))

	color := ColorNotice
	if n.Kind == alert.KindHostStatus && n.Host != nil {
		if c, ok := hostStatusColors[n.Host.Status]; ok {
			color = c
		}
	}
	text := mrkdwn.Escape(title)
	if n.URL != "" {
		text = mrkdwn.Link(n.URL, title)
	}
	return Message{
		Text: text,
		Attachments: []slack.Attachment{{
			Color: color, Fallback: mrkdwn.Escape(title), Blocks: slack.Blocks{BlockSet: blocks},
		}},
	}
}

// Number formats a metric value or threshold compactly: integers as
// integers, others with at most two decimals ("2.26"), tiny values with
// three significant digits.
func Number(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= 1e15:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) < 0.01:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Duration formats d for people: "45s", "12m", "1h 5m", "2d 3h".
func Duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

func stamp(t time.Time, loc *time.Location) string { return t.In(loc).Format("01/02 15:04 MST") }

func at(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return " at " + stamp(t, loc)
}

// slackID keeps only characters valid in a Slack id, so a stored value can
// never inject markup into a <@…> mention.
func slackID(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
