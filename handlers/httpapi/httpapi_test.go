package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// chanQueue hands enqueued jobs to the test.
type chanQueue struct{ jobs chan bot.Job }

func (q chanQueue) Enqueue(_ context.Context, j bot.Job) error { q.jobs <- j; return nil }

type env struct {
	t       testing.TB
	fake    *slackfake.Fake
	router  *router.Router
	handler http.Handler
	queue   chanQueue
	store   *boltstore.Store
	logs    *logbuf.Buffer
}

// newEnv is an HTTP handler over a router.Router on a bbolt store.
func newEnv(t testing.TB, ackTimeout time.Duration, mackerel http.Handler) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "h.db")
	store, err := boltstore.Open(path, boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	q := chanQueue{jobs: make(chan bot.Job, 16)}
	r, err := router.New(router.Deps{Store: store, Queue: q, Log: log, AckTimeout: ackTimeout})
	if err != nil {
		t.Fatal(err)
	}
	fake := slackfake.New(t)
	e := &env{t: t, fake: fake, router: r, queue: q, store: store, logs: logs}
	e.handler = New(Deps{Router: r, Verifier: slacksig.Verifier{Secret: []byte(fake.SigningSecret())}, Log: log, Mackerel: mackerel, Version: "test"})
	t.Cleanup(func() { _ = r.Wait(context.Background()) })
	return e
}

func (e *env) do(req *http.Request) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

func (e *env) command(text string) (*httptest.ResponseRecorder, slack.SlashCommand) {
	req, cmd := e.fake.SlashCommand(e.t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: text, UserID: "U1", ChannelID: "C1"})
	return e.do(req), cmd
}

func reply(t *testing.T, rec *httptest.ResponseRecorder) router.Reply {
	t.Helper()
	var r router.Reply
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("answer %d %q is not a reply: %v", rec.Code, rec.Body, err)
	}
	return r
}

func (e *env) signed(path string, body []byte, at time.Time) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "http://tokken"+path, bytes.NewReader(body))
	slacksig.SignRequest(req, []byte(e.fake.SigningSecret()), at, body)
	return req
}

func TestCommand(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	e.router.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		switch cmd.Text {
		case "help":
			return &slack.Msg{Text: "Usage: /access <profile> <duration> <reason>"}, nil
		case "fail":
			return nil, errors.New("database on fire")
		case "panic":
			panic("nil map")
		case "public":
			return &slack.Msg{Text: "hello all", ResponseType: slack.ResponseTypeInChannel}, nil
		}
		return nil, nil
	})
	tests := []struct {
		text, wantType, wantText string
	}{
		{"help", "ephemeral", "Usage: /access"},
		{"public", "in_channel", "hello all"},
		{"fail", "ephemeral", "Something went wrong with /access (ref `req-"},
		{"panic", "ephemeral", "Something went wrong"},
	}
	for _, tt := range tests {
		rec, _ := e.command(tt.text)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d %s", tt.text, rec.Code, rec.Body)
		}
		r := reply(t, rec)
		if r.ResponseType != tt.wantType || !strings.Contains(r.Text, tt.wantText) {
			t.Errorf("%s: got %+v", tt.text, r)
		}
		if strings.Contains(rec.Body.String(), "database on fire") {
			t.Error("internal error text shown to the user")
		}
	}
	if !strings.Contains(e.logs.String(), "database on fire") {
		t.Error("handler error not logged")
	}
	// A nil message is an empty 200.
	rec, _ := e.command("")
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("nil message: %d %q", rec.Code, rec.Body)
	}
}

