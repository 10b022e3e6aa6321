package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Job kinds of the alert lifecycle.
const (
	// JobDelivery processes one stored Delivery (payload: its id).
	JobDelivery = "alert.delivery"
	// JobSync brings Slack in line with a record, notice or storm.
	JobSync = "alert.sync"
	// JobReport raises one of tokken's own alerts (payload: the Alert);
	// see Report.
	JobReport = "alert.report"
)

// Notifier shows alerts in Slack. handlers/alertui implements it with
// Mackerel-style rendering, per-channel pacing (about one message per
// second per channel) and Slack's Retry-After honoured; an error means the
// message was not shown and the job is retried, except a *LaterError (the
// channel's next slot is ahead): then what waits is flushed at that slot
// by a JobFlush, and no worker waits for it.
type Notifier interface {
	// PostAlert posts r's top-level message to channel and returns its ts.
	PostAlert(ctx context.Context, channel string, r Record) (string, error)
	// UpdateAlert re-renders the message at channel/ts from r (chat.update).
	UpdateAlert(ctx context.Context, channel, ts string, r Record) error
	// PostThread posts lines as one reply in the thread of channel/ts.
	PostThread(ctx context.Context, channel, ts string, lines []Line) error
	// PostNotice posts a notice plainly and returns its ts.
	PostNotice(ctx context.Context, channel string, n Notice) (string, error)
	// PostStorm posts a storm summary and returns its ts; UpdateStorm
	// re-renders it with the latest counts.
	PostStorm(ctx context.Context, channel string, st Storm) (string, error)
	UpdateStorm(ctx context.Context, channel, ts string, st Storm) error
}

// LineFitter is implemented by a Notifier whose thread replies are bounded
// in size: FitLines reports how many of lines, from the first, fit in one
// PostThread reply (at least 1 for a non-empty slice).
type LineFitter interface {
	FitLines(lines []Line) int
}

// Defaults of Options fields left zero.
const (
	DefaultNotifyInterval = 10 * time.Minute
	DefaultFlapWindow     = 15 * time.Minute
	DefaultStormThreshold = 10
	DefaultStormWindow    = time.Minute
	DefaultStormQuiet     = 5 * time.Minute
	DefaultLeaseTTL       = time.Minute
	// MaxLinesPerPost is how many thread lines go in one Slack reply about
	// one alert.
	MaxLinesPerPost = 25
	// MaxStormLinesPerPost is how many storm thread lines go in one reply
	// at most; a Notifier that is a LineFitter may take fewer (Slack's
	// text limit). A storm's thread drains one reply per post slot, so
	// the bigger the batch, the sooner it is complete.
	MaxStormLinesPerPost = 250
	// maxRawKept bounds the raw payload kept with a delivery (DynamoDB
	// items are at most 400 KB).
	maxRawKept = 256 << 10
)

// Options configure a Service.
type Options struct {
	Store    bot.Store // required
	Queue    bot.Queue // required: delivery and sync jobs
	Notifier Notifier  // required
	// Routes decide channel, mention and drop; nil routes everything to
	// DefaultChannel.
	Routes *Routes
	// Timers, when set, re-render a silenced alert when its silence ends.
	Timers bot.Timers
	// DefaultChannel takes alerts no route gives a channel; OpsChannel
	// takes tokken's own alerts in that case (DefaultChannel if empty).
	DefaultChannel, OpsChannel string

	// NotifyInterval: an identical re-send within it is not shown at all;
	// after it, re-sends go to the thread.
	NotifyInterval time.Duration
	// FlapWindow: an alert about the same monitor and target that opens
	// again within it after closing reuses the earlier message.
	FlapWindow time.Duration
	// Past StormThreshold new alerts in one channel within StormWindow, the
	// channel gets one storm summary, and new alerts go to its thread until
	// StormQuiet passes without one.
	StormThreshold int
	StormWindow    time.Duration
	StormQuiet     time.Duration
	// LeaseTTL bounds how long a crashed worker can hold a record.
	LeaseTTL time.Duration

	Now func() time.Time
	Log *slog.Logger
}

// Service is the alert lifecycle: it stores every delivery, keeps one
// record per alert with conditional writes, decides what Slack shows
// (one message per alert, updated in place; re-sends in the thread;
// flapping and storms collapsed; silences and drop routes respected) and
// drives the Notifier. All methods are safe for concurrent use.
type Service struct {
	o Options
}

