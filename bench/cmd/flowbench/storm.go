package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/localqueue"
	"github.com/tokken/tokken/testkit/slackfake"
)

// The storm scenario's webhook credentials and channels.
const (
	hookUser = "mackerel"
	hookPass = "flowbench-webhook-password-0123"
	// defaultAlertChannel is TOKKEN_ALERT_CHANNEL, also routes.yaml's
	// default.
	defaultAlertChannel = "C0ALERTS"
	// maxSending bounds the webhooks in flight; past it a due webhook
	// waits, and its latency (counted from when it was due) shows it.
	maxSending = 256
)

// alertChannels are every channel policies/routes.yaml can post to.
var alertChannels = []string{defaultAlertChannel, "C0PRODALERTS", "C0STAGING", "C0TOKKENOPS", "C0DEVALERTS"}

// stormEnvs are the environment words put in host names, in the order
// -storm-channels takes them: routes.yaml sends production, staging and
// development to their own channels and the rest ("app") to the default.
var stormEnvs = []string{"prod", "stg", "dev", "app"}

// stormFixtures are the open, host-scoped Mackerel alert payloads the
// storm cycles through.
var stormFixtures = []string{
	"mackerel-host-critical.json", "mackerel-connectivity.json", "mackerel-check.json",
	"mackerel-anomaly.json", "mackerel-ec2.json", "mackerel-long-roles.json", "mackerel-memo-escape.json",
}

// maxStormAlerts keeps the five-digit host marker unique.
const maxStormAlerts = 100000

// hostRE finds the marker of storm alert i ("host00042") in Slack text.
var hostRE = regexp.MustCompile(`\bhost(\d{5})\b`)