func TestReplayedCommandRunsOnce(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	var runs atomic.Int32
	e.router.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		runs.Add(1)
		return &slack.Msg{Text: "filed"}, nil
	})
	req, cmd := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "prod 1h fix", UserID: "U1", ChannelID: "C1"})
	body, _ := io.ReadAll(req.Body)
	send := func() router.Reply {
		r := httptest.NewRequest(http.MethodPost, "http://tokken/slack/commands", bytes.NewReader(body))
		r.Header = req.Header.Clone()
		rec := e.do(r)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d %q", rec.Code, rec.Body)
		}
		return reply(t, rec)
	}
	if r := send(); r.Text != "filed" {
		t.Fatalf("first delivery answered %+v", r)
	}
	// The same signed bytes again (a captured request replayed inside the
	// 5-minute window), and the same command re-signed later.
	if r := send(); r.Text != router.MsgRepeatedCommand {
		t.Errorf("replay answered %+v", r)
	}
	again, _ := e.fake.SlashCommand(t, "http://tokken/slack/commands", cmd)
	if r := reply(t, e.do(again)); r.Text != router.MsgRepeatedCommand {
		t.Errorf("re-signed repeat answered %+v", r)
	}
	// A new invocation (fresh trigger_id) runs.
	if r := reply(t, e.do(func() *http.Request {
		r, _ := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "prod 1h fix", UserID: "U1", ChannelID: "C1"})
		return r
	}())); r.Text != "filed" {
		t.Errorf("a new invocation answered %+v", r)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	// Each refusal is logged with the request's id and what was refused.
	refusals := 0
	for _, l := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "repeated command ignored" {
			continue
		}
		refusals++
		if id, _ := m["request_id"].(string); id == "" || m["command"] != "/access" || m["user"] != "U1" || m["dedup_key"] == nil {
			t.Errorf("refusal logged as %s", l)
		}
	}
	if refusals != 2 {
		t.Errorf("%d refusals logged, want 2:\n%s", refusals, e.logs)
	}
	// The two deliveries are remembered in the store.
	recs, err := e.store.List(t.Context(), router.KindSeen, bot.KeyRange{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Errorf("%d %s records in the store, want 2", len(recs), router.KindSeen)
	}
}

// crashChildEnv names the directory a child process of TestRestart works
// in (see crashChild).
const crashChildEnv = "TOKKEN_TEST_CRASH_DIR"

// crashRequest is the signed request TestRestart delivers twice.
type crashRequest struct {
	Secret string
	Header http.Header
	Body   []byte
}

// serveCrashRequest answers req with a handler over a fresh Router on the
// bbolt file in dir; run counts the command handler's runs.
func serveCrashRequest(t *testing.T, dir string, req crashRequest, runs *atomic.Int32) (router.Reply, *boltstore.Store) {
	store, err := boltstore.Open(filepath.Join(dir, "h.db"), boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	rt, err := router.New(router.Deps{Store: store, Queue: chanQueue{jobs: make(chan bot.Job, 1)}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rt.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		runs.Add(1)
		return &slack.Msg{Text: "filed"}, nil
	})
	h := New(Deps{Router: rt, Verifier: slacksig.Verifier{Secret: []byte(req.Secret)}, Log: log})
	r := httptest.NewRequest(http.MethodPost, "http://tokken/slack/commands", bytes.NewReader(req.Body))
	r.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return reply(t, rec), store
}

// TestRestart: a signed command runs in a process that then dies at once
// (os.Exit: no shutdown, the bbolt file is never closed); a new process
// over the same file refuses the replay of that request.
func TestRestart(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	dir := t.TempDir()
	fake := slackfake.New(t)
	sent, _ := fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "prod 1h fix", UserID: "U1", ChannelID: "C1"})
	body, err := io.ReadAll(sent.Body)
	if err != nil {
		t.Fatal(err)
	}
	req := crashRequest{Secret: fake.SigningSecret(), Header: sent.Header, Body: body}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "request.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestRestart$")
	child.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := child.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "first delivery: filed") {
		t.Fatalf("the first process: %v\n%s", err, out)
	}

	var runs atomic.Int32
	r, store := serveCrashRequest(t, dir, req, &runs)
	t.Cleanup(func() { _ = store.Close() })
	if r.Text != router.MsgRepeatedCommand || runs.Load() != 0 {
		t.Errorf("replay after the crash answered %q and ran the handler %d times; want %q and none", r.Text, runs.Load(), router.MsgRepeatedCommand)
	}
}

// crashChild is TestRestart's first process: it answers the request once
// and exits without closing anything.
func crashChild(t *testing.T, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req crashRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	r, _ := serveCrashRequest(t, dir, req, &runs)
	fmt.Printf("first delivery: %s\n", r.Text)
	os.Exit(0)
}

func TestUnknownCommand(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	e.router.HandleCommand("/alerts", func(context.Context, slack.SlashCommand) (*slack.Msg, error) { return nil, nil })
	rec, _ := e.command("help")
	r := reply(t, rec)
	if r.ResponseType != "ephemeral" || !strings.Contains(r.Text, "Unknown command /access") || !strings.Contains(r.Text, "/alerts") {
		t.Errorf("got %+v", r)
	}
}

