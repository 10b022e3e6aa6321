package alert

import (
	"slices"
	"time"
)

// Delivery is one inbound event exactly as tokken received it: every
// delivery is stored (kind KindDelivery) before the sender is answered, so
// nothing is lost whatever happens to its processing.
type Delivery struct {
	// ID is the store key: time-ordered for webhooks, derived from the
	// source's message id for SNS and EventBridge (so redeliveries
	// collapse).
	ID         string    `json:"id"`
	Via        string    `json:"via"` // "mackerel", "sns", "eventbridge", "tokken"
	ReceivedAt time.Time `json:"received_at"`
	Event      Event     `json:"event"`
	// RawDropped is the size of a payload too large to keep (its parsed
	// form is kept).
	RawDropped int `json:"raw_dropped,omitempty"`
}

// LineKind says what a thread line reports.
type LineKind string

// Thread line kinds.
const (
	LineStatus    LineKind = "status"    // status changed while open
	LineResolved  LineKind = "resolved"  // the alert closed
	LineResend    LineKind = "resend"    // the source notified again
	LineReopened  LineKind = "reopened"  // closed, then open again within the flap window
	LineAck       LineKind = "ack"       // acknowledged by Actor
	LineSilenced  LineKind = "silenced"  // silenced by Actor until Until
	LineCloseReq  LineKind = "close"     // Actor asked the source to close it
	LineNew       LineKind = "new"       // a new alert in a storm thread
	LineNoticeNew LineKind = "notice"    // a notice in a storm thread
	LineNote      LineKind = "note"      // free text (Text)
	LineUnsilence LineKind = "unsilence" // the silence ended early (Actor)
)

// Line is one thread reply waiting to be posted: a status change, a
// re-send, an on-call action. Alert is a slim copy of the alert at that
// moment (no raw payload or memo), so the line renders as it was.
type Line struct {
	Seq    int64     `json:"seq"`
	Kind   LineKind  `json:"kind"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor,omitempty"` // Slack user id
	Until  time.Time `json:"until,omitzero"`
	Text   string    `json:"text,omitempty"`
	Alert  *Alert    `json:"alert,omitempty"`
	Notice *Notice   `json:"notice,omitempty"`
}

// Record is tokken's state of one alert (one Alert.Key): the latest
// delivery, where it is shown, and what on-call did. It changes only by
// conditional writes, so retried and concurrent jobs cannot both apply a
// delivery or post its message twice.
type Record struct {
	Alert    Alert    `json:"alert"`
	Decision Decision `json:"decision"`

	// Channel and TS locate the top-level message once posted. Storm is
	// set instead when the alert lives in a storm summary's thread.
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
	Storm   string `json:"storm,omitempty"`
	// Placed is true once the alert was given a message (own, adopted
	// from a flapping predecessor, or a storm thread).
	Placed bool `json:"placed,omitempty"`
	// Own is set once the storm check gave the alert a message of its own
	// (it was counted then); a post deferred to the channel's next slot
	// keeps the decision instead of counting the alert again.
	Own bool `json:"own,omitempty"`

	// Flaps counts how often the alert reopened within the flap window;
	// FlapSince is when the first of those episodes opened.
	Flaps     int       `json:"flaps,omitempty"`
	FlapSince time.Time `json:"flap_since,omitzero"`

	AckedBy       string    `json:"acked_by,omitempty"`
	AckedAt       time.Time `json:"acked_at,omitzero"`
	SilenceID     string    `json:"silence_id,omitempty"`
	SilencedBy    string    `json:"silenced_by,omitempty"`
	SilencedUntil time.Time `json:"silenced_until,omitzero"`

	Created      time.Time `json:"created"`
	LastDelivery time.Time `json:"last_delivery"`
	LastNotified time.Time `json:"last_notified"`
	Deliveries   int       `json:"deliveries"`
	// Applied holds the ids of the latest deliveries applied, so a retried
	// job cannot apply one twice.
	Applied []string `json:"applied,omitempty"`

	// Rev increases whenever the top-level message should change; Shown
	// is the Rev it last showed. Pending are thread lines not yet posted.
	Rev     int64  `json:"rev"`
	Shown   int64  `json:"shown"`
	LineSeq int64  `json:"line_seq"`
	Pending []Line `json:"pending,omitempty"`

	// Lease serialises the Slack side: one worker at a time shows a
	// record; the others leave their changes for it to pick up.
	Lease      time.Time `json:"lease,omitzero"`
	LeaseOwner string    `json:"lease_owner,omitempty"`
}

// Silenced reports whether the alert is silenced at now.
func (r Record) Silenced(now time.Time) bool {
	return r.SilenceID != "" && r.SilencedUntil.After(now)
}

// Suppressed says why the alert is not posted ("" when it is): a drop
// route, an active silence, no channel, or tokken's own closed alert that
// was never shown (an all-clear for something nobody saw).
func (r Record) Suppressed(now time.Time) string {
	if r.Placed {
		return ""
	}
	switch {
	case r.Decision.Drop:
		return "dropped by " + r.Decision.Rule
	case r.Silenced(now):
		return "silenced by " + r.SilenceID
	case r.Decision.Channel == "":
		return "no channel configured"
	case r.Alert.Source == SourceTokken && !r.Alert.Open:
		return "all-clear for an alert never shown"
	}
	return ""
}

// addLine appends a thread line, keeping at most maxPending: on overflow
// the oldest lines are replaced by a note, so a record stays small.
func (r *Record) addLine(l Line) {
	r.LineSeq++
	l.Seq = r.LineSeq
	r.Pending = append(r.Pending, l)
	if len(r.Pending) > maxPending {
		drop := len(r.Pending) - maxPending + 1
		note := Line{Seq: r.Pending[drop-1].Seq, Kind: LineNote, At: l.At,
			Text: "(earlier updates were too many to post)"}
		r.Pending = append([]Line{note}, r.Pending[drop:]...)
	}
}

// maxPending bounds Record.Pending.
const maxPending = 50

// markApplied records delivery id; it reports false if it was applied
// before.
func (r *Record) markApplied(id string) bool {
	if slices.Contains(r.Applied, id) {
		return false
	}
	r.Applied = append(r.Applied, id)
	if len(r.Applied) > maxApplied {
		r.Applied = r.Applied[len(r.Applied)-maxApplied:]
	}
	return true
}

const maxApplied = 32

// NoticeRecord is the state of one notice (one Notice.Key).
type NoticeRecord struct {
	Notice     Notice    `json:"notice"`
	Decision   Decision  `json:"decision"`
	Channel    string    `json:"channel,omitempty"`
	TS         string    `json:"ts,omitempty"`
	Storm      string    `json:"storm,omitempty"`
	Placed     bool      `json:"placed,omitempty"`
	Own        bool      `json:"own,omitempty"` // as Record.Own
	Created    time.Time `json:"created"`
	Lease      time.Time `json:"lease,omitzero"`
	LeaseOwner string    `json:"lease_owner,omitempty"`
}

// slim returns a copy of a without what thread lines and records need not
// keep: the raw payload (kept in the Delivery).
func slim(a Alert) Alert {
	a.Raw = nil
	return a
}

// lineAlert is the smaller copy a thread line keeps.
func lineAlert(a Alert) *Alert {
	a.Raw, a.Memo, a.ImageURL = nil, "", ""
	return &a
}

// eventTime is when the source says a delivery's state began.
func eventTime(a Alert) time.Time {
	switch {
	case !a.Open && !a.ClosedAt.IsZero():
		return a.ClosedAt
	case !a.StatusChangedAt.IsZero():
		return a.StatusChangedAt
	}
	return a.OpenedAt
}
