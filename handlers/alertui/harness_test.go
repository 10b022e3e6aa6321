package alertui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/localqueue"
	"github.com/tokken/tokken/infra/mackerel"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/infra/slackdir"
	"github.com/tokken/tokken/policies"
	"github.com/tokken/tokken/testkit/mackerelfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// The harness runs the alert feature in-process through its real entry
// points: the HTTP surface of handlers/httpapi (Slack signature checks,
// router, webhook route), the durable local queue on bbolt, the Slack
// client of infra/slackapi against slackfake, the repository's policies,
// and the Mackerel client against mackerelfake.

const (
	hookUser = "mackerel"
	hookPass = "correct-horse-battery-staple"

	chAlerts  = "C0ALERTS01"
	chStaging = "C0STAGING1"
	chProd    = "C0PRODALRT"
	oncall    = "S0ONCALL01"

	allowed = "U0SRE00001" // in the sre group of policies/groups.yaml
	refused = "U0DEV00001" // in dev only
)

const testRoutes = `
routes:
  - name: staging quietly
    match: {environment: staging}
    channel: C0STAGING1
  - name: production critical pages
    match: {environment: production, status: [critical]}
    channel: C0PRODALRT
    mention: S0ONCALL01
  - name: noise
    match: {monitor: ["*(test)*"]}
    drop: true
  - name: critical anywhere else pages too
    match: {status: [critical]}
    channel: C0ALERTS01
    mention: S0ONCALL01
default:
  channel: C0ALERTS01
`

// vclock is a virtual clock: sleeping advances it instead of waiting, and
// timers (the queue's deferred jobs and retries) fire when env.idle finds
// nothing else to do and moves the clock to the earliest of them. Pacing
// thousands of posts costs no wall time while everything that reads it
// (the pacer, Slack client, fake Slack's rate limit, the service, the
// queue) agrees on when things happen.
type vclock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*vtimer
	seq    int
}

type vtimer struct {
	at  time.Time
	seq int // fires timers due at the same instant in creation order
	f   func()
}

func (c *vclock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *vclock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return ctx.Err()
}