func TestVerification(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	called := false
	e.router.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) { called = true; return nil, nil })
	body := []byte("command=%2Faccess&user_id=U1&text=help")
	now := time.Now()
	for _, path := range []string{"/slack/commands", "/slack/interactions", "/slack/options", "/slack/events"} {
		tests := []struct {
			name   string
			req    func() *http.Request
			status int
			reason string
		}{
			{"unsigned", func() *http.Request { return httptest.NewRequest("POST", path, bytes.NewReader(body)) }, 401, "missing signature"},
			{"stale", func() *http.Request { return e.signed(path, body, now.Add(-6*time.Minute)) }, 401, "5-minute window"},
			{"tampered", func() *http.Request {
				r := e.signed(path, body, now)
				r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte("help"), []byte("hack"), 1)))
				return r
			}, 401, "signature mismatch"},
			{"wrong secret", func() *http.Request {
				r := httptest.NewRequest("POST", path, bytes.NewReader(body))
				slacksig.SignRequest(r, []byte("not-the-secret"), now, body)
				return r
			}, 401, "signature mismatch"},
			{"oversized", func() *http.Request {
				big := bytes.Repeat([]byte("a"), slacksig.MaxBody+1)
				return e.signed(path, big, now)
			}, 413, "larger than 1 MiB"},
		}
		for _, tt := range tests {
			rec := e.do(tt.req())
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.reason) {
				t.Errorf("%s %s: %d %q, want %d %q", path, tt.name, rec.Code, rec.Body, tt.status, tt.reason)
			}
		}
	}
	if called {
		t.Error("a rejected request reached the handler")
	}
}

func TestMalformed(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	form := func(v url.Values) []byte { return []byte(v.Encode()) }
	tests := []struct {
		name, path string
		body       []byte
		reason     string
	}{
		{"command without command", "/slack/commands", form(url.Values{"user_id": {"U1"}}), "missing command"},
		{"command without user", "/slack/commands", form(url.Values{"command": {"/access"}}), "missing user_id"},
		{"bad form", "/slack/commands", []byte("%zz"), "malformed slash command"},
		{"no payload", "/slack/interactions", form(url.Values{"x": {"1"}}), "missing payload"},
		{"payload not json", "/slack/interactions", form(url.Values{"payload": {"{"}}), "malformed interaction payload"},
		{"payload without type", "/slack/interactions", form(url.Values{"payload": {`{"trigger_id":"1"}`}}), "missing type"},
		{"options not json", "/slack/options", form(url.Values{"payload": {"[]"}}), "malformed interaction payload"},
		{"event not json", "/slack/events", []byte("{"), "malformed event"},
		{"event without type", "/slack/events", []byte(`{}`), "missing type"},
		{"callback without id", "/slack/events", []byte(`{"type":"event_callback","event":{"type":"app_mention"}}`), "without event_id"},
		{"callback without event", "/slack/events", []byte(`{"type":"event_callback","event_id":"Ev1"}`), "without an event type"},
		{"verification without challenge", "/slack/events", []byte(`{"type":"url_verification"}`), "without challenge"},
	}
	for _, tt := range tests {
		req := e.signed(tt.path, tt.body, time.Now())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := e.do(req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tt.reason) {
			t.Errorf("%s: %d %q, want 400 %q", tt.name, rec.Code, rec.Body, tt.reason)
		}
	}
}

