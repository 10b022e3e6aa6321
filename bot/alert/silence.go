package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Scope is what a silence covers. Every non-empty field must match the
// alert (patterns as in Match: case-insensitive, * and ? wildcards); a
// Scope with no field set is invalid, so no silence can mute everything.
type Scope struct {
	// Host matches the host name, host id or EC2 instance id.
	Host string `json:"host,omitempty"`
	// Role matches a role name ("web") or "service:role".
	Role    string `json:"role,omitempty"`
	Monitor string `json:"monitor,omitempty"`
}

// IsZero reports whether the scope names nothing.
func (s Scope) IsZero() bool { return s.Host == "" && s.Role == "" && s.Monitor == "" }

// String is the scope in /alerts syntax: "host:app01 monitor:CPU %".
func (s Scope) String() string {
	var parts []string
	if s.Host != "" {
		parts = append(parts, "host:"+s.Host)
	}
	if s.Role != "" {
		parts = append(parts, "role:"+s.Role)
	}
	if s.Monitor != "" {
		parts = append(parts, "monitor:"+s.Monitor)
	}
	return strings.Join(parts, " ")
}

// Matches reports whether the scope covers a.
func (s Scope) Matches(a Alert) bool {
	if s.IsZero() {
		return false
	}
	sub := alertSubject(a)
	return s.matches(sub)
}

// MatchesNotice reports whether the scope covers n (notices have hosts and
// monitors too: a silenced host's status changes are muted as well).
func (s Scope) MatchesNotice(n Notice) bool {
	if s.IsZero() {
		return false
	}
	return s.matches(noticeSubject(n))
}

func (s Scope) matches(sub subject) bool {
	if s.Host != "" && (len(sub.hosts) == 0 || !anyMatch([]string{s.Host}, sub.hosts...)) {
		return false
	}
	if s.Role != "" && !rolesMatch([]string{s.Role}, sub.roles) {
		return false
	}
	if s.Monitor != "" && (sub.monitor == "" || !Glob(s.Monitor, sub.monitor)) {
		return false
	}
	return true
}

// Silence is a tokken-side maintenance window: alerts it covers are
// stored but not posted until Until. A silence may also have created a
// Mackerel downtime (Downtime holds its id).
type Silence struct {
	ID      string    `json:"id"`
	Scope   Scope     `json:"scope"`
	Until   time.Time `json:"until"`
	By      string    `json:"by"` // Slack user id
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	// AlertKey is set when the silence came from an alert's button.
	AlertKey string `json:"alert_key,omitempty"`
	Downtime string `json:"downtime,omitempty"`
	// EndedBy and EndedAt are set when someone ended it early.
	EndedBy string    `json:"ended_by,omitempty"`
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// Active reports whether the silence is in force at now.
func (s Silence) Active(now time.Time) bool { return s.EndedAt.IsZero() && s.Until.After(now) }

// MaxSilence is the longest silence tokken accepts: longer ones are how
// alerts get forgotten.
const MaxSilence = 7 * 24 * time.Hour

// Validate checks a new silence.
func (s Silence) Validate(now time.Time) error {
	switch {
	case s.Scope.IsZero():
		return fmt.Errorf("a silence needs a host, role or monitor")
	case !s.Until.After(now):
		return fmt.Errorf("a silence must end in the future")
	case s.Until.Sub(now) > MaxSilence:
		return fmt.Errorf("a silence may last at most %s", MaxSilence)
	case s.By == "":
		return fmt.Errorf("a silence needs the user who set it")
	}
	return nil
}

// TomorrowAt returns the next day's hh:00 in loc after now: "until 09:00
// tomorrow" from a button. Nil loc means UTC.
func TomorrowAt(now time.Time, hour int, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day()+1, hour, 0, 0, 0, loc)
}

// ActiveSilences returns the silences in force now.
func (s *Service) ActiveSilences(ctx context.Context) ([]Silence, error) {
	all, err := list[Silence](ctx, s.o.Store, KindSilence, bot.KeyRange{}, 0)
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	now := s.now()
	return slices.DeleteFunc(all, func(sil Silence) bool { return !sil.Active(now) }), nil
}