// AfterFunc implements localqueue.Clock.
func (c *vclock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	tm := &vtimer{at: c.t.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, tm)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == tm {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// fireNext moves the clock to the earliest timer (if it is ahead), runs
// the timer and reports whether there was one.
func (c *vclock) fireNext() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	first := 0
	for i, x := range c.timers {
		if y := c.timers[first]; x.at.Before(y.at) || (x.at.Equal(y.at) && x.seq < y.seq) {
			first = i
		}
	}
	tm := c.timers[first]
	c.timers = append(c.timers[:first], c.timers[first+1:]...)
	if tm.at.After(c.t) {
		c.t = tm.at
	}
	c.mu.Unlock()
	tm.f()
	return true
}

type envOptions struct {
	threshold int    // storm threshold (default 1000: no storms)
	routes    string // routing rules (default testRoutes)
	noMK      bool   // no Mackerel API key
	// realTime runs on the real clock (real sleeps, real queue delays)
	// instead of the virtual one: for races that need work to overlap in
	// wall time, such as a post held by a Retry-After wait.
	realTime bool
	access   AccessModalOpener
}

type env struct {
	t       *testing.T
	fake    *slackfake.Fake
	mk      *mackerelfake.Fake
	store   bot.Store
	queue   *localqueue.Queue
	svc     *alert.Service
	srv     *httptest.Server
	router  *router.Router
	now     func() time.Time
	clock   *vclock
	limited atomic.Int64 // rate-limit waits reported by the Slack client
}

// storeDir is where the test's bbolt file lives: memory-backed when the
// machine has /dev/shm (thousands of fsyncs otherwise dominate the run).
func storeDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "tokken-alertui-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	// Everything runs on a virtual clock: paced posts cost no wall time.
	c := &vclock{t: time.Now()}
	e := &env{t: t, now: c.Now, clock: c}
	sleep := c.Sleep
	var qclock localqueue.Clock = c
	if o.realTime {
		e.now, e.clock, sleep, qclock = time.Now, nil, nil, nil
	}
	if o.threshold == 0 {
		o.threshold = 1000
	}
	e.fake = slackfake.New(t, slackfake.WithClock(e.now))
	for _, ch := range []string{chAlerts, chStaging, chProd} {
		e.fake.AddChannel(ch, strings.ToLower(ch))
	}
	e.fake.AddUser(slackfake.User{ID: allowed, Name: "sre", Email: "sre@example.com"})
	e.fake.AddUser(slackfake.User{ID: refused, Name: "dev", Email: "dev@example.com"})
	e.mk = mackerelfake.New(t, "")

	st, err := boltstore.Open(filepath.Join(storeDir(t), "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	log := discardLog()
	client := slackapi.New(e.fake.Token(), slackapi.Options{
		APIURL: e.fake.APIURL(), Logger: log, Sleep: sleep, MaxAttempts: 8,
		OnRateLimited: func(string, time.Duration) { e.limited.Add(1) }, Now: e.now,
	})
	jobs := bot.NewJobMux()
	e.queue, err = localqueue.New(st, jobs.HandleJob, localqueue.Options{Workers: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond, Log: log, Clock: qclock})
	if err != nil {
		t.Fatal(err)
	}
	if o.routes == "" {
		o.routes = testRoutes
	}
	routes, err := policies.ParseRoutes("routes.yaml", []byte(o.routes))
	if err != nil {
		t.Fatal(err)
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	view := Options{Location: tokyo}
	poster := NewPoster(client, NewPacer(0, e.now), view, e.now)
	e.svc, err = alert.NewService(alert.Options{
		Store: st, Queue: e.queue, Notifier: poster, Routes: routes, DefaultChannel: chAlerts,
		StormThreshold: o.threshold, Now: e.now, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Register(jobs)
	rt, err := router.New(router.Deps{Store: st, Queue: e.queue, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Service: e.svc, Slack: client, Authorizer: set, Directory: slackdir.New(client, set.SlackUserGroups(), log),
		Access: o.access, View: view, Now: e.now, Log: log}
	if !o.noMK {
		mc, err := mackerel.New(e.mk.URL(), e.mk.APIKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		deps.Closer, deps.Downtimer = mc, mc
	}
	ui, err := New(deps)
	if err != nil {
		t.Fatal(err)
	}
	ui.Register(rt)
	e.router = rt
	wh, err := NewWebhook(hookUser, hookPass, e.svc, log)
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(httpapi.Deps{Router: rt, Verifier: slacksig.Verifier{Secret: []byte(e.fake.SigningSecret()), Now: e.now},
		Mackerel: wh, Log: log})
	e.srv = httptest.NewServer(h)
	e.queue.Start()
	t.Cleanup(func() {
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Wait(ctx)
		_ = e.queue.Close(ctx)
		_ = st.Close()
	})
	return e
}

// webhook posts body to /webhooks/mackerel with the given credentials
// (empty user: none).
func (e *env) webhook(body []byte, user, pass string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/webhooks/mackerel", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, string) {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// send delivers a Mackerel webhook and waits until its jobs ran.
func (e *env) send(body []byte) {
	e.t.Helper()
	if st, b := e.webhook(body, hookUser, hookPass); st != http.StatusAccepted {
		e.t.Fatalf("webhook: %d %s", st, b)
	}
	e.idle()
}

// idle runs the queue until nothing is left: whenever no job is ready or
// running, the virtual clock moves to the next deferred job (a channel's
// flush, a retry) and releases it.
func (e *env) idle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if err := e.queue.Idle(ctx); err != nil {
			e.t.Fatalf("jobs did not finish: %v", err)
		}
		if e.clock == nil || !e.clock.fireNext() {
			return
		}
	}
}

// command runs /alerts text as user and returns the answer.
func (e *env) command(user, text string) (responseType, answer string) {
	e.t.Helper()
	req, _ := e.fake.SlashCommand(e.t, e.srv.URL+"/slack/commands", slack.SlashCommand{
		Command: Command, Text: text, UserID: user, ChannelID: chAlerts, UserName: "someone"})
	st, body := e.do(req)
	var msg struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &msg) != nil {
		e.t.Fatalf("/alerts %s: %d %q", text, st, body)
	}
	return msg.ResponseType, msg.Text
}

// click presses button actionID on the message of alert key.
func (e *env) click(user, actionID, key string) int {
	e.t.Helper()
	rec, err := e.svc.Get(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	cb := slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		Channel:   slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: rec.Channel}}},
		Container: slack.Container{ChannelID: rec.Channel, MessageTs: rec.TS},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{
			ActionID: actionID, BlockID: BlockActions, Value: key, ActionTs: fmt.Sprint(time.Now().UnixNano()),
		}}},
	}
	req, _ := e.fake.Interaction(e.t, e.srv.URL+"/slack/interactions", cb)
	st, _ := e.do(req)
	e.afterAcks()
	e.idle()
	return st
}

// afterAcks waits for the work handlers deferred until after their ack
// (router.AfterAck: the answers to the clicker).
func (e *env) afterAcks() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.router.Wait(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// message returns the Slack message of alert key.
func (e *env) message(key string) (alert.Record, slackfake.Message) {
	e.t.Helper()
	rec, err := e.svc.Get(context.Background(), key)
	if err != nil {
		e.t.Fatalf("alert %s: %v", key, err)
	}
	m, ok := e.fake.Message(rec.Channel, rec.TS)
	if !ok {
		e.t.Fatalf("alert %s: no message at %s/%s", key, rec.Channel, rec.TS)
	}
	return rec, m
}

// topLevel returns channel's top-level messages.
func (e *env) topLevel(channel string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range e.fake.Messages(channel) {
		if m.ThreadTS == "" || m.ThreadTS == m.TS {
			out = append(out, m)
		}
	}
	return out
}

// lastEphemeral returns the text of the latest ephemeral shown to user.
func (e *env) lastEphemeral(user string) string {
	eph := e.fake.Ephemerals(user)
	if len(eph) == 0 {
		return ""
	}
	return eph[len(eph)-1].Text
}

// fixture reads a payload from testdata, shared with the parser tests.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buttons lists the action ids of a message's buttons.
func buttons(m slackfake.Message) []string {
	var ids []string
	for _, att := range m.Attachments {
		for _, b := range att.Blocks.BlockSet {
			if ab, ok := b.(*slack.ActionBlock); ok {
				for _, el := range ab.Elements.ElementSet {
					if btn, ok := el.(*slack.ButtonBlockElement); ok {
						ids = append(ids, btn.ActionID)
					}
				}
			}
		}
	}
	return ids
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