func TestURLVerification(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	rec := e.do(e.signed("/slack/events", []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`), time.Now()))
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || got["challenge"] != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification: %d %q", rec.Code, rec.Body)
	}
}

func eventBody(id string) []byte {
	return []byte(`{"token":"x","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"` + id +
		`","event_time":1700000000,"event":{"type":"app_mention","user":"U1","text":"<@U0TOKKENBOT> hi","channel":"C1","ts":"1700000000.000100"}}`)
}

func TestEventRetryHasNoDuplicateEffect(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	var calls atomic.Int32
	fail := atomic.Bool{}
	e.router.HandleEvent("app_mention", func(_ context.Context, ev router.Event) error {
		calls.Add(1)
		if ev.ID == "" || ev.TeamID != "T1" || !strings.Contains(string(ev.Inner), "hi") || ev.Time.Unix() != 1700000000 {
			t.Errorf("event %+v", ev)
		}
		if fail.Load() {
			return errors.New("downstream unavailable")
		}
		return nil
	})
	first := e.do(e.signed("/slack/events", eventBody("Ev1"), time.Now()))
	retry := e.signed("/slack/events", eventBody("Ev1"), time.Now())
	retry.Header.Set("X-Slack-Retry-Num", "1")
	retry.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	second := e.do(retry)
	if first.Code != 200 || second.Code != 200 {
		t.Fatalf("statuses %d %d", first.Code, second.Code)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times for one event delivered twice", n)
	}
	if !strings.Contains(e.logs.String(), `"slack_retry_num":1`) || !strings.Contains(e.logs.String(), "duplicate event delivery ignored") {
		t.Errorf("retry not logged: %s", e.logs)
	}

	// A failed delivery is forgotten so that Slack's retry runs again.
	fail.Store(true)
	if rec := e.do(e.signed("/slack/events", eventBody("Ev2"), time.Now())); rec.Code != 500 {
		t.Errorf("failed event answered %d, want 500 so Slack retries", rec.Code)
	}
	fail.Store(false)
	if rec := e.do(e.signed("/slack/events", eventBody("Ev2"), time.Now())); rec.Code != 200 {
		t.Errorf("retry answered %d", rec.Code)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3 (Ev1 once, Ev2 failed then retried)", n)
	}

	// Unhandled event types and other envelopes are acknowledged.
	other := []byte(`{"type":"event_callback","event_id":"Ev3","event":{"type":"reaction_added"}}`)
	if rec := e.do(e.signed("/slack/events", other, time.Now())); rec.Code != 200 {
		t.Errorf("unhandled event type answered %d", rec.Code)
	}
	if rec := e.do(e.signed("/slack/events", []byte(`{"type":"app_rate_limited","minute_rate_limited":1518467820}`), time.Now())); rec.Code != 200 {
		t.Errorf("app_rate_limited answered %d", rec.Code)
	}
}

func TestInteractions(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	var approvals atomic.Int32
	e.router.HandleInteraction("access", func(_ context.Context, ic slack.InteractionCallback) (any, error) {
		switch ic.Type {
		case slack.InteractionTypeBlockActions:
			approvals.Add(1)
			return nil, nil
		case slack.InteractionTypeViewSubmission:
			return slack.NewErrorsViewSubmissionResponse(map[string]string{"reason": "A reason is required"}), nil
		}
		return nil, errors.New("unexpected")
	})
	e.router.HandleOptions("access", func(_ context.Context, ic slack.InteractionCallback) (any, error) {
		return &slack.OptionsResponse{Options: []*slack.OptionBlockObject{
			slack.NewOptionBlockObject("i-0abc", slack.NewTextBlockObject("plain_text", "web-01 "+ic.Value, false, false), nil),
		}}, nil
	})
	click := slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "U2"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "access:approve", Value: "r-1"}}},
	}
	req, sent := e.fake.Interaction(t, "http://tokken/slack/interactions", click)
	if rec := e.do(req); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("click: %d %q", rec.Code, rec.Body)
	}
	// The same delivery again (same trigger_id): no second effect.
	again, _ := e.fake.Interaction(t, "http://tokken/slack/interactions", sent)
	if rec := e.do(again); rec.Code != 200 {
		t.Fatalf("repeat: %d", rec.Code)
	}
	// A new click (new trigger_id) counts.
	req, _ = e.fake.Interaction(t, "http://tokken/slack/interactions", click)
	e.do(req)
	if n := approvals.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (the repeat ignored)", n)
	}

	submit := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: "U1"},
		View: slack.View{ID: "V1", CallbackID: "access:request", Hash: "h1"}}
	req, _ = e.fake.Interaction(t, "http://tokken/slack/interactions", submit)
	rec := e.do(req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"response_action":"errors"`) || !strings.Contains(rec.Body.String(), "A reason is required") {
		t.Errorf("view submission: %d %q", rec.Code, rec.Body)
	}

	// Handler errors are 500 with a reference, and the delivery may be retried.
	broken := slack.InteractionCallback{Type: slack.InteractionTypeShortcut, CallbackID: "access:shortcut", User: slack.User{ID: "U1"}}
	req, _ = e.fake.Interaction(t, "http://tokken/slack/interactions", broken)
	if rec := e.do(req); rec.Code != 500 || !strings.Contains(rec.Body.String(), "ref req-") {
		t.Errorf("failing handler: %d %q", rec.Code, rec.Body)
	}

	// Unknown namespaces are acknowledged, not errors.
	unknown := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "U1"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "nobody:home"}}}}
	req, _ = e.fake.Interaction(t, "http://tokken/slack/interactions", unknown)
	if rec := e.do(req); rec.Code != 200 {
		t.Errorf("unknown namespace: %d", rec.Code)
	}

	// External select options, on /slack/options and (as Slack may) on /slack/interactions.
	for _, path := range []string{"/slack/options", "/slack/interactions"} {
		sug := slack.InteractionCallback{Type: slack.InteractionTypeBlockSuggestion, ActionID: "access:instance", Value: "web", User: slack.User{ID: "U1"}}
		req, _ = e.fake.Interaction(t, "http://tokken"+path, sug)
		rec = e.do(req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"value":"i-0abc"`) || !strings.Contains(rec.Body.String(), "web-01 web") {
			t.Errorf("options via %s: %d %q", path, rec.Code, rec.Body)
		}
	}
}