// AddSilence validates and stores a new silence; alerts it covers that
// arrive from now on are stored but not posted. It returns the silence
// with its id.
func (s *Service) AddSilence(ctx context.Context, sil Silence) (Silence, error) {
	now := s.now()
	if err := sil.Validate(now); err != nil {
		return Silence{}, err
	}
	sil.ID = bot.NewID("s-")
	sil.Created = now
	ttl := sil.Until.Sub(now) + silenceKeep
	err := bot.Table[Silence]{Store: s.o.Store, Kind: KindSilence}.Create(ctx, sil.ID, sil, ttl)
	if err != nil {
		return Silence{}, fmt.Errorf("store silence: %w", err)
	}
	return sil, nil
}

// SetDowntime records the Mackerel downtime created for a silence.
func (s *Service) SetDowntime(ctx context.Context, id, downtime string) error {
	_, err := upsert(ctx, s.o.Store, KindSilence, id, 0, func(sil *Silence, exists bool) error {
		if !exists {
			return ErrUnknownSilence
		}
		sil.Downtime = downtime
		return nil
	})
	return err
}

// ErrUnknownSilence is returned for a silence id tokken does not know.
var ErrUnknownSilence = errors.New("no such silence")

// EndSilence ends silence id early. An alert silenced by its button is
// shown as live again.
func (s *Service) EndSilence(ctx context.Context, id, user string) (Silence, error) {
	now := s.now()
	sil, err := upsert(ctx, s.o.Store, KindSilence, id, 0, func(sil *Silence, exists bool) error {
		switch {
		case !exists:
			return ErrUnknownSilence
		case !sil.Active(now):
			return bot.ErrNoChange
		}
		sil.EndedBy, sil.EndedAt = user, now
		return nil
	})
	if err != nil {
		return sil, err
	}
	if sil.AlertKey == "" {
		return sil, nil
	}
	_, err = upsert(ctx, s.o.Store, KindRecord, sil.AlertKey, RecordTTL, func(r *Record, exists bool) error {
		if !exists || r.SilenceID != id {
			return bot.ErrNoChange
		}
		r.SilenceID, r.SilencedBy, r.SilencedUntil = "", "", time.Time{}
		r.addLine(Line{Kind: LineUnsilence, At: now, Actor: user})
		r.Rev++
		return nil
	})
	if err != nil {
		return sil, err
	}
	return sil, s.enqueueSync(ctx, syncJob{Key: sil.AlertKey})
}

// AlertScope is the narrowest scope covering a: its monitor on its host,
// or its monitor alone for alerts about a service.
func AlertScope(a Alert) Scope {
	sc := Scope{Monitor: a.Monitor}
	if a.Host != nil {
		sc.Host = firstOf(a.Host.Name, a.Host.InstanceID, a.Host.ID)
	}
	return sc
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// SilenceAlert silences the alert with key until until (from its
// buttons): a silence scoped to AlertScope, shown on the message, and a
// re-render when it ends (if Timers are configured).
func (s *Service) SilenceAlert(ctx context.Context, key, user string, until time.Time, reason string) (Silence, error) {
	rec, err := s.Get(ctx, key)
	if errors.Is(err, bot.ErrNotFound) {
		return Silence{}, ErrUnknownAlert
	}
	if err != nil {
		return Silence{}, err
	}
	if !rec.Alert.Open {
		return Silence{}, ErrClosedAlert
	}
	sil, err := s.AddSilence(ctx, Silence{Scope: AlertScope(rec.Alert), Until: until, By: user, Reason: reason, AlertKey: key})
	if err != nil {
		return Silence{}, err
	}
	now := s.now()
	_, err = upsert(ctx, s.o.Store, KindRecord, key, RecordTTL, func(r *Record, exists bool) error {
		if !exists {
			return ErrUnknownAlert
		}
		r.SilenceID, r.SilencedBy, r.SilencedUntil = sil.ID, user, until
		r.addLine(Line{Kind: LineSilenced, At: now, Actor: user, Until: until, Text: reason})
		r.Rev++
		return nil
	})
	if err != nil {
		return sil, err
	}
	if s.o.Timers != nil {
		j, jerr := bot.NewJob("alert-unsilence/"+key, JobSync, syncJob{Key: key, Touch: true})
		if jerr == nil {
			jerr = s.o.Timers.Schedule(ctx, bot.Timer{ID: "alert-unsilence/" + sil.ID, At: until, Job: j})
		}
		if jerr != nil {
			s.o.Log.WarnContext(ctx, "cannot schedule the re-render at the end of a silence", "alert", key, "err", jerr)
		}
	}
	return sil, s.enqueueSync(ctx, syncJob{Key: key})
}