// StormResult is what the storm scenario measured.
type StormResult struct {
	Alerts     int           `json:"alerts"`
	Over       time.Duration `json:"over_ns"`
	Rate       float64       `json:"rate"` // webhooks per second asked
	Accepted   int           `json:"accepted"`
	Errors     int           `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	// SendElapsed is from the first webhook due to the last answered.
	SendElapsed time.Duration `json:"send_elapsed_ns"`
	// Latency of the webhooks, from when each was due to its answer.
	Latency Percentiles `json:"latency"`
	// ServerCPUPerAlert is tokken's CPU time from the first webhook until
	// Slack listed every alert (or the drain bound), per webhook.
	ServerCPUPerAlert time.Duration `json:"server_cpu_per_alert_ns"`
	PeakRSSBytes      int64         `json:"peak_rss_bytes"`

	// Listed counts the storm's alerts Slack shows (an own message or a
	// line in a storm thread); Drained says all were, DrainTime how long
	// after the last answer.
	Listed    int           `json:"listed"`
	Drained   bool          `json:"drained"`
	DrainTime time.Duration `json:"drain_ns"`

	// From the bolt file after tokken stopped: deliveries stored, alert
	// records, records placed (given an own message or a storm thread,
	// no line pending on the record itself; a storm's lines wait in Lines
	// until posted), records with their own message; Missing names up to
	// ten alerts without a record.
	Deliveries int      `json:"deliveries"`
	Records    int      `json:"records"`
	Placed     int      `json:"placed"`
	Own        int      `json:"own"`
	Missing    []string `json:"missing,omitempty"`
	// PendingJobs, Lines and DeadLetters are the work left in the store
	// at shutdown: queued jobs (run at the next start), storm thread
	// lines not yet posted, jobs that failed for good.
	PendingJobs int `json:"pending_jobs"`
	Lines       int `json:"lines"`
	DeadLetters int `json:"dead_letters"`

	Channels []ChannelStats `json:"channels"`
}

// ChannelStats is Slack's view of one channel after the storm.
type ChannelStats struct {
	Channel  string `json:"channel"`
	Listed   int    `json:"listed"`
	TopLevel int    `json:"top_level"`
	// Posts are chat.postMessage calls accepted, Limited those answered
	// 429, Updates chat.update calls accepted.
	Posts   int `json:"posts"`
	Limited int `json:"limited"`
	Updates int `json:"updates"`
	// MaxPerSecond is the most accepted posts in any one-second window;
	// MaxAttemptedPerSecond counts the refused ones too (tokken's own
	// pacing).
	MaxPerSecond          int `json:"max_per_second"`
	MaxAttemptedPerSecond int `json:"max_attempted_per_second"`
}

func runStorm(ctx context.Context, o options, logw io.Writer) (StormResult, error) {
	res := StormResult{Alerts: o.alerts, Over: o.stormFor, Rate: float64(o.alerts) / o.stormFor.Seconds()}
	if o.alerts >= maxStormAlerts {
		return res, fmt.Errorf("at most %d alerts", maxStormAlerts-1)
	}
	fixtures := make([][]byte, len(stormFixtures))
	for i, name := range stormFixtures {
		b, err := os.ReadFile(filepath.Join(o.testdata, name))
		if err != nil {
			return res, fmt.Errorf("fixture: %w", err)
		}
		fixtures[i] = b
	}
	bodies, err := stormBodies(fixtures, o.alerts, o.stormChannels, time.Now())
	if err != nil {
		return res, err
	}

	w, err := newWorld()
	if err != nil {
		return res, err
	}
	defer w.Close()
	for _, ch := range alertChannels {
		w.slack.AddChannel(ch, "alerts-"+ch)
	}
	w.slack.LimitChannelPosts(1)
	env := w.env(o.policies,
		"MACKEREL_WEBHOOK_USER="+hookUser, "MACKEREL_WEBHOOK_PASSWORD="+hookPass,
		"TOKKEN_ALERT_CHANNEL="+defaultAlertChannel,
	)
	p, err := w.start(ctx, o.tokken, env, logw)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.Stop(30 * time.Second)
		}
	}()

	client := loadgen.NewClient(maxSending)
	defer client.CloseIdleConnections()
	cpu0, cpuErr := loadgen.ReadCPU(p.PID)
	sent := sendStorm(ctx, client, "http://"+p.Addr+"/webhooks/mackerel", bodies, o.stormFor)
	res.Accepted, res.Errors, res.FirstError = sent.accepted, sent.errors, sent.firstError
	res.SendElapsed, res.Latency = sent.elapsed, percentiles(sent.latencies)
	fmt.Fprintf(os.Stderr, "flowbench: storm: %d webhooks sent in %s, %d accepted, p99 %s; waiting for Slack\n",
		len(bodies), sent.elapsed.Round(time.Millisecond), sent.accepted, loadgen.Round(res.Latency.P99))
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// Drained: every alert shown in Slack, seen at the recorded call that
	// completed it.
	answered := time.Now()
	tb := &failTB{TB: w.tb.TB}
	w.slack.WaitFor(tb, o.drain, func(f *slackfake.Fake) bool {
		return len(listedIn(f)) >= o.alerts
	})
	res.DrainTime, res.Drained = time.Since(answered), tb.Err() == nil
	if cpu1, err := loadgen.ReadCPU(p.PID); err == nil && cpuErr == nil {
		res.ServerCPUPerAlert = cpu1.Sub(cpu0).Total() / time.Duration(o.alerts)
	}
	if res.PeakRSSBytes, err = p.PeakRSS(); err != nil {
		return res, err
	}
	stopped = true
	if err := p.Stop(40 * time.Second); err != nil {
		return res, fmt.Errorf("stop tokken: %w", err)
	}

	res.Channels, res.Listed = slackStats(w.slack)
	if err := countStored(ctx, w.storePath(), o.alerts, &res); err != nil {
		return res, err
	}
	return res, nil
}

// alertID is the Mackerel alert id of storm alert i.
func alertID(i int) string { return fmt.Sprintf("flowbench%05d", i) }

// stormBodies makes n webhook bodies from the fixtures in turn, each a
// distinct alert on a distinct host: alert id, host id and host name vary
// (the host name carries the marker hostRE finds and, from the first envs
// of stormEnvs, the environment word that routes it), and the alert opens
// at now.
func stormBodies(fixtures [][]byte, n, envs int, now time.Time) ([][]byte, error) {
	if len(fixtures) == 0 || envs < 1 || envs > len(stormEnvs) || n >= maxStormAlerts {
		return nil, fmt.Errorf("storm bodies: %d fixtures, %d environments, %d alerts", len(fixtures), envs, n)
	}
	bodies := make([][]byte, n)
	for i := range n {
		var doc map[string]any
		if err := json.Unmarshal(fixtures[i%len(fixtures)], &doc); err != nil {
			return nil, fmt.Errorf("fixture %d: %w", i%len(fixtures), err)
		}
		a, okA := doc["alert"].(map[string]any)
		h, okH := doc["host"].(map[string]any)
		if !okA || !okH {
			return nil, fmt.Errorf("fixture %d is not a host alert", i%len(fixtures))
		}
		id, hostID := alertID(i), fmt.Sprintf("HID%05d", i)
		a["id"], a["url"] = id, "https://mackerel.io/orgs/acme/alerts/"+id
		a["openedAt"], a["createdAt"] = now.Unix(), now.UnixMilli()
		h["id"], h["url"] = hostID, "https://mackerel.io/orgs/acme/hosts/"+hostID
		h["name"] = fmt.Sprintf("%s-host%05d", stormEnvs[i%envs], i)
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("body %d: %w", i, err)
		}
		bodies[i] = b
	}
	return bodies, nil
}

// stormSent is what sendStorm measured.
type stormSent struct {
	accepted, errors int
	firstError       string
	latencies        []time.Duration
	elapsed          time.Duration
}

// sendStorm posts bodies open loop, evenly spread over `over`, with Basic
// auth; a webhook counts as accepted on 202. Latency runs from when a
// webhook was due, so a server that stalls cannot hide the queue.
func sendStorm(ctx context.Context, client *http.Client, target string, bodies [][]byte, over time.Duration) stormSent {
	var (
		mu  sync.Mutex
		out = stormSent{latencies: make([]time.Duration, 0, len(bodies))}
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxSending)
	)
	interval := over / time.Duration(len(bodies))
	start := time.Now()
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	record := func(lat time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		out.latencies = append(out.latencies, lat)
		if err != nil {
			out.errors++
			if out.firstError == "" {
				out.firstError = err.Error()
			}
			return
		}
		out.accepted++
	}
sending:
	for i, body := range bodies {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break sending
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break sending
		}
		wg.Go(func() {
			defer func() { <-sem }()
			err := postWebhook(ctx, client, target, body)
			record(time.Since(due), err)
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

func postWebhook(ctx context.Context, client *http.Client, target string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(hookUser, hookPass)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("HTTP %d %q", resp.StatusCode, truncate(string(answer), 200))
	}
	return nil
}

// listedIn returns the storm alerts the fake's alert channels show, as
// own messages or storm thread lines, by marker number.
func listedIn(f *slackfake.Fake) map[int]bool {
	listed := map[int]bool{}
	for _, ch := range alertChannels {
		for _, m := range f.Messages(ch) {
			markers(m.Text, listed)
		}
	}
	return listed
}

// markers adds the storm alert numbers text mentions to into.
func markers(text string, into map[int]bool) {
	for _, m := range hostRE.FindAllStringSubmatch(text, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			into[n] = true
		}
	}
}

// slackStats summarises each alert channel and counts the storm alerts
// listed in all of them.
func slackStats(f *slackfake.Fake) ([]ChannelStats, int) {
	byChannel := map[string]*ChannelStats{}
	attempted, accepted := map[string][]time.Time{}, map[string][]time.Time{}
	for _, c := range f.Calls("chat.postMessage") {
		st := statsFor(byChannel, c.Channel)
		attempted[c.Channel] = append(attempted[c.Channel], c.At)
		switch {
		case c.Status == http.StatusTooManyRequests:
			st.Limited++
		case c.OK():
			st.Posts++
			accepted[c.Channel] = append(accepted[c.Channel], c.At)
		}
	}
	for _, c := range f.Calls("chat.update") {
		if c.OK() {
			statsFor(byChannel, c.Channel).Updates++
		}
	}
	all := map[int]bool{}
	var out []ChannelStats
	for _, ch := range alertChannels {
		st := statsFor(byChannel, ch)
		here := map[int]bool{}
		for _, m := range f.Messages(ch) {
			if m.ThreadTS == "" {
				st.TopLevel++
			}
			markers(m.Text, here)
		}
		for n := range here {
			all[n] = true
		}
		st.Listed = len(here)
		st.MaxPerSecond = maxInWindow(accepted[ch], time.Second)
		st.MaxAttemptedPerSecond = maxInWindow(attempted[ch], time.Second)
		if st.Posts+st.Limited+st.Updates > 0 {
			out = append(out, *st)
		}
	}
	return out, len(all)
}

func statsFor(m map[string]*ChannelStats, ch string) *ChannelStats {
	st, ok := m[ch]
	if !ok {
		st = &ChannelStats{Channel: ch}
		m[ch] = st
	}
	return st
}

// countStored opens tokken's bolt file (tokken must have stopped: the
// file has one owner) and counts what the storm left there.
func countStored(ctx context.Context, path string, n int, res *StormResult) error {
	st, err := boltstore.Open(path, boltstore.WithSweepInterval(0), boltstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return fmt.Errorf("open tokken's store: %w", err)
	}
	defer st.Close()
	deliveries, err := st.List(ctx, alert.KindDelivery, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("list deliveries: %w", err)
	}
	res.Deliveries = len(deliveries)
	records, err := bot.Table[alert.Record]{Store: st, Kind: alert.KindRecord}.List(ctx, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("list alert records: %w", err)
	}
	keys := make(map[string]bool, len(records))
	for _, r := range records {
		keys[r.Value.Alert.Key] = true
		res.Records++
		if r.Value.Placed && len(r.Value.Pending) == 0 {
			res.Placed++
		}
		if r.Value.TS != "" {
			res.Own++
		}
	}
	for i := range n {
		if key := "mackerel:" + alertID(i); !keys[key] && len(res.Missing) < 10 {
			res.Missing = append(res.Missing, key)
		}
	}
	for kind, count := range map[string]*int{localqueue.KindJob: &res.PendingJobs, alert.KindLine: &res.Lines, localqueue.KindDeadLetter: &res.DeadLetters} {
		recs, err := st.List(ctx, kind, bot.KeyRange{}, 0)
		if err != nil {
			return fmt.Errorf("list %s: %w", kind, err)
		}
		*count = len(recs)
	}
	return nil
}

// maxInWindow is the most of times (ascending) within any window of
// length w, a time t counting while now-t < w (slackfake's rule).
func maxInWindow(times []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i, t := range times {
		for t.Sub(times[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
