package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tokken/tokken/bot"
)

// Storm is a burst of alerts in one channel: past Options.StormThreshold
// new alerts within Options.StormWindow, the channel gets one summary
// message that keeps updating with counts, and every alert of the burst is
// listed in its thread instead of getting its own message. The storm lasts
// until Options.StormQuiet passes without a new alert.
type Storm struct {
	ID      string    `json:"id"` // "<channel>/<start, unix ms>"
	Channel string    `json:"channel"`
	TS      string    `json:"ts,omitempty"` // the summary message, once posted
	Started time.Time `json:"started"`
	Last    time.Time `json:"last"`
	// New counts alerts in the storm, Notices notices, Resolved the
	// alerts among them that closed since.
	New      int            `json:"new"`
	Notices  int            `json:"notices,omitempty"`
	Resolved int            `json:"resolved,omitempty"`
	ByStatus map[Status]int `json:"by_status,omitempty"`
	// Monitors counts alerts per monitor (at most maxStormMonitors
	// names; the rest are counted under "" ).
	Monitors map[string]int `json:"monitors,omitempty"`

	// Rev changes with the counts; Shown is the Rev the summary shows.
	// Lines counts thread lines added; LinesDone those known posted.
	Rev   int64 `json:"rev"`
	Shown int64 `json:"shown"`
	// Updated is when the summary was last posted or updated.
	Updated   time.Time `json:"updated,omitzero"`
	Lines     int64     `json:"lines"`
	LinesDone int64     `json:"lines_done"`

	Lease      time.Time `json:"lease,omitzero"`
	LeaseOwner string    `json:"lease_owner,omitempty"`
}

const maxStormMonitors = 50

// stormUpdateEvery spaces the summary's updates while its thread is still
// being posted.
const stormUpdateEvery = 5 * time.Second

