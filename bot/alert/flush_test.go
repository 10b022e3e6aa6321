package alert

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

// slotNotifier paces posts like handlers/alertui's Pacer: one per channel
// per interval, a *LaterError for a post whose slot is ahead.
type slotNotifier struct {
	*recNotifier
	now      func() time.Time
	interval time.Duration
	mu       sync.Mutex
	next     map[string]time.Time
	refused  int
}

func (n *slotNotifier) take(channel string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if at := n.next[channel]; at.After(now) {
		n.refused++
		return &LaterError{Channel: channel, At: at}
	}
	n.next[channel] = now.Add(n.interval)
	return nil
}

func (n *slotNotifier) PostAlert(ctx context.Context, channel string, r Record) (string, error) {
	if err := n.take(channel); err != nil {
		return "", err
	}
	return n.recNotifier.PostAlert(ctx, channel, r)
}

func (n *slotNotifier) PostStorm(ctx context.Context, channel string, st Storm) (string, error) {
	if err := n.take(channel); err != nil {
		return "", err
	}
	return n.recNotifier.PostStorm(ctx, channel, st)
}

func (n *slotNotifier) PostThread(ctx context.Context, channel, ts string, lines []Line) error {
	if err := n.take(channel); err != nil {
		return err
	}
	return n.recNotifier.PostThread(ctx, channel, ts, lines)
}

// runDeferred runs queued jobs like a queue that honours NotBefore and
// dedups by id: the clock moves to each job's NotBefore, never back.
func (h *harness) runDeferred() (flushes []bot.Job) {
	h.t.Helper()
	for range 1000 {
		jobs := h.q.Take()
		if len(jobs) == 0 {
			return flushes
		}
		slices.SortStableFunc(jobs, func(a, b bot.Job) int { return a.NotBefore.Compare(b.NotBefore) })
		seen := map[string]bool{}
		for _, j := range jobs {
			if seen[j.ID] {
				continue // pending already: the queue coalesces it
			}
			seen[j.ID] = true
			if d := j.NotBefore.Sub(h.clock.Now()); d > 0 {
				h.clock.Advance(d)
			}
			if j.Kind == JobFlush {
				flushes = append(flushes, j)
			}
			if err := h.mux.HandleJob(context.Background(), j); err != nil {
				h.t.Fatalf("job %s: %v", j.ID, err)
			}
		}
	}
	h.t.Fatal("jobs keep coming")
	return nil
}

// TestDeferredToSlot: posts that find their channel paced wait for one
// flush per channel slot instead of failing or waiting in the job; each
// alert is counted once for storm detection however often it waited;
// nothing is lost and no marker stays behind.
func TestDeferredToSlot(t *testing.T) {
	tests := []struct {
		name    string
		alerts  int
		wantTop int // top-level messages
		storm   bool
	}{
		{"below the storm threshold every alert gets its message", 3, 3, false},
		{"a storm lists the rest in one thread", 40, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sn *slotNotifier
			h := newHarness(t, func(o *Options) {
				sn = &slotNotifier{recNotifier: o.Notifier.(*recNotifier), now: o.Now, interval: 1100 * time.Millisecond, next: map[string]time.Time{}}
				o.Notifier = sn
			})
			ctx := context.Background()
			for i := range tt.alerts {
				if _, err := h.svc.Ingest(ctx, "test", "", mk(fmt.Sprintf("d%02d", i), StatusWarning, true, fmt.Sprintf("app%02d", i), t0)); err != nil {
					t.Fatal(err)
				}
			}
			// Every delivery runs at t0: one post goes out, the rest wait.
			for _, j := range h.q.Take() {
				if err := h.mux.HandleJob(ctx, j); err != nil {
					t.Fatalf("delivery %s: %v", j.ID, err)
				}
			}
			if !h.clock.Now().Equal(t0) {
				t.Fatal("the clock moved")
			}
			if got := len(h.n.topLevel()); got != 1 {
				t.Fatalf("%d posts at t0, want 1", got)
			}
			flushes := h.runDeferred()
			if len(flushes) == 0 {
				t.Fatal("no flush job")
			}
			for i, j := range flushes {
				want := JobFlush + "/CALL/" + strconv.FormatInt(j.NotBefore.UnixMilli(), 10) + "/"
				if !strings.HasPrefix(j.ID, want) || len(j.ID) == len(want) || j.NotBefore.IsZero() {
					t.Errorf("flush %d: id %q not before %v, want id %q<unique>", i, j.ID, j.NotBefore, want)
				}
				if i > 0 && j.NotBefore.Sub(flushes[i-1].NotBefore) < 1100*time.Millisecond {
					t.Errorf("flushes %d and %d only %s apart", i-1, i, j.NotBefore.Sub(flushes[i-1].NotBefore))
				}
			}
			top := h.n.topLevel()
			if len(top) != tt.wantTop || (top[len(top)-1].storm != nil) != tt.storm {
				t.Fatalf("%d top-level messages (last a storm: %v), want %d (storm: %v)", len(top), top[len(top)-1].storm != nil, tt.wantTop, tt.storm)
			}
			if tt.storm {
				sum := top[len(top)-1]
				if got, want := len(sum.threadLines()), tt.alerts-(tt.wantTop-1); got != want || sum.storm.New != want {
					t.Errorf("storm thread has %d lines, summary counts %d, want %d", got, sum.storm.New, want)
				}
			}
			if sn.refused == 0 {
				t.Error("no post was ever paced: the test proves nothing")
			}
			for i := range tt.alerts {
				if r := h.record(fmt.Sprintf("mackerel:d%02d", i)); !r.Placed || r.LeaseOwner != "" || len(r.Pending) != 0 {
					t.Errorf("alert d%02d not settled: %+v", i, r)
				}
			}
			if left, err := h.store.List(ctx, KindWait, bot.KeyRange{}, 0); err != nil || len(left) != 0 {
				t.Errorf("%d wait markers left (%v)", len(left), err)
			}
		})
	}
}

