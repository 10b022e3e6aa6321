package alertui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
)

// TestStorm sends thousands of distinct alerts for one channel through the
// webhook while the fake Slack enforces one post per second per channel.
// Pacing runs on a virtual clock shared with the fake, so the test checks
// Slack's limit as Slack would without waiting for it in real time.
func TestStorm(t *testing.T) {
	// 3,000 alerts; the race detector slows every store write about
	// tenfold, so under it a thousand keep the run short.
	n := 3000
	if raceDetector {
		n = 1000
	}
	if testing.Short() {
		n = 300
	}
	const threshold = 10
	e := newEnv(t, envOptions{threshold: threshold})
	e.fake.LimitChannelPosts(1)

	bodies := stormBodies(t, n, 0)
	start := time.Now()
	e.postAll(bodies)
	e.idle()
	t.Logf("%d webhooks accepted and processed in %s", n, time.Since(start).Round(time.Millisecond))

	// Nothing lost: every alert stored and placed (own message or storm).
	ctx := context.Background()
	recs, err := bot.Table[alert.Record]{Store: e.store, Kind: alert.KindRecord}.List(ctx, bot.KeyRange{}, 0)
	if err != nil || len(recs) != n {
		t.Fatalf("stored %d alert records of %d (%v)", len(recs), n, err)
	}
	own := 0
	for _, r := range recs {
		switch {
		case !r.Value.Placed || len(r.Value.Pending) > 0:
			t.Fatalf("alert %s not shown: %+v", r.Key, r.Value)
		case r.Value.TS != "":
			own++
		}
	}
	// A bounded number of top-level messages: the first alerts of the
	// minute (at most the threshold: jobs run concurrently, so which alert
	// is the first of the storm may shift by one), then one summary.
	top := e.topLevel(chAlerts)
	if own > threshold || own < threshold-2 || len(top) != own+1 {
		t.Errorf("%d alerts got their own message, %d top-level messages; want about %d and one summary", own, len(top), threshold)
	}
	summary := top[len(top)-1]
	if want := fmt.Sprintf("%d new alerts", n-own); !strings.Contains(summary.Text, want) {
		t.Errorf("summary %q lacks %q", summary.Text, want)
	}
	// Every alert of the storm is listed in the summary's thread.
	listed := e.stormListed(chAlerts, summary.TS)
	if len(listed) != n-own {
		t.Errorf("storm thread lists %d alerts, want %d (every alert without its own message)", len(listed), n-own)
	}
	// No 429 storm: pacing keeps Slack's per-channel limit.
	limited := 0
	for _, c := range e.fake.Calls("chat.postMessage") {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited > 2 || e.limited.Load() > 2 {
		t.Errorf("%d posts answered 429 (%d waits); pacing should avoid them", limited, e.limited.Load())
	}
	t.Logf("posts: %d, 429s: %d, updates: %d", len(e.fake.Calls("chat.postMessage")), limited, len(e.fake.Calls("chat.update")))
}

// FuzzWebhook sends arbitrary bodies with valid credentials: the webhook
// answers 202 or a 4xx with a reason, never 5xx, never panics, and every
// accepted body was handed over as a well-formed event.
func FuzzWebhook(f *testing.F) {
	for _, name := range []string{"mackerel-host-critical.json", "mackerel-alertgroup.json", "mackerel-manual-close.json", "mackerel-unknown.json", "mackerel-sample.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"event":"alert","alert":{"id":"x","status":"CRITICAL","criticalThreshold":"1e400"}}`))
	f.Add([]byte(`{"event":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{0xff, 0xfe})
	in := &checkIngester{}
	wh, err := NewWebhook(hookUser, hookPass, in, discardLog())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/mackerel", bytes.NewReader(body))
		req.SetBasicAuth(hookUser, hookPass)
		w := httptest.NewRecorder()
		wh.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusAccepted:
			if err := in.take(); err != nil {
				t.Fatalf("accepted a malformed event: %v (body %q)", err, body)
			}
		case w.Code >= 500:
			t.Fatalf("HTTP %d for %q: %s", w.Code, body, w.Body)
		case w.Code >= 400 && strings.TrimSpace(w.Body.String()) == "":
			t.Fatalf("HTTP %d without a reason", w.Code)
		case w.Code < 400:
			t.Fatalf("unexpected HTTP %d", w.Code)
		}
		if len(body) > MaxBody && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized body answered %d", w.Code)
		}
	})
}

// checkIngester validates what the webhook hands over.
type checkIngester struct {
	mu  sync.Mutex
	err error
}

func (c *checkIngester) Ingest(_ context.Context, via, _ string, ev alert.Event) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case via != "mackerel":
		c.err = fmt.Errorf("via %q", via)
	case (ev.Alert == nil) == (ev.Notice == nil):
		c.err = fmt.Errorf("event with alert=%v notice=%v", ev.Alert != nil, ev.Notice != nil)
	case ev.Key() == "":
		c.err = fmt.Errorf("event without key")
	default:
		c.err = nil
	}
	return "d-1", nil
}

func (c *checkIngester) take() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.err
	c.err = nil
	return err
}

// TestStormAcrossChannels is the storm of the flow benchmark: alerts for
// four channels at once, four queue workers, Slack allowing one post per
// second per channel. No worker may wait for a channel's next post slot:
// every delivery is processed before the virtual clock moves at all, and
// the channels then drain side by side, each in about as many slots as it
// has posts, every storm alert listed in its channel's storm thread.
func TestStormAcrossChannels(t *testing.T) {
	perChannel := 250
	if raceDetector {
		perChannel = 125
	}
	if testing.Short() {
		perChannel = 60
	}
	const threshold = 10
	channels := []string{"C0STORM001", "C0STORM002", "C0STORM003", "C0STORM004"}
	routes := "routes:\n"
	for i, ch := range channels {
		routes += fmt.Sprintf("  - name: storm %d\n    match: {monitor: [\"storm%d *\"]}\n    channel: %s\n", i, i, ch)
	}
	routes += "default:\n  channel: " + chAlerts + "\n"
	e := newEnv(t, envOptions{threshold: threshold, routes: routes})
	for _, ch := range channels {
		e.fake.AddChannel(ch, strings.ToLower(ch))
	}
	e.fake.LimitChannelPosts(1)

	n := perChannel * len(channels)
	bodies := stormBodies(t, n, len(channels))
	start := e.now()
	e.postAll(bodies)

	// Every delivery was processed, and no worker waited for a slot: the
	// virtual clock has not moved (a pacer sleeping in a worker moves it).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.queue.Idle(ctx); err != nil {
		t.Fatalf("deliveries did not finish: %v", err)
	}
	if waited := e.now().Sub(start); waited != 0 {
		t.Errorf("processing the deliveries took %s of virtual time: a worker waited for a post slot", waited)
	}
	recs, err := bot.Table[alert.Record]{Store: e.store, Kind: alert.KindRecord}.List(ctx, bot.KeyRange{}, 0)
	if err != nil || len(recs) != n {
		t.Fatalf("stored %d alert records of %d (%v)", len(recs), n, err)
	}
	placed := 0
	for _, r := range recs {
		if r.Value.Placed || r.Value.Own {
			placed++ // in a storm, or given its own message (maybe still waiting for a slot)
		}
	}
	if placed != n {
		t.Errorf("%d of %d alerts placed after the deliveries ran", placed, n)
	}

	// The channels drain in parallel.
	e.idle()
	elapsed := e.now().Sub(start)
	maxPosts := 0
	for _, ch := range channels {
		posts := 0
		for _, c := range e.fake.Calls("chat.postMessage") {
			if c.Channel == ch && c.Status == http.StatusOK {
				posts++
			}
		}
		maxPosts = max(maxPosts, posts)
		top := e.topLevel(ch)
		if len(top) < 2 || len(top) > threshold+1 {
			t.Errorf("%s: %d top-level messages, want the first alerts and one storm summary", ch, len(top))
			continue
		}
		summary := top[len(top)-1]
		own := len(top) - 1
		if want := fmt.Sprintf("%d new alerts", perChannel-own); !strings.Contains(summary.Text, want) {
			t.Errorf("%s: summary %q lacks %q", ch, summary.Text, want)
		}
		listed := e.stormListed(ch, summary.TS)
		if len(listed) != perChannel-own {
			t.Errorf("%s: storm thread lists %d alerts, want %d", ch, len(listed), perChannel-own)
		}
	}
	// Side by side: about one slot per post of the busiest channel, not
	// the sum over channels.
	if bound := time.Duration(maxPosts+3) * DefaultInterval; elapsed > bound {
		t.Errorf("drained in %s of virtual time, want at most %s (%d posts in the busiest channel)", elapsed, bound, maxPosts)
	}
	limited := 0
	for _, c := range e.fake.Calls("chat.postMessage") {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited > 0 || e.limited.Load() > 0 {
		t.Errorf("%d posts answered 429 (%d waits); pacing should avoid them", limited, e.limited.Load())
	}
	t.Logf("%d alerts over %d channels drained in %s virtual; busiest channel %d posts", n, len(channels), elapsed, maxPosts)
}

// stormBodies builds n Mackerel webhook bodies, distinct alerts (ids
// storm00000…, hosts web00000…) from the host-critical fixture. With
// channels > 0 the monitor names go round robin over "storm0 CPU" …
// "storm<channels-1> CPU", to be routed one channel each.
func stormBodies(t *testing.T, n, channels int) [][]byte {
	t.Helper()
	var tmpl map[string]any
	if err := json.Unmarshal(fixture(t, "mackerel-host-critical.json"), &tmpl); err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, n)
	for i := range n {
		a := tmpl["alert"].(map[string]any)
		a["id"] = fmt.Sprintf("storm%05d", i)
		if channels > 0 {
			a["monitorName"] = fmt.Sprintf("storm%d CPU", i%channels)
		}
		tmpl["host"].(map[string]any)["name"] = fmt.Sprintf("web%05d", i)
		b, err := json.Marshal(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b
	}
	return bodies
}

// postAll delivers bodies to the Mackerel webhook from eight concurrent
// senders, as a storm arrives, and fails the test unless every one was
// accepted (202). It returns when all are accepted, not processed.
func (e *env) postAll(bodies [][]byte) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, len(bodies))
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next { // not e.webhook: no t.Fatal off the test goroutine
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/webhooks/mackerel", bytes.NewReader(bodies[i]))
				req.SetBasicAuth(hookUser, hookPass)
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Sprintf("alert %d: HTTP %d", i, resp.StatusCode)
				}
			}
		})
	}
	for i := range bodies {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

// stormListed returns the hosts (web00000…) listed in the thread of the
// storm summary ts in channel, failing the test for a reply longer than
// Slack's 40,000 characters.
func (e *env) stormListed(channel, ts string) map[string]bool {
	e.t.Helper()
	listed := map[string]bool{}
	for _, m := range e.fake.Thread(channel, ts) {
		if n := utf8.RuneCountInString(m.Text); n > 40000 {
			e.t.Errorf("%s: thread reply of %d runes", channel, n)
		}
		for _, line := range strings.Split(m.Text, "\n") {
			if i := strings.Index(line, "web"); i >= 0 && len(line) >= i+8 {
				listed[line[i:i+8]] = true
			}
		}
	}
	return listed
}