// TopMonitors returns up to n monitor names with the most alerts, most
// first (ties by name).
func (st Storm) TopMonitors(n int) []MonitorCount {
	out := make([]MonitorCount, 0, len(st.Monitors))
	for name, c := range st.Monitors {
		if name != "" {
			out = append(out, MonitorCount{name, c})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Monitor < out[j].Monitor
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// MonitorCount is one line of a storm summary's breakdown.
type MonitorCount struct {
	Monitor string
	Count   int
}

func (st Storm) needsWork() bool {
	return st.ID != "" && (st.TS == "" || st.Shown != st.Rev || st.Lines != st.LinesDone)
}

type stormMember struct {
	key     string
	notice  bool
	status  Status
	monitor string
	line    Line // its first line in the storm thread
}

// rateCount is the number of new alerts in one channel and window.
type rateCount struct {
	Count int `json:"count"`
}

// joinStorm counts a new alert (or notice) for channel and, if the channel
// is in a storm (or this one starts it), adds it and returns the storm id;
// "" means it gets its own message. The rate is counted in fixed windows
// of StormWindow, the current and the previous one together.
func (s *Service) joinStorm(ctx context.Context, channel string, m stormMember) (string, error) {
	now := s.now()
	bucket := now.Truncate(s.o.StormWindow).Unix()
	rate, err := upsert(ctx, s.o.Store, KindRate, channel+"/"+strconv.FormatInt(bucket, 10), rateTTL, func(r *rateCount, _ bool) error {
		r.Count++
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("count alerts in %s: %w", channel, err)
	}
	// The previous window counts too, so a burst straddling a window
	// boundary is still one burst.
	prevKey := channel + "/" + strconv.FormatInt(bucket-int64(s.o.StormWindow/time.Second), 10)
	if prev, err := get[rateCount](ctx, s.o.Store, KindRate, prevKey); err == nil {
		rate.Count += prev.Count
	} else if !errors.Is(err, bot.ErrNotFound) {
		return "", fmt.Errorf("count alerts in %s: %w", channel, err)
	}
	// The member's line is stored first and counted with the join, so a
	// holder that sees the count finds the line.
	lineKey := s.lineKey(channel, m.key, m.line)
	if err := s.putLine(ctx, lineKey, m.line); err != nil {
		return "", err
	}
	joined := ""
	_, err = upsert(ctx, s.o.Store, KindStorm, channel, RecordTTL, func(st *Storm, exists bool) error {
		joined = ""
		active := exists && st.ID != "" && now.Sub(st.Last) < s.o.StormQuiet
		if !active {
			if rate.Count <= s.o.StormThreshold {
				return bot.ErrNoChange
			}
			if exists && st.needsWork() {
				// The last storm's summary is still being brought up to
				// date; a new one would orphan its lines. Join it instead.
				active = true
			} else {
				*st = Storm{ID: channel + "/" + strconv.FormatInt(now.UnixMilli(), 10), Channel: channel, Started: now}
			}
		}
		st.Last = now
		if m.notice {
			st.Notices++
		} else {
			st.New++
			if st.ByStatus == nil {
				st.ByStatus = map[Status]int{}
			}
			st.ByStatus[m.status]++
		}
		if st.Monitors == nil {
			st.Monitors = map[string]int{}
		}
		name := m.monitor
		if _, known := st.Monitors[name]; !known && len(st.Monitors) >= maxStormMonitors {
			name = ""
		}
		st.Monitors[name]++
		st.Rev++
		st.Lines++
		joined = st.ID
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("join storm in %s: %w", channel, err)
	}
	if joined == "" {
		if err := s.o.Store.Delete(ctx, KindLine, lineKey, 0); err != nil {
			return "", fmt.Errorf("drop storm line: %w", err)
		}
	}
	return joined, nil
}

// toStorm moves a storm member's pending lines to the storm thread and
// brings the storm up to date.
func (s *Service) toStorm(ctx context.Context, r Record) error {
	resolved := 0
	for _, l := range r.Pending {
		if l.Kind == LineResolved {
			resolved++
		}
	}
	if err := s.addStormLines(ctx, r.Channel, r.Alert.Key, r.Pending, resolved); err != nil {
		return err
	}
	return s.syncStorm(ctx, r.Channel)
}

// lineKey is where a storm thread line waits: per channel, in time order,
// unique per member and line, so a retry stores nothing twice. Lines wait
// per channel (not per storm), so whatever storm is current posts them.
func (s *Service) lineKey(channel, member string, l Line) string {
	h := sha256.Sum256([]byte(member))
	return fmt.Sprintf("%s/%019d/%s/%d", channel, l.At.UnixNano(), hex.EncodeToString(h[:8]), l.Seq)
}

func (s *Service) putLine(ctx context.Context, key string, l Line) error {
	err := bot.Table[Line]{Store: s.o.Store, Kind: KindLine}.Create(ctx, key, l, lineTTL)
	if err != nil && !errors.Is(err, bot.ErrConflict) {
		return fmt.Errorf("storm line: %w", err)
	}
	return nil
}

// addStormLines stores lines of a storm member and counts them, and
// resolved members, on the channel's storm.
func (s *Service) addStormLines(ctx context.Context, channel, member string, lines []Line, resolved int) error {
	if len(lines) == 0 && resolved == 0 {
		return nil
	}
	for _, l := range lines {
		if err := s.putLine(ctx, s.lineKey(channel, member, l), l); err != nil {
			return err
		}
	}
	_, err := upsert(ctx, s.o.Store, KindStorm, channel, RecordTTL, func(st *Storm, exists bool) error {
		if !exists {
			return bot.ErrNoChange
		}
		st.Lines += int64(len(lines))
		if resolved > 0 {
			st.Resolved += resolved
			st.Rev++
		}
		return nil
	})
	return err
}

// syncStorm brings a channel's storm summary and thread up to date, with
// the same lease discipline as syncRecord: many deliveries, one worker
// posting, each round showing everything written so far.
func (s *Service) syncStorm(ctx context.Context, channel string) error {
	owner := bot.NewID("w-")
	for round := 0; ; round++ {
		if round == maxRounds {
			if err := s.releaseStorm(ctx, channel, owner); err != nil {
				return err
			}
			return s.enqueueSync(ctx, syncJob{Storm: channel})
		}
		work := false
		st, err := upsert(ctx, s.o.Store, KindStorm, channel, RecordTTL, func(st *Storm, exists bool) error {
			now := s.now()
			work = false
			if !exists || (st.LeaseOwner != owner && st.Lease.After(now)) {
				return bot.ErrNoChange
			}
			if !st.needsWork() {
				if st.LeaseOwner == "" {
					return bot.ErrNoChange
				}
				st.Lease, st.LeaseOwner = time.Time{}, ""
				return nil
			}
			work = true
			st.Lease, st.LeaseOwner = now.Add(s.o.LeaseTTL), owner
			return nil
		})
		if err != nil || !work {
			return err
		}
		ts, shownRev, linesDone, showErr := s.showStorm(ctx, st)
		done := false
		_, err = upsert(ctx, s.o.Store, KindStorm, channel, RecordTTL, func(cur *Storm, exists bool) error {
			if !exists || cur.ID != st.ID {
				return bot.ErrNoChange
			}
			if cur.TS == "" {
				cur.TS = ts
			}
			if shownRev > cur.Shown {
				cur.Shown, cur.Updated = shownRev, s.now()
			}
			cur.LinesDone = max(cur.LinesDone, linesDone)
			done = showErr == nil && !cur.needsWork()
			if (showErr != nil || done) && cur.LeaseOwner == owner {
				cur.Lease, cur.LeaseOwner = time.Time{}, "" // nothing left: release in the same write
			}
			return nil
		})
		if le, ok := asLater(showErr); ok && err == nil {
			return s.deferSync(ctx, le, syncJob{Storm: channel}) // the lease was released above
		}
		if showErr != nil {
			return errors.Join(fmt.Errorf("show storm in %s: %w", channel, showErr), err)
		}
		if err != nil || done {
			return err
		}
	}
}

func (s *Service) releaseStorm(ctx context.Context, channel, owner string) error {
	_, err := upsert(ctx, s.o.Store, KindStorm, channel, RecordTTL, func(st *Storm, exists bool) error {
		if !exists || st.LeaseOwner != owner {
			return bot.ErrNoChange
		}
		st.Lease, st.LeaseOwner = time.Time{}, ""
		return nil
	})
	return err
}

// showStorm does one round of Slack work for a storm snapshot: post or
// update the summary, then post one batch of thread lines. It returns the
// summary ts, the Rev shown and, when every line counted in the snapshot
// was posted, that count.
func (s *Service) showStorm(ctx context.Context, st Storm) (ts string, rev, linesDone int64, err error) {
	ts = st.TS
	switch {
	case ts == "":
		if ts, err = s.o.Notifier.PostStorm(ctx, st.Channel, st); err != nil {
			return "", 0, 0, err
		}
		rev = st.Rev
	case st.Shown != st.Rev && (st.Lines == st.LinesDone || s.now().Sub(st.Updated) >= stormUpdateEvery):
		// While lines are still being posted, the counts are refreshed
		// every stormUpdateEvery; the last round always brings them up to
		// date.
		if err = s.o.Notifier.UpdateStorm(ctx, st.Channel, ts, st); err != nil {
			return ts, 0, 0, err
		}
		rev = st.Rev
	}
	if st.Lines == st.LinesDone {
		return ts, rev, 0, nil
	}
	recs, err := s.o.Store.List(ctx, KindLine, bot.PrefixRange(st.Channel+"/"), MaxStormLinesPerPost+1)
	if err != nil {
		return ts, rev, 0, fmt.Errorf("list storm lines: %w", err)
	}
	// Undecodable lines are dropped with the batch they were listed in.
	lines := make([]Line, 0, len(recs))
	ofLine := make([]int, 0, len(recs)) // the rec index of each line
	for i, rec := range recs {
		var l Line
		if json.Unmarshal(rec.Data, &l) == nil {
			lines, ofLine = append(lines, l), append(ofLine, i)
		}
	}
	fit := min(len(lines), MaxStormLinesPerPost)
	if f, ok := s.o.Notifier.(LineFitter); ok && fit > 0 {
		fit = max(1, min(fit, f.FitLines(lines[:fit])))
	}
	batch := recs // everything listed was posted (or is undecodable)
	if fit < len(lines) {
		batch = recs[:ofLine[fit]]
	}
	if fit > 0 {
		if err := s.o.Notifier.PostThread(ctx, st.Channel, ts, lines[:fit]); err != nil {
			return ts, rev, 0, err
		}
	}
	for _, rec := range batch {
		if err := s.o.Store.Delete(ctx, KindLine, rec.Key, 0); err != nil {
			return ts, rev, 0, fmt.Errorf("delete posted storm line: %w", err)
		}
	}
	if len(batch) == len(recs) && len(recs) <= MaxStormLinesPerPost {
		linesDone = st.Lines // everything counted before the snapshot was listed
	}
	return ts, rev, linesDone, nil
}
