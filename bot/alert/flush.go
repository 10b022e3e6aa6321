package alert

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tokken/tokken/bot"
)

// JobFlush posts what waits for one channel's next Slack post slot
// (payload: the channel). Its id is "alert.flush/<channel>/<slot, unix
// ms>/<unique>" and it runs not before the slot. Requests for it coalesce
// through a KindFlushQueued claim: only the first deferral after a flush
// has listed its markers queues the next one. The id is unique so that no
// queue merges a new flush into one already running for the same slot
// (which has listed its markers already), leaving the claim with no
// flush behind it.
const JobFlush = "alert.flush"

// KindFlushQueued holds, per channel, the slot of the flush queued and
// not yet started: a deferral for that slot or a later one only leaves
// its marker, which that flush will list. A flush deletes the claim
// before it lists, so a deferral after the listing queues the next flush.
const KindFlushQueued = "alert_flush"

// flushClaimStale is how long past its slot a claim still holds: a flush
// that has not started by then (its job lost or delayed) no longer stops
// deferrals from queueing another.
const flushClaimStale = 30 * time.Second

// flushQueued is the value of a KindFlushQueued claim.
type flushQueued struct {
	At time.Time `json:"at"`
}

// KindWait marks what waits for a channel's flush: key
// "<channel>/<r|n|s>/<record, notice or storm key>/<deferral id>", value
// the sync to run. Every deferral writes a marker of its own, so a flush
// deletes exactly the markers it listed and ran: a marker written after
// the listing (the same sync deferred again, by this flush or by another
// worker) is never deleted by it, and store versions, which restart when
// a deleted document is written again, decide nothing.
const KindWait = "alert_wait"

// LaterError is what a Notifier returns when it sent nothing because the
// channel's next post slot (about one message per second per channel) is
// still ahead. The service then records what waits and queues one flush
// for the slot instead of holding a worker until then.
type LaterError struct {
	Channel string
	At      time.Time // the channel's next slot
}

func (e *LaterError) Error() string {
	return fmt.Sprintf("channel %s is paced: next post at %s", e.Channel, e.At.UTC().Format(time.RFC3339Nano))
}

func asLater(err error) (*LaterError, bool) {
	var le *LaterError
	if errors.As(err, &le) && le.Channel != "" {
		return le, true
	}
	return nil, false
}

type flushJob struct {
	Channel string `json:"channel"`
}

// waiting is the value of a KindWait marker.
type waiting struct {
	Sync syncJob `json:"sync"`
}

func (p syncJob) waitKey() string {
	switch {
	case p.Key != "":
		return "r/" + p.Key
	case p.Notice != "":
		return "n/" + p.Notice
	}
	return "s/" + p.Storm
}

// deferSync records that p waits for le's channel and queues the flush
// for the channel's next slot, unless one is queued for that slot or
// earlier and has not listed the markers yet.
func (s *Service) deferSync(ctx context.Context, le *LaterError, p syncJob) error {
	p.Touch = false // the Rev was raised already
	key := le.Channel + "/" + p.waitKey() + "/" + bot.NewID("")
	err := bot.Table[waiting]{Store: s.o.Store, Kind: KindWait}.Create(ctx, key, waiting{Sync: p}, lineTTL)
	if err != nil {
		return fmt.Errorf("defer alert sync to %s: %w", le.Channel, err)
	}
	// The marker is written first: a flush deletes the claim before it
	// lists, so a claim seen here belongs to a flush that will list it.
	queued := false
	_, err = upsert(ctx, s.o.Store, KindFlushQueued, le.Channel, time.Hour, func(q *flushQueued, exists bool) error {
		queued = exists && !q.At.After(le.At) && s.now().Sub(q.At) < flushClaimStale
		if queued {
			return bot.ErrNoChange
		}
		q.At = le.At
		return nil
	})
	if err == nil && queued {
		return nil
	}
	if err != nil {
		return fmt.Errorf("defer alert sync to %s: claim the flush: %w", le.Channel, err)
	}
	if err := s.queueFlush(ctx, le); err != nil {
		// Without its job the claim would hold deferrals back until it
		// is stale: drop it so that the retry queues the flush.
		if derr := s.o.Store.Delete(ctx, KindFlushQueued, le.Channel, 0); derr != nil && !errors.Is(derr, bot.ErrNotFound) {
			err = errors.Join(err, derr)
		}
		return err
	}
	return nil
}

// queueFlush queues the flush of le's channel at its slot.
func (s *Service) queueFlush(ctx context.Context, le *LaterError) error {
	id := JobFlush + "/" + le.Channel + "/" + strconv.FormatInt(le.At.UnixMilli(), 10) + "/" + bot.NewID("")
	j, err := bot.NewJob(id, JobFlush, flushJob{Channel: le.Channel})
	if err != nil {
		return err
	}
	j.NotBefore = le.At
	if err := s.o.Queue.Enqueue(ctx, j); err != nil {
		return fmt.Errorf("queue alert flush for %s: %w", le.Channel, err)
	}
	return nil
}

// handleFlush runs every sync waiting for the channel, in marker key
// order, each once however many markers name it. The first posts take the
// slot; the rest find the channel busy again and wait for the next flush,
// so each flush costs a worker only the time of its posts. A sync that
// finds its record leased by another worker is left to that worker, which
// finishes it, defers it under a marker of its own, or fails its job (and
// is retried).
func (s *Service) handleFlush(ctx context.Context, j bot.Job) error {
	var p flushJob
	if err := j.Decode(&p); err != nil {
		return err
	}
	if p.Channel == "" {
		return bot.Permanent(fmt.Errorf("alert flush job %s: no channel", j.ID))
	}
	// From here on every deferral is either listed below or queues a
	// flush of its own.
	if err := s.o.Store.Delete(ctx, KindFlushQueued, p.Channel, 0); err != nil && !errors.Is(err, bot.ErrNotFound) {
		return fmt.Errorf("alert flush %s: %w", p.Channel, err)
	}
	tab := bot.Table[waiting]{Store: s.o.Store, Kind: KindWait}
	ws, err := tab.List(ctx, bot.PrefixRange(p.Channel+"/"), 0)
	if err != nil {
		return fmt.Errorf("alert flush %s: %w", p.Channel, err)
	}
	var order []syncJob
	markers := map[syncJob][]string{}
	for _, w := range ws {
		sj := w.Value.Sync
		if _, ok := markers[sj]; !ok {
			order = append(order, sj)
		}
		markers[sj] = append(markers[sj], w.Key)
	}
	for _, sj := range order {
		if err := s.runSync(ctx, sj); err != nil {
			return fmt.Errorf("alert flush %s: %w", p.Channel, err)
		}
		// Done, or deferred again under a new marker.
		for _, key := range markers[sj] {
			err := s.o.Store.Delete(ctx, KindWait, key, 0)
			if err != nil && !errors.Is(err, bot.ErrNotFound) {
				return fmt.Errorf("alert flush %s: clear %s: %w", p.Channel, key, err)
			}
		}
	}
	return nil
}