// NewService checks o and fills its defaults.
func NewService(o Options) (*Service, error) {
	if o.Store == nil || o.Queue == nil || o.Notifier == nil {
		return nil, errors.New("alert service: needs a store, a queue and a notifier")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.NotifyInterval, DefaultNotifyInterval)
	def(&o.FlapWindow, DefaultFlapWindow)
	def(&o.StormWindow, DefaultStormWindow)
	def(&o.StormQuiet, DefaultStormQuiet)
	def(&o.LeaseTTL, DefaultLeaseTTL)
	if o.StormThreshold <= 0 {
		o.StormThreshold = DefaultStormThreshold
	}
	if o.OpsChannel == "" {
		o.OpsChannel = o.DefaultChannel
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Service{o: o}, nil
}

// Register adds the lifecycle's job handlers to mux.
func (s *Service) Register(mux *bot.JobMux) {
	mux.Handle(JobDelivery, s.handleDelivery)
	mux.Handle(JobSync, s.handleSync)
	mux.Handle(JobReport, s.handleReport)
	mux.Handle(JobFlush, s.handleFlush)
}

func (s *Service) now() time.Time { return s.o.Now() }

// Ingest stores ev as a delivery and queues its processing. It returns
// once the delivery is durable, so a webhook may answer 2xx. id, when not
// empty, is the source's message id (SNS MessageId, EventBridge id): a
// redelivery with the same id is stored once. via names the entry point.
func (s *Service) Ingest(ctx context.Context, via, id string, ev Event) (string, error) {
	if (ev.Alert == nil) == (ev.Notice == nil) {
		return "", fmt.Errorf("ingest %s: an event carries exactly one alert or notice", via)
	}
	now := s.now()
	key := via + ":" + id
	if id == "" {
		key = now.UTC().Format("20060102T150405.000000000Z") + "-" + via + "-" + bot.NewID("")
	}
	d := Delivery{ID: key, Via: via, ReceivedAt: now, Event: ev}
	d.RawDropped = dropLargeRaw(&d.Event)
	err := bot.Table[Delivery]{Store: s.o.Store, Kind: KindDelivery}.Create(ctx, key, d, DeliveryTTL)
	if err != nil && !errors.Is(err, bot.ErrConflict) {
		return "", fmt.Errorf("ingest %s: store delivery: %w", via, err)
	}
	j, err := bot.NewJob("alert-delivery/"+key, JobDelivery, deliveryJob{ID: key})
	if err != nil {
		return "", err
	}
	if err := s.o.Queue.Enqueue(ctx, j); err != nil {
		return "", fmt.Errorf("ingest %s: queue delivery %s: %w", via, key, err)
	}
	return key, nil
}

// dropLargeRaw removes a raw payload too large to store and returns its
// size (0 when kept).
func dropLargeRaw(ev *Event) int {
	switch {
	case ev.Alert != nil && len(ev.Alert.Raw) > maxRawKept:
		a := *ev.Alert
		n := len(a.Raw)
		a.Raw = nil
		ev.Alert = &a
		return n
	case ev.Notice != nil && len(ev.Notice.Raw) > maxRawKept:
		nt := *ev.Notice
		n := len(nt.Raw)
		nt.Raw = nil
		ev.Notice = &nt
		return n
	}
	return 0
}

type deliveryJob struct {
	ID string `json:"id"`
}

type syncJob struct {
	Key    string `json:"key,omitempty"`    // an alert record
	Notice string `json:"notice,omitempty"` // a notice record
	Storm  string `json:"storm,omitempty"`  // a channel's storm
	// Touch re-renders the alert even if nothing changed (a silence
	// ended).
	Touch bool `json:"touch,omitempty"`
}

func (s *Service) handleDelivery(ctx context.Context, j bot.Job) error {
	var p deliveryJob
	if err := j.Decode(&p); err != nil {
		return err
	}
	d, err := get[Delivery](ctx, s.o.Store, KindDelivery, p.ID)
	if errors.Is(err, bot.ErrNotFound) {
		return bot.Permanent(fmt.Errorf("alert delivery %s: not stored (expired?)", p.ID))
	}
	if err != nil {
		return err
	}
	return s.process(ctx, d)
}

// process applies a stored delivery and shows the result.
func (s *Service) process(ctx context.Context, d Delivery) error {
	switch {
	case d.Event.Alert != nil:
		if d.Event.Alert.Key == "" {
			return bot.Permanent(fmt.Errorf("alert delivery %s: alert without key", d.ID))
		}
		if err := s.applyAlert(ctx, d); err != nil {
			return fmt.Errorf("apply delivery %s: %w", d.ID, err)
		}
		return s.syncRecord(ctx, d.Event.Alert.Key)
	case d.Event.Notice != nil:
		if d.Event.Notice.Key == "" {
			return bot.Permanent(fmt.Errorf("alert delivery %s: notice without key", d.ID))
		}
		if err := s.applyNotice(ctx, d); err != nil {
			return fmt.Errorf("apply delivery %s: %w", d.ID, err)
		}
		return s.syncNotice(ctx, d.Event.Notice.Key)
	}
	return bot.Permanent(fmt.Errorf("alert delivery %s: empty event", d.ID))
}

func (s *Service) handleSync(ctx context.Context, j bot.Job) error {
	var p syncJob
	if err := j.Decode(&p); err != nil {
		return err
	}
	if p == (syncJob{}) {
		return bot.Permanent(fmt.Errorf("alert sync job %s: names nothing", j.ID))
	}
	return s.runSync(ctx, p)
}

// runSync brings Slack in line with what p names.
func (s *Service) runSync(ctx context.Context, p syncJob) error {
	switch {
	case p.Key != "":
		if p.Touch {
			_, err := upsert(ctx, s.o.Store, KindRecord, p.Key, RecordTTL, func(r *Record, exists bool) error {
				if !exists {
					return bot.ErrNoChange
				}
				r.Rev++
				return nil
			})
			if err != nil {
				return err
			}
		}
		return s.syncRecord(ctx, p.Key)
	case p.Notice != "":
		return s.syncNotice(ctx, p.Notice)
	case p.Storm != "":
		return s.syncStorm(ctx, p.Storm)
	}
	return nil
}

func (s *Service) enqueueSync(ctx context.Context, p syncJob) error {
	id := "alert-sync/" + p.Key + p.Notice + p.Storm + "/" + bot.NewID("")
	j, err := bot.NewJob(id, JobSync, p)
	if err != nil {
		return err
	}
	if err := s.o.Queue.Enqueue(ctx, j); err != nil {
		return fmt.Errorf("queue alert sync: %w", err)
	}
	return nil
}

// route decides where a goes. Alerts no route gives a channel go to the
// default channel; tokken's own alerts that only the default route took go
// to the ops channel.
func (s *Service) route(a Alert) Decision {
	d := s.o.Routes.Route(a)
	if d.Drop {
		return d
	}
	byDefault := d.Channel == "" || strings.HasPrefix(d.Rule, "default")
	switch {
	case a.Source == SourceTokken && byDefault && s.o.OpsChannel != "":
		d.Channel = s.o.OpsChannel // no route named tokken's own alerts: operators' channel
	case d.Channel == "":
		d.Channel = s.o.DefaultChannel
	}
	return d
}

// applyAlert folds one delivery into the alert's record: the state
// machine of the lifecycle. It is idempotent per delivery id.
func (s *Service) applyAlert(ctx context.Context, d Delivery) error {
	silences, err := s.ActiveSilences(ctx)
	if err != nil {
		return err
	}
	a := slim(*d.Event.Alert)
	_, err = upsert(ctx, s.o.Store, KindRecord, a.Key, RecordTTL, func(r *Record, exists bool) error {
		now := s.now()
		if exists && !r.markApplied(d.ID) {
			return bot.ErrNoChange
		}
		r.Deliveries++
		r.LastDelivery = d.ReceivedAt
		if !exists {
			r.markApplied(d.ID)
			r.Created = now
			s.newEpisode(r, a, silences, now)
			return nil
		}
		prev := r.Alert
		if at, pat := eventTime(a), eventTime(prev); !at.IsZero() && !pat.IsZero() && at.Before(pat) {
			return nil // an older state arriving late: recorded as applied, shown nowhere
		}
		switch {
		case !prev.Open && a.Open:
			reopenedAt := a.OpenedAt
			if reopenedAt.IsZero() {
				reopenedAt = now
			}
			if r.Placed && !prev.ClosedAt.IsZero() && reopenedAt.Sub(prev.ClosedAt) <= s.o.FlapWindow {
				r.Flaps++
				if r.FlapSince.IsZero() {
					r.FlapSince = prev.OpenedAt
				}
				r.AckedBy, r.AckedAt = "", time.Time{}
				s.setAlert(r, a)
				r.addLine(Line{Kind: LineReopened, At: now, Alert: lineAlert(a)})
				r.Rev++
				r.LastNotified = now
				return nil
			}
			s.newEpisode(r, a, silences, now)
		case prev.Open && !a.Open:
			if !prev.OpenedAt.IsZero() {
				a.OpenedAt = prev.OpenedAt // the close payload may not say when it opened
			}
			if a.ClosedAt.IsZero() {
				a.ClosedAt = now
			}
			r.Alert = a
			r.Decision.Mention = ""
			r.addLine(Line{Kind: LineResolved, At: now, Alert: lineAlert(a)})
			r.Rev++
		case prev.Open && a.Open && prev.Status != a.Status:
			s.setAlert(r, a)
			r.addLine(Line{Kind: LineStatus, At: now, Alert: lineAlert(r.Alert)})
			r.Rev++
			r.LastNotified = now
		case prev.Open && a.Open:
			identical := prev.Message == a.Message && sameValue(prev.Metric.Value, a.Metric.Value)
			s.setAlert(r, a)
			if r.Silenced(now) || (identical && now.Sub(r.LastNotified) < s.o.NotifyInterval) {
				return nil // nothing new to say
			}
			r.addLine(Line{Kind: LineResend, At: now, Alert: lineAlert(r.Alert)})
			r.LastNotified = now
		}
		return nil
	})
	return err
}

// newEpisode starts r afresh for a (a new alert, or a closed one opening
// again after the flap window): a new message, silences re-evaluated.
func (s *Service) newEpisode(r *Record, a Alert, silences []Silence, now time.Time) {
	keep := Record{Created: r.Created, Applied: r.Applied, Deliveries: r.Deliveries,
		LastDelivery: r.LastDelivery, LineSeq: r.LineSeq, Rev: r.Rev + 1, Shown: r.Rev,
		Lease: r.Lease, LeaseOwner: r.LeaseOwner}
	*r = keep
	r.Alert = a
	r.Decision = s.route(a)
	r.Alert.Environment = r.Decision.Environment
	r.LastNotified = now
	for _, sil := range silences {
		if sil.Active(now) && sil.Scope.Matches(a) {
			r.SilenceID, r.SilencedBy, r.SilencedUntil = sil.ID, sil.By, sil.Until
			break
		}
	}
}

// setAlert replaces the alert of an ongoing episode, keeping when it opened
// and where it is shown.
func (s *Service) setAlert(r *Record, a Alert) {
	if !r.Alert.OpenedAt.IsZero() {
		a.OpenedAt = r.Alert.OpenedAt
	}
	r.Alert = a
	d := s.route(a)
	if r.Placed {
		d.Channel, d.Drop = r.Channel, false // a shown alert stays where it is
	}
	r.Decision = d
	r.Alert.Environment = d.Environment
}

func sameValue(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// needsWork reports whether Slack is behind r.
func (r Record) needsWork(now time.Time) bool {
	return (!r.Placed && r.Suppressed(now) == "") || r.Shown != r.Rev || len(r.Pending) > 0
}

// errBusy reports that another worker holds a lease.
var errBusy = errors.New("busy")

// maxRounds bounds one job's sync loop; what is left is queued again.
const maxRounds = 500

// syncRecord brings Slack in line with the record under key. One worker at
// a time holds the record's lease; a worker that finds it held leaves (the
// holder re-reads before releasing, so it picks up every change written
// meanwhile).
func (s *Service) syncRecord(ctx context.Context, key string) error {
	owner := bot.NewID("w-")
	for round := 0; ; round++ {
		if round == maxRounds {
			if err := s.release(ctx, key, owner); err != nil {
				return err
			}
			return s.enqueueSync(ctx, syncJob{Key: key})
		}
		work := false
		rec, err := upsert(ctx, s.o.Store, KindRecord, key, RecordTTL, func(r *Record, exists bool) error {
			now := s.now()
			work = false
			if !exists {
				return bot.ErrNoChange
			}
			if r.LeaseOwner != owner && r.Lease.After(now) {
				return bot.ErrNoChange
			}
			if !r.needsWork(now) {
				if r.LeaseOwner == "" {
					return bot.ErrNoChange
				}
				r.Lease, r.LeaseOwner = time.Time{}, ""
				return nil
			}
			work = true
			r.Lease, r.LeaseOwner = now.Add(s.o.LeaseTTL), owner
			return nil
		})
		if err != nil || !work {
			return err
		}
		res, showErr := s.show(ctx, rec)
		done := false
		_, err = upsert(ctx, s.o.Store, KindRecord, key, RecordTTL, func(r *Record, exists bool) error {
			if !exists {
				return bot.ErrNoChange
			}
			res.applyTo(r)
			done = showErr == nil && !r.needsWork(s.now())
			if (showErr != nil || done) && r.LeaseOwner == owner {
				r.Lease, r.LeaseOwner = time.Time{}, "" // nothing left: release in the same write
			}
			return nil
		})
		if le, ok := asLater(showErr); ok && err == nil {
			return s.deferSync(ctx, le, syncJob{Key: key}) // the lease was released above
		}
		if showErr != nil {
			return errors.Join(fmt.Errorf("show alert %s: %w", key, showErr), err)
		}
		if err != nil || done {
			return err
		}
	}
}

func (s *Service) release(ctx context.Context, key, owner string) error {
	_, err := upsert(ctx, s.o.Store, KindRecord, key, RecordTTL, func(r *Record, exists bool) error {
		if !exists || r.LeaseOwner != owner {
			return bot.ErrNoChange
		}
		r.Lease, r.LeaseOwner = time.Time{}, ""
		return nil
	})
	return err
}

// shown is what one round of show achieved, written back to the record.
type shown struct {
	placed             bool
	own                bool // the storm check gave it its own message
	channel, ts, storm string
	flaps              int
	flapSince          time.Time
	rev                int64 // the Rev now showing (0: unchanged)
	lineSeq            int64 // lines up to this Seq are posted (or dropped)
}

func (sh shown) applyTo(r *Record) {
	if sh.own && !r.Placed {
		r.Own = true
	}
	if sh.placed && !r.Placed {
		r.Placed, r.Channel, r.TS, r.Storm = true, sh.channel, sh.ts, sh.storm
		if sh.flaps > r.Flaps {
			r.Flaps, r.FlapSince = sh.flaps, sh.flapSince
		}
	}
	if sh.rev > r.Shown {
		r.Shown = sh.rev
	}
	if sh.lineSeq > 0 {
		r.Pending = slices.DeleteFunc(r.Pending, func(l Line) bool { return l.Seq <= sh.lineSeq })
	}
}

func lastSeq(lines []Line) int64 {
	if len(lines) == 0 {
		return 0
	}
	return lines[len(lines)-1].Seq
}

// show does the Slack side of one snapshot of a record.
func (s *Service) show(ctx context.Context, r Record) (shown, error) {
	var res shown
	now := s.now()
	if why := r.Suppressed(now); why != "" {
		s.o.Log.DebugContext(ctx, "alert not posted", "alert", r.Alert.Key, "why", why)
		return shown{rev: r.Rev, lineSeq: lastSeq(r.Pending)}, nil
	}
	justPosted := false
	if !r.Placed {
		var err error
		justPosted, err = s.place(ctx, &r)
		res.own = r.Own
		if r.Placed {
			res.placed, res.channel, res.ts, res.storm = true, r.Channel, r.TS, r.Storm
			res.flaps, res.flapSince = r.Flaps, r.FlapSince
		}
		if err != nil {
			return res, err
		}
	}
	if r.Storm != "" {
		err := s.toStorm(ctx, r)
		if err == nil {
			res.rev, res.lineSeq = r.Rev, lastSeq(r.Pending)
		}
		return res, err
	}
	if justPosted {
		// The new message shows the current state; earlier lines are history
		// nobody saw the start of.
		res.rev, res.lineSeq = r.Rev, lastSeq(r.Pending)
		return res, s.noteSubject(ctx, r)
	}
	if r.Shown != r.Rev {
		if err := s.o.Notifier.UpdateAlert(ctx, r.Channel, r.TS, r); err != nil {
			return res, err
		}
		res.rev = r.Rev
		if err := s.noteSubject(ctx, r); err != nil {
			return res, err
		}
	}
	for batch := range slices.Chunk(r.Pending, MaxLinesPerPost) {
		if err := s.o.Notifier.PostThread(ctx, r.Channel, r.TS, batch); err != nil {
			return res, err
		}
		res.lineSeq = lastSeq(batch)
	}
	return res, nil
}

// place gives a new alert its message: the message of a flapping
// predecessor, a storm thread, or a new top-level message. posted reports
// the last case (the message already shows r).
func (s *Service) place(ctx context.Context, r *Record) (posted bool, err error) {
	channel := r.Decision.Channel
	if r.Alert.Open {
		subj, err := get[subjectState](ctx, s.o.Store, KindSubject, subjectKey(r.Alert))
		if err != nil && !errors.Is(err, bot.ErrNotFound) {
			return false, err
		}
		opened := r.Alert.OpenedAt
		if opened.IsZero() {
			opened = s.now()
		}
		if err == nil && subj.Key != r.Alert.Key && subj.TS != "" && subj.Channel == channel &&
			!subj.ClosedAt.IsZero() && opened.Sub(subj.ClosedAt) <= s.o.FlapWindow && !opened.Before(subj.ClosedAt) {
			// Placed only once the line is out: a post deferred to the
			// channel's next slot (or failed) places it again then.
			line := Line{Kind: LineReopened, At: s.now(), Alert: lineAlert(r.Alert)}
			if err := s.o.Notifier.PostThread(ctx, subj.Channel, subj.TS, []Line{line}); err != nil {
				return false, err
			}
			r.Placed, r.Channel, r.TS = true, subj.Channel, subj.TS
			r.Flaps = subj.Flaps + 1
			r.FlapSince = subj.FlapSince
			if r.FlapSince.IsZero() {
				r.FlapSince = subj.OpenedAt
			}
			return false, nil
		}
	}
	if !r.Own {
		member := stormMember{key: r.Alert.Key, status: r.Alert.Status, monitor: r.Alert.Monitor,
			line: Line{Kind: LineNew, At: s.now(), Alert: lineAlert(r.Alert)}}
		id, err := s.joinStorm(ctx, channel, member)
		if err != nil {
			return false, err
		}
		if id != "" {
			r.Placed, r.Channel, r.Storm = true, channel, id
			return false, nil
		}
		r.Own = true
	}
	ts, err := s.o.Notifier.PostAlert(ctx, channel, *r)
	if err != nil {
		return false, err
	}
	r.Placed, r.Channel, r.TS = true, channel, ts
	return true, nil
}

// subjectState is the last message about one monitor on one target.
type subjectState struct {
	Key       string    `json:"key"` // the alert that owns the message
	Channel   string    `json:"channel"`
	TS        string    `json:"ts"`
	OpenedAt  time.Time `json:"opened_at,omitzero"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	Flaps     int       `json:"flaps,omitempty"`
	FlapSince time.Time `json:"flap_since,omitzero"`
}

// subjectKey names what flapping is about: the same monitor on the same
// target from the same source and organisation.
func subjectKey(a Alert) string {
	return strings.Join([]string{string(a.Source), a.Org, a.Monitor, a.Target()}, "|")
}

// noteSubject remembers r's message for flapping detection.
func (s *Service) noteSubject(ctx context.Context, r Record) error {
	if r.TS == "" {
		return nil
	}
	_, err := upsert(ctx, s.o.Store, KindSubject, subjectKey(r.Alert), 2*s.o.FlapWindow+24*time.Hour, func(v *subjectState, exists bool) error {
		if exists && v.Key != r.Alert.Key && v.TS != r.TS && v.OpenedAt.After(r.Alert.OpenedAt) {
			return bot.ErrNoChange // a newer alert owns the subject
		}
		*v = subjectState{Key: r.Alert.Key, Channel: r.Channel, TS: r.TS, OpenedAt: r.Alert.OpenedAt,
			Flaps: r.Flaps, FlapSince: r.FlapSince}
		if !r.Alert.Open {
			v.ClosedAt = r.Alert.ClosedAt
		}
		return nil
	})
	return err
}

// applyNotice stores a notice once per key.
func (s *Service) applyNotice(ctx context.Context, d Delivery) error {
	n := *d.Event.Notice
	n.Raw = nil
	silences, err := s.ActiveSilences(ctx)
	if err != nil {
		return err
	}
	_, err = upsert(ctx, s.o.Store, KindNotice, n.Key, RecordTTL, func(r *NoticeRecord, exists bool) error {
		if exists {
			return bot.ErrNoChange
		}
		now := s.now()
		r.Notice, r.Created = n, now
		r.Decision = s.o.Routes.RouteNotice(n)
		if r.Decision.Channel == "" && !r.Decision.Drop {
			r.Decision.Channel = s.o.DefaultChannel
		}
		for _, sil := range silences {
			if sil.Active(now) && sil.Scope.MatchesNotice(n) {
				r.Decision.Drop, r.Decision.Note = true, "silenced by "+sil.ID
				break
			}
		}
		return nil
	})
	return err
}

// syncNotice posts a notice once (or puts it in its channel's storm).
func (s *Service) syncNotice(ctx context.Context, key string) error {
	owner := bot.NewID("w-")
	work := false
	rec, err := upsert(ctx, s.o.Store, KindNotice, key, RecordTTL, func(r *NoticeRecord, exists bool) error {
		now := s.now()
		work = false
		if !exists || r.Placed || r.Decision.Drop || r.Decision.Channel == "" {
			return bot.ErrNoChange
		}
		if r.LeaseOwner != owner && r.Lease.After(now) {
			return bot.ErrNoChange
		}
		work = true
		r.Lease, r.LeaseOwner = now.Add(s.o.LeaseTTL), owner
		return nil
	})
	if err != nil || !work {
		return err
	}
	var ts, storm string
	channel := rec.Decision.Channel
	n := rec.Notice
	n.Memo = ""
	if !rec.Own {
		storm, err = s.joinStorm(ctx, channel, stormMember{key: key, notice: true, monitor: rec.Notice.Monitor,
			line: Line{Kind: LineNoticeNew, At: s.now(), Notice: &n}})
	}
	own := err == nil && storm == ""
	if own {
		ts, err = s.o.Notifier.PostNotice(ctx, channel, rec.Notice)
	}
	_, uerr := upsert(ctx, s.o.Store, KindNotice, key, RecordTTL, func(r *NoticeRecord, exists bool) error {
		if !exists {
			return bot.ErrNoChange
		}
		if own {
			r.Own = true
		}
		if err == nil {
			r.Placed, r.Channel, r.TS, r.Storm = true, channel, ts, storm
		}
		if r.LeaseOwner == owner {
			r.Lease, r.LeaseOwner = time.Time{}, ""
		}
		return nil
	})
	if le, ok := asLater(err); ok && uerr == nil {
		return s.deferSync(ctx, le, syncJob{Notice: key})
	}
	if err != nil {
		return errors.Join(fmt.Errorf("show notice %s: %w", key, err), uerr)
	}
	if uerr != nil {
		return uerr
	}
	if storm != "" {
		return s.syncStorm(ctx, channel)
	}
	return nil
}

// Get returns the record of the alert with key; the error matches
// bot.ErrNotFound for an unknown key.
func (s *Service) Get(ctx context.Context, key string) (Record, error) {
	return get[Record](ctx, s.o.Store, KindRecord, key)
}

// OpenAlerts returns up to limit open alerts, most severe and most recent
// first.
func (s *Service) OpenAlerts(ctx context.Context, limit int) ([]Record, error) {
	all, err := list[Record](ctx, s.o.Store, KindRecord, bot.KeyRange{}, 0)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	open := slices.DeleteFunc(all, func(r Record) bool { return !r.Alert.Open })
	slices.SortFunc(open, func(a, b Record) int {
		if d := b.Alert.Status.Rank() - a.Alert.Status.Rank(); d != 0 {
			return d
		}
		return b.Alert.OpenedAt.Compare(a.Alert.OpenedAt)
	})
	if limit > 0 && len(open) > limit {
		open = open[:limit]
	}
	return open, nil
}

// Errors of on-call actions; handlers show them to the user.
var (
	ErrUnknownAlert = errors.New("tokken does not know this alert (it may have expired)")
	ErrClosedAlert  = errors.New("this alert is already closed")
	ErrAlreadyAcked = errors.New("this alert is already acknowledged")
)

// Ack records that user acknowledged the alert, shows it on the message
// and in its thread.
func (s *Service) Ack(ctx context.Context, key, user string) (Record, error) {
	rec, err := upsert(ctx, s.o.Store, KindRecord, key, RecordTTL, func(r *Record, exists bool) error {
		switch {
		case !exists:
			return ErrUnknownAlert
		case !r.Alert.Open:
			return ErrClosedAlert
		case r.AckedBy != "":
			return ErrAlreadyAcked
		}
		now := s.now()
		r.AckedBy, r.AckedAt = user, now
		r.addLine(Line{Kind: LineAck, At: now, Actor: user})
		r.Rev++
		return nil
	})
	if err != nil {
		return rec, err
	}
	return rec, s.enqueueSync(ctx, syncJob{Key: key})
}

// Note adds a line to the alert's thread (e.g. "close requested by …").
func (s *Service) Note(ctx context.Context, key string, l Line) error {
	_, err := upsert(ctx, s.o.Store, KindRecord, key, RecordTTL, func(r *Record, exists bool) error {
		if !exists {
			return ErrUnknownAlert
		}
		if l.At.IsZero() {
			l.At = s.now()
		}
		r.addLine(l)
		return nil
	})
	if err != nil {
		return err
	}
	return s.enqueueSync(ctx, syncJob{Key: key})
}

// Sweep finds alerts, notices and storms whose Slack side fell behind (a
// worker crashed holding a lease, a post kept failing) and syncs them. It
// runs on the reconcile schedule.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	var errs []error
	recs, err := bot.Table[Record]{Store: s.o.Store, Kind: KindRecord}.List(ctx, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("alert sweep: %w", err)
	}
	for _, r := range recs {
		if r.Value.needsWork(now) && !r.Value.Lease.After(now) {
			errs = append(errs, s.syncRecord(ctx, r.Key))
		}
	}
	notices, err := bot.Table[NoticeRecord]{Store: s.o.Store, Kind: KindNotice}.List(ctx, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("alert sweep: %w", err)
	}
	for _, n := range notices {
		if !n.Value.Placed && !n.Value.Decision.Drop && !n.Value.Lease.After(now) {
			errs = append(errs, s.syncNotice(ctx, n.Key))
		}
	}
	storms, err := bot.Table[Storm]{Store: s.o.Store, Kind: KindStorm}.List(ctx, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("alert sweep: %w", err)
	}
	for _, st := range storms {
		if st.Value.needsWork() && !st.Value.Lease.After(now) {
			errs = append(errs, s.syncStorm(ctx, st.Key))
		}
	}
	return errors.Join(errs...)
}

// Report raises one of tokken's own alerts (see Operational) through the
// alert pipeline: it queues a job, so any feature holding the job queue can
// report "revoke failed" or "DLQ not empty" without depending on the alert
// service. Reporting the same check and subject again updates one message;
// a StatusOK report closes it.
func Report(ctx context.Context, q bot.Queue, a Alert) error {
	if a.Source != SourceTokken || a.Key == "" {
		return fmt.Errorf("report alert %q: only tokken's own alerts (alert.Operational) are reported", a.Key)
	}
	at := a.StatusChangedAt
	if at.IsZero() {
		at = time.Now()
	}
	j, err := bot.NewJob(fmt.Sprintf("alert-report/%s/%s/%d", a.Key, a.Status, at.UnixNano()), JobReport, a)
	if err != nil {
		return err
	}
	if err := q.Enqueue(ctx, j); err != nil {
		return fmt.Errorf("report alert %s: %w", a.Key, err)
	}
	return nil
}

func (s *Service) handleReport(ctx context.Context, j bot.Job) error {
	var a Alert
	if err := j.Decode(&a); err != nil {
		return err
	}
	if a.Source != SourceTokken || a.Key == "" {
		return bot.Permanent(fmt.Errorf("alert report %s: not a tokken alert", j.ID))
	}
	now := s.now()
	d := Delivery{ID: "tokken:" + j.ID, Via: "tokken", ReceivedAt: now, Event: Event{Kind: KindAlert, Alert: &a}}
	err := bot.Table[Delivery]{Store: s.o.Store, Kind: KindDelivery}.Create(ctx, d.ID, d, DeliveryTTL)
	if err != nil && !errors.Is(err, bot.ErrConflict) {
		return fmt.Errorf("alert report %s: store: %w", j.ID, err)
	}
	return s.process(ctx, d)
}
