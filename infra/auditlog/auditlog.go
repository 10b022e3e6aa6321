// Package auditlog is tokken's paper trail: a bot.Auditor that writes every
// audit event to the store (kind "audit", keys ordered by time so a time
// range is one key range), to the JSON log, and as one line to the audit
// channel; and Read, which `tokken audit` uses to print the trail back.
//
// The store write is the record: Record fails when it fails. The log line
// and the channel post are copies, and their failures are logged, not
// returned, so a Slack outage cannot make a state change look unaudited.
package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/slackapi"
)

// Kind is the store kind of audit events.
const Kind = "audit"

// keyTime is the time part of a key: fixed width, UTC, nanoseconds, so that
// byte order is time order.
const keyTime = "2006-01-02T15:04:05.000000000Z"

// maxSuffix bounds the suffixes tried when two events share a key.
const maxSuffix = 10

// Poster posts a channel message (*slackapi.Client).
type Poster interface {
	PostMessage(ctx context.Context, channel string, m slackapi.Message) (slackapi.MessageRef, error)
}

// Options configure a Log. The zero value writes to the store and
// slog.Default() only.
type Options struct {
	// Channel is the audit channel id; with Poster set, every event is
	// posted there as one line.
	Channel string
	Poster  Poster
	// Location is the zone of the times shown in the channel (default UTC).
	Location *time.Location
	Logger   *slog.Logger
}

// Log records audit events. It is safe for concurrent use.
type Log struct {
	store bot.Store
	opt   Options

	mu   sync.Mutex
	last time.Time // the latest key time used, to keep same-instant events in order
}

var _ bot.Auditor = (*Log)(nil)

// New returns a Log writing to store.
func New(store bot.Store, opt Options) *Log {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Log{store: store, opt: opt}
}

// key is the store key of e filed at at: its time, subject and action, so
// keys sort by time and a key names what it holds. Record appends "/<n>"
// when two events would share a key.
func key(at time.Time, e bot.AuditEvent) string {
	return at.UTC().Format(keyTime) + "/" + e.Subject + "/" + e.Action
}

// keyAt is the time e is filed under: its own, unless events recorded just
// before carry the same instant (one transition often appends several
// history rows at once), in which case it is nudged a nanosecond past them
// so that the trail reads in the order things happened.
func (l *Log) keyAt(at time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !at.After(l.last) && l.last.Sub(at) < time.Millisecond {
		at = l.last.Add(time.Nanosecond)
	}
	if at.After(l.last) {
		l.last = at
	}
	return at
}

// Record stores e, logs it and posts it to the audit channel. A zero At is
// set to now. The error reports a failed store write only.
func (l *Log) Record(ctx context.Context, e bot.AuditEvent) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event %s %s: %w", e.Action, e.Subject, err)
	}
	if err := l.put(ctx, key(l.keyAt(e.At), e), data); err != nil {
		return fmt.Errorf("store audit event %s %s: %w", e.Action, e.Subject, err)
	}
	l.opt.Logger.InfoContext(ctx, "audit", "audit_action", e.Action, "actor", e.Actor, "subject", e.Subject,
		"reason", e.Reason, "profile", e.Profile, "window_start", e.WindowStart, "window_end", e.WindowEnd,
		"detail", e.Detail, "at", e.At.UTC())
	if l.opt.Channel != "" && l.opt.Poster != nil {
		if _, err := l.opt.Poster.PostMessage(ctx, l.opt.Channel, slackapi.Message{Text: Line(e, l.opt.Location)}); err != nil {
			l.opt.Logger.WarnContext(ctx, "audit event not posted to the audit channel (it is stored)",
				"audit_action", e.Action, "subject", e.Subject, "channel", l.opt.Channel, "err", err)
		}
	}
	return nil
}

func (l *Log) put(ctx context.Context, key string, data []byte) error {
	for i := 0; i < maxSuffix; i++ {
		k := key
		if i > 0 {
			k = fmt.Sprintf("%s/%d", key, i)
		}
		_, err := l.store.Put(ctx, bot.Record{Kind: Kind, Key: k, Data: data})
		if err == nil {
			return nil
		}
		if !errors.Is(err, bot.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%d events already share key %s", maxSuffix, key)
}

// Line renders e as one mrkdwn line for the audit channel: time in loc,
// action, subject, actor, profile, window end, the session an event is
// about (its id and target: which shell was ended) and the reason. One event is
// exactly one line: every field is flattened (mrkdwn.OneLine) and escaped
// where it is placed, so a reason with line breaks cannot add lines that
// look like other events.
func Line(e bot.AuditEvent, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` *%s* `%s` by %s", e.At.In(loc).Format("2006-01-02 15:04:05 MST"),
		text(e.Action), text(e.Subject), actor(e.Actor))
	if e.Profile != "" {
		fmt.Fprintf(&b, " · %s", text(e.Profile))
	}
	if !e.WindowEnd.IsZero() {
		fmt.Fprintf(&b, " · window until %s", e.WindowEnd.In(loc).Format("15:04 MST"))
	}
	if r := e.Detail["requester"]; r != "" && r != e.Actor {
		fmt.Fprintf(&b, " · requester %s", actor(r))
	}
	if s := e.Detail["session"]; s != "" {
		fmt.Fprintf(&b, " · session %s on %s", text(s), text(e.Detail["target"]))
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " · “%s”", text(mrkdwn.Truncate(e.Reason, 300)))
	}
	return b.String()
}

// text is s as it may appear in a line: on one line, escaped.
func text(s string) string { return mrkdwn.Escape(mrkdwn.OneLine(s)) }

// actor renders a Slack user id as a mention and anything else as text.
func actor(id string) string {
	if m := mrkdwn.Mention(id); m != "" && (id[0] == 'U' || id[0] == 'W') {
		return m
	}
	return text(id)
}

// Query selects audit events for Read.
type Query struct {
	// Since and Until bound the event time (Until zero: no upper bound).
	Since, Until time.Time
	// Subject, when set, keeps only events about that request, operation
	// or alert id.
	Subject string
}

// Read returns the stored events matching q, oldest first.
func Read(ctx context.Context, store bot.Store, q Query) ([]bot.AuditEvent, error) {
	r := bot.KeyRange{From: q.Since.UTC().Format(keyTime)}
	if !q.Until.IsZero() {
		r.To = q.Until.UTC().Format(keyTime)
	}
	recs, err := store.List(ctx, Kind, r, 0)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	out := make([]bot.AuditEvent, 0, len(recs))
	for _, rec := range recs {
		var e bot.AuditEvent
		if err := json.Unmarshal(rec.Data, &e); err != nil {
			return nil, fmt.Errorf("read audit event %s: %w", rec.Key, err)
		}
		if q.Subject != "" && e.Subject != q.Subject {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}
