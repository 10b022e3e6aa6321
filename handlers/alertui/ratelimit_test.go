package alertui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestStormAfterRateLimit sends 200 alerts for one channel while Slack
// answers every chat.postMessage with 429 for three seconds. Once Slack
// accepts posts again, every alert must be shown (the first ones in their
// own messages, the rest in the storm summary's thread) within seconds, by
// the flushes the pacing queued: the harness runs no reconcile sweep, so
// anything those flushes lose stays unshown and fails the test.
func TestStormAfterRateLimit(t *testing.T) {
	t.Run("virtual clock", func(t *testing.T) { testStormAfterRateLimit(t, false) })
	t.Run("real time", func(t *testing.T) { testStormAfterRateLimit(t, true) })
}

func testStormAfterRateLimit(t *testing.T, realTime bool) {
	const n, threshold = 200, 10
	const window = 3 * time.Second
	e := newEnv(t, envOptions{threshold: threshold, realTime: realTime})
	e.fake.LimitChannelPosts(1)
	start := e.now()
	e.fake.RateLimitFor("chat.postMessage", window)

	e.postAll(stormBodies(t, n, 0))
	if realTime {
		// Done when the storm thread lists every alert without its own
		// message; the fake re-checks after every call it records.
		e.fake.Until(window+40*time.Second, func(*slackfake.Fake) bool {
			top := e.topLevel(chAlerts)
			return len(top) > 0 && len(e.stormListed(chAlerts, top[len(top)-1].TS))+len(top)-1 == n
		})
	}
	e.idle()

	ctx := context.Background()
	recs, err := bot.Table[alert.Record]{Store: e.store, Kind: alert.KindRecord}.List(ctx, bot.KeyRange{}, 0)
	if err != nil || len(recs) != n {
		t.Fatalf("stored %d alert records of %d (%v)", len(recs), n, err)
	}
	own, unshown := 0, 0
	for _, r := range recs {
		switch {
		case !r.Value.Placed || len(r.Value.Pending) > 0:
			unshown++
			t.Logf("unshown %s: placed %v own %v storm %q ts %q rev %d shown %d pending %d lease %v", r.Key, r.Value.Placed, r.Value.Own, r.Value.Storm, r.Value.TS, r.Value.Rev, r.Value.Shown, len(r.Value.Pending), r.Value.Lease)
		case r.Value.TS != "":
			own++
		}
	}
	ws, _ := e.store.List(ctx, alert.KindWait, bot.KeyRange{}, 0)
	for _, w := range ws {
		t.Logf("wait marker %s %s", w.Key, w.Data)
	}
	if unshown > 0 {
		t.Errorf("%d of %d alerts not shown once Slack accepted posts again", unshown, n)
	}
	top := e.topLevel(chAlerts)
	if len(top) != own+1 {
		t.Fatalf("%d top-level messages for %d alerts with their own message; want those and one storm summary", len(top), own)
	}
	summary := top[len(top)-1]
	if want := fmt.Sprintf("%d new alerts", n-own); !strings.Contains(summary.Text, want) {
		t.Errorf("summary %q lacks %q", summary.Text, want)
	}
	if listed := e.stormListed(chAlerts, summary.TS); len(listed) != n-own {
		t.Errorf("storm thread lists %d alerts, want %d", len(listed), n-own)
	}
	// Within seconds of the window's end: one post per second for the own
	// messages, the summary and its thread (a few replies of 250 lines).
	var last time.Time
	for _, c := range e.fake.Calls("") {
		if c.OK() && (c.Method == "chat.postMessage" || c.Method == "chat.update") {
			last = c.At
		}
	}
	if took, limit := last.Sub(start.Add(window)), time.Duration(own+5)*2*time.Second; took > limit {
		t.Errorf("last alert shown %s after Slack accepted posts again; want within %s", took, limit)
	}
	limited := 0
	for _, c := range e.fake.Calls("chat.postMessage") {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	t.Logf("own messages: %d, posts answered 429: %d, client waits: %d, last post %s after the window",
		own, limited, e.limited.Load(), last.Sub(start.Add(window)))
}

// TestUpdateAfterRateLimit sends critical alerts while Slack answers 429
// for three seconds, then each one's OK while the first post still waits
// out the Retry-After: every message must show its alert resolved soon
// after Slack accepts posts again, by flushes alone (no sweep runs).
func TestUpdateAfterRateLimit(t *testing.T) {
	const n = 10
	const window = 3 * time.Second
	e := newEnv(t, envOptions{realTime: true})
	start := e.now()
	e.fake.RateLimitFor("chat.postMessage", window)

	var open, closed map[string]any
	if err := json.Unmarshal(fixture(t, "mackerel-host-critical.json"), &open); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixture(t, "mackerel-auto-close.json"), &closed); err != nil {
		t.Fatal(err)
	}
	bodies := func(m map[string]any) [][]byte {
		out := make([][]byte, n)
		for i := range n {
			m["alert"].(map[string]any)["id"] = fmt.Sprintf("upd%d", i)
			m["host"].(map[string]any)["name"] = fmt.Sprintf("web%05d", i)
			out[i], _ = json.Marshal(m)
		}
		return out
	}
	e.postAll(bodies(open))
	// The OKs arrive while the first post waits out the Retry-After.
	if !e.fake.Until(window, func(f *slackfake.Fake) bool {
		for _, c := range f.Calls("chat.postMessage") {
			if c.Status == http.StatusTooManyRequests {
				return true
			}
		}
		return false
	}) {
		t.Fatal("no post was answered 429")
	}
	e.postAll(bodies(closed))

	// Done when the channel shows n messages, each resolved; the fake
	// re-checks after every call it records.
	resolved := func(*slackfake.Fake) bool {
		top := e.topLevel(chAlerts)
		for _, m := range top {
			if len(m.Attachments) == 0 || m.Attachments[0].Color != ColorResolved {
				return false
			}
		}
		return len(top) == n
	}
	// A post slot per alert, and its update.
	limit := window + 2*n*time.Second
	if !e.fake.Until(limit, resolved) {
		t.Fatalf("alerts not all shown resolved within %s of the first post:\n%s", limit, e.fake.Dump(20))
	}
	took := e.now().Sub(start.Add(window))
	e.idle()
	for i := range n {
		rec, err := e.svc.Get(context.Background(), fmt.Sprintf("mackerel:upd%d", i))
		if err != nil || !rec.Placed || rec.Alert.Open || rec.Shown != rec.Rev {
			t.Errorf("upd%d: %v: placed %v open %v rev %d shown %d", i, err, rec.Placed, rec.Alert.Open, rec.Rev, rec.Shown)
		}
	}
	t.Logf("all %d shown resolved %s after the window ended", n, took.Round(time.Millisecond))
}