// TestFlushesCoalesceWithoutQueueDedup runs the deferred jobs the way SQS
// delivers them on Lambda: every enqueued job runs, however many share an
// id. Forty alerts waiting for a paced channel must cost about one flush
// per post slot, not one per deferral (each of which would list and retry
// every waiting alert), and leave nothing behind.
func TestFlushesCoalesceWithoutQueueDedup(t *testing.T) {
	const alerts = 40
	var sn *slotNotifier
	h := newHarness(t, func(o *Options) {
		sn = &slotNotifier{recNotifier: o.Notifier.(*recNotifier), now: o.Now, interval: 1100 * time.Millisecond, next: map[string]time.Time{}}
		o.Notifier = sn
	})
	ctx := context.Background()
	for i := range alerts {
		if _, err := h.svc.Ingest(ctx, "test", "", mk(fmt.Sprintf("d%02d", i), StatusWarning, true, fmt.Sprintf("app%02d", i), t0)); err != nil {
			t.Fatal(err)
		}
	}
	flushes := 0
	for range 100 {
		jobs := h.q.Take()
		if len(jobs) == 0 {
			break
		}
		slices.SortStableFunc(jobs, func(a, b bot.Job) int { return a.NotBefore.Compare(b.NotBefore) })
		for _, j := range jobs { // no deduplication by id
			if d := j.NotBefore.Sub(h.clock.Now()); d > 0 {
				h.clock.Advance(d)
			}
			if j.Kind == JobFlush {
				flushes++
			}
			if err := h.mux.HandleJob(ctx, j); err != nil {
				t.Fatalf("job %s: %v", j.ID, err)
			}
		}
	}
	if len(h.q.Take()) != 0 {
		t.Fatal("jobs keep coming")
	}
	top := h.n.topLevel()
	if len(top) != 4 || top[3].storm == nil || len(top[3].threadLines()) != alerts-3 {
		t.Fatalf("%d top-level messages; want 3 alerts and a storm listing the other %d", len(top), alerts-3)
	}
	// Four top-level posts and a thread reply, a slot each: a flush per
	// slot, and one spare for a deferral racing a flush's listing.
	if flushes > 6 {
		t.Errorf("%d flush jobs ran for %d paced posts; want about one per post slot", flushes, 5)
	}
	for _, kind := range []string{KindWait, KindFlushQueued} {
		if left, err := h.store.List(ctx, kind, bot.KeyRange{}, 0); err != nil || len(left) != 0 {
			t.Errorf("%d %s records left (%v)", len(left), kind, err)
		}
	}
	t.Logf("%d flush jobs, %d posts refused by pacing", flushes, sn.refused)
}