func TestSlowCommandIsAcknowledgedAndAnsweredLater(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond, nil)
	release := make(chan struct{})
	e.router.HandleCommand("/access", func(ctx context.Context, _ slack.SlashCommand) (*slack.Msg, error) {
		<-release
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &slack.Msg{Text: "your request r-1 is pending"}, nil
	})
	start := time.Now()
	req, cmd := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "prod 1h fix", UserID: "U1", ChannelID: "C1"})
	rec := e.do(req) // returns while the handler still waits for release
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ack took %s", d)
	}
	if r := reply(t, rec); !strings.Contains(r.Text, "Working on it") {
		t.Errorf("ack %+v", r)
	}
	close(release)
	var job bot.Job
	select {
	case job = <-e.queue.jobs:
	case <-time.After(10 * time.Second):
		t.Fatal("late answer never queued")
	}
	if job.Kind != router.JobRespond {
		t.Fatalf("queued %+v", job)
	}
	var p router.RespondPayload
	if err := job.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.ResponseURL != cmd.ResponseURL || p.Reply.Text != "your request r-1 is pending" {
		t.Errorf("payload %+v", p)
	}

	// The job posts it to the response_url (here: the fake's).
	client := slackapi.New(e.fake.Token(), slackapi.Options{APIURL: e.fake.APIURL(), Logger: slog.New(slog.DiscardHandler)})
	if err := router.RespondJob(client)(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	id := cmd.ResponseURL[strings.LastIndex(cmd.ResponseURL, "/")+1:]
	posts := e.fake.ResponsePosts(id)
	if len(posts) != 1 || !posts[0].OK() || posts[0].Text != "your request r-1 is pending" {
		t.Errorf("response_url posts: %+v", posts)
	}
	if !strings.Contains(e.logs.String(), "exceeded the ack timeout") {
		t.Error("slow ack not logged")
	}
}

func TestRespondJobRejectsBadPayload(t *testing.T) {
	h := router.RespondJob(nil)
	for _, j := range []bot.Job{{ID: "1", Kind: router.JobRespond, Payload: []byte("{")}, {ID: "2", Kind: router.JobRespond, Payload: []byte(`{}`)}} {
		if err := h(context.Background(), j); !bot.IsPermanent(err) {
			t.Errorf("job %s: %v, want a permanent error", j.ID, err)
		}
	}
}

func TestOtherRoutesAndAccessLog(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	rec := e.do(httptest.NewRequest("POST", "/webhooks/mackerel", strings.NewReader(`{"event":"sample"}`)))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "not configured") {
		t.Errorf("mackerel without handler: %d %q", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set(HeaderRequestID, "lambda-req-42")
	rec = e.do(req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"status":"ok"`) || rec.Header().Get(HeaderRequestID) != "lambda-req-42" {
		t.Errorf("healthz: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := e.do(httptest.NewRequest("GET", "/slack/commands", nil)); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /slack/commands: %d", rec.Code)
	}
	req = httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set(HeaderRequestID, "bad id with spaces\n")
	if got := e.do(req).Header().Get(HeaderRequestID); !strings.HasPrefix(got, "req-") {
		t.Errorf("malformed incoming request id kept: %q", got)
	}

	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["request_id"] == "lambda-req-42" && m["msg"] == "http request" {
			line = m
		}
	}
	if line == nil || line["path"] != "/healthz" || line["status"] != float64(200) || line["ack_ms"] == nil {
		t.Errorf("access log line: %v\n%s", line, e.logs)
	}
	// A refused request of Slack's retry: a WARN line naming the retry.
	req = httptest.NewRequest("POST", "/slack/commands", strings.NewReader("command=%2Faccess"))
	req.Header.Set(HeaderRequestID, "id-retry")
	req.Header.Set("X-Slack-Retry-Num", "2")
	req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	e.do(req)
	if !strings.Contains(e.logs.String(), `"level":"WARN","msg":"http request","request_id":"id-retry","method":"POST","path":"/slack/commands","status":401`) ||
		!strings.Contains(e.logs.String(), `"slack_retry_num":2,"slack_retry_reason":"http_timeout"`) {
		t.Errorf("no WARN access line for the refused retry:\n%s", e.logs)
	}

	seen := make(chan string, 1)
	e = newEnv(t, time.Second, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- string(b)
		w.WriteHeader(http.StatusAccepted)
	}))
	if rec := e.do(httptest.NewRequest("POST", "/webhooks/mackerel", strings.NewReader(`{"event":"sample"}`))); rec.Code != 202 || <-seen != `{"event":"sample"}` {
		t.Errorf("mackerel handler not used: %d", rec.Code)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	e.router.HandleCommand("/x", func(context.Context, slack.SlashCommand) (*slack.Msg, error) { return nil, nil })
	defer func() {
		if recover() == nil {
			t.Error("duplicate registration accepted")
		}
	}()
	e.router.HandleCommand("/x", func(context.Context, slack.SlashCommand) (*slack.Msg, error) { return nil, nil })
}

// answeredClearly fails t unless rec is a 200, or a 400 whose body starts
// with prefix and goes on to say what was wrong.
func answeredClearly(t *testing.T, rec *httptest.ResponseRecorder, prefix string) {
	t.Helper()
	switch body := rec.Body.String(); {
	case rec.Code == http.StatusOK:
	case rec.Code == http.StatusBadRequest && strings.HasPrefix(body, prefix) && len(strings.TrimSpace(body)) > len(prefix):
	default:
		t.Fatalf("answer %d %q; want 200, or 400 %q and a reason", rec.Code, body, prefix)
	}
}

// FuzzCommandForm sends any form body as a signed slash command: it is
// answered 200 or refused 400 with the reason, never a panic or a 5xx.
func FuzzCommandForm(f *testing.F) {
	f.Add("command=%2Faccess&text=help&user_id=U1&trigger_id=1.2")
	f.Add("command=/access&user_id=U1&text=a+b%26c")
	f.Add("ssl_check=1&token=x")
	f.Add("%zz")
	f.Add("a;b=c")
	e := newEnv(f, time.Second, nil)
	e.router.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{Text: "ok " + cmd.Text}, nil
	})
	f.Fuzz(func(t *testing.T, body string) {
		req := e.signed("/slack/commands", []byte(body), time.Now())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		answeredClearly(t, rec, "malformed slash command: ")
	})
}

// FuzzInteractionPayload sends any payload as a signed interaction and a
// signed options request: answered 200 or refused 400 with the reason.
func FuzzInteractionPayload(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "interactions", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no interaction fixtures: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"block_actions","actions":[{"block_id":1}]}`))
	f.Add([]byte(`[]`))
	e := newEnv(f, time.Second, nil)
	e.router.HandleInteraction("access", func(context.Context, slack.InteractionCallback) (any, error) { return nil, nil })
	e.router.HandleOptions("access", func(context.Context, slack.InteractionCallback) (any, error) { return router.NoOptions(), nil })
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, path := range []string{"/slack/interactions", "/slack/options"} {
			req := e.signed(path, []byte(url.Values{"payload": {string(payload)}}.Encode()), time.Now())
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			answeredClearly(t, rec, "malformed interaction payload: ")
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add(eventBody("Ev1"))
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`))
	f.Add([]byte(`{"type":"event_callback","event_id":"1","event":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		challenge, ev, err := router.ParseEvent(b)
		if err == nil && ev != nil && (ev.ID == "" || ev.Type == "") {
			t.Errorf("accepted an event without id or type: %+v", ev)
		}
		_ = challenge
	})
}
