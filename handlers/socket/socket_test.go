package socket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/logbuf"
)

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, bot.Job) error { return nil }

func newRouter(t *testing.T) *router.Router {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	r, err := router.New(router.Deps{Store: store, Queue: nopQueue{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHandleMapsToRouter(t *testing.T) {
	r := newRouter(t)
	r.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{Text: "help for " + cmd.UserID}, nil
	})
	var clicks, events atomic.Int32
	r.HandleInteraction("access", func(_ context.Context, ic slack.InteractionCallback) (any, error) {
		clicks.Add(1)
		if ic.Type == slack.InteractionTypeViewSubmission {
			return slack.NewClearViewSubmissionResponse(), nil
		}
		return nil, nil
	})
	r.HandleOptions("access", func(context.Context, slack.InteractionCallback) (any, error) {
		return &slack.OptionsResponse{Options: []*slack.OptionBlockObject{slack.NewOptionBlockObject("i-1", slack.NewTextBlockObject("plain_text", "web-01", false, false), nil)}}, nil
	})
	failEvents := atomic.Bool{}
	r.HandleEvent("app_mention", func(context.Context, router.Event) error {
		events.Add(1)
		if failEvents.Load() {
			return errors.New("down")
		}
		return nil
	})
	var logs logbuf.Buffer
	h := New(r, slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx := context.Background()
	env := func(typ, id, payload string) Envelope {
		return Envelope{Type: typ, EnvelopeID: id, Payload: json.RawMessage(payload)}
	}

	got := h.Handle(ctx, env(TypeSlashCommands, "e1", `{"command":"/access","text":"help","user_id":"U1","trigger_id":"1.2.a","is_enterprise_install":"false"}`))
	if rep, ok := got.Payload.(*router.Reply); !got.Ack || !ok || rep.Text != "help for U1" || rep.ResponseType != "ephemeral" {
		t.Errorf("command: %+v", got)
	}
	got = h.Handle(ctx, env(TypeSlashCommands, "e2", `{"command":"/nope","user_id":"U1","trigger_id":"1.2.b"}`))
	if rep := got.Payload.(*router.Reply); !strings.Contains(rep.Text, "Unknown command /nope") {
		t.Errorf("unknown command: %+v", rep)
	}
	if got := h.Handle(ctx, env(TypeSlashCommands, "e2b", `{"command":`)); !got.Ack || got.Payload != nil {
		t.Errorf("a malformed command must be acknowledged without an answer: %+v", got)
	}

	click := `{"type":"block_actions","trigger_id":"t1","user":{"id":"U2"},"actions":[{"action_id":"access:approve","block_id":"b","type":"button","value":"r1"}]}`
	for range 2 { // the same delivery twice
		if got := h.Handle(ctx, env(TypeInteractive, "e3", click)); !got.Ack || got.Payload != nil {
			t.Errorf("click: %+v", got)
		}
	}
	if n := clicks.Load(); n != 1 {
		t.Errorf("click handled %d times", n)
	}
	sub := `{"type":"view_submission","trigger_id":"t2","user":{"id":"U2"},"view":{"id":"V1","callback_id":"access:request","state":{"values":{}}}}`
	got = h.Handle(ctx, env(TypeInteractive, "e4", sub))
	if b, _ := json.Marshal(got.Payload); !strings.Contains(string(b), `"response_action":"clear"`) {
		t.Errorf("view submission payload %s", b)
	}
	sug := `{"type":"block_suggestion","action_id":"access:instance","block_id":"b","value":"web","user":{"id":"U2"}}`
	got = h.Handle(ctx, env(TypeInteractive, "e5", sug))
	if b, _ := json.Marshal(got.Payload); !strings.Contains(string(b), `"value":"i-1"`) {
		t.Errorf("options payload %s", b)
	}
	if got := h.Handle(ctx, env(TypeInteractive, "e5b", `[]`)); !got.Ack || got.Payload != nil {
		t.Errorf("a malformed interaction must be acknowledged without an answer: %+v", got)
	}

	event := func(id string) Envelope {
		return env(TypeEventsAPI, "e-"+id, fmt.Sprintf(`{"type":"event_callback","event_id":%q,"event_time":1,"event":{"type":"app_mention","text":"hi"}}`, id))
	}
	if got := h.Handle(ctx, event("Ev1")); !got.Ack {
		t.Error("event not acknowledged")
	}
	if got := h.Handle(ctx, event("Ev1")); !got.Ack || events.Load() != 1 {
		t.Errorf("redelivered event ran again (%d runs)", events.Load())
	}
	failEvents.Store(true)
	retried := event("Ev2")
	retried.RetryAttempt, retried.RetryReason = 1, "timeout"
	if got := h.Handle(ctx, retried); got.Ack {
		t.Error("a failed event was acknowledged: Slack would not redeliver it")
	}
	for _, want := range []string{`"request_id":"sm-e-Ev2"`, `"type":"events_api"`, `"slack_retry_num":1`, `"slack_retry_reason":"timeout"`, `"transport":"socket_mode"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the failed event's line:\n%s", want, logs.String())
		}
	}
	if got := h.Handle(ctx, env(TypeEventsAPI, "bad", `{`)); !got.Ack {
		t.Error("a malformed event must be acknowledged (redelivery cannot fix it)")
	}
	if got := h.Handle(ctx, Envelope{Type: TypeHello}); got.Ack {
		t.Error("connection messages are not requests")
	}
}

// fakeSlack serves apps.connections.open (for the token xapp-1-test) and
// a Socket Mode WebSocket that sends one envelope and reports the
// acknowledgements.
func fakeSlack(t *testing.T, envelope string) (apiURL string, acks <-chan map[string]any) {
	t.Helper()
	ch := make(chan map[string]any, 4)
	apiURL, _ = scriptedSlack(t, 0, func(_ int32, c *websocket.Conn) {
		_ = c.WriteMessage(websocket.TextMessage, []byte(envelope))
		readAcks(c, ch)
	})
	return apiURL, ch
}

func TestRunOverAWebSocket(t *testing.T) {
	r := newRouter(t)
	r.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{Text: "Usage: /access " + cmd.Text}, nil
	})
	envelope := `{"envelope_id":"env-1","type":"slash_commands","accepts_response_payload":true,` +
		`"payload":{"command":"/access","text":"help","user_id":"U1","channel_id":"C1","trigger_id":"1.2.3"}}`
	apiURL, acks := fakeSlack(t, envelope)
	h := New(r, slog.New(slog.DiscardHandler))
	ack := runUntilAck(t, h, NewClient("xapp-1-test", apiURL), acks)
	payload, _ := ack["payload"].(map[string]any)
	if ack["envelope_id"] != "env-1" || payload["text"] != "Usage: /access help" || payload["response_type"] != "ephemeral" {
		t.Errorf("ack %v", ack)
	}
}

func TestRunRejectsBadAppToken(t *testing.T) {
	apiURL, _ := fakeSlack(t, `{}`)
	h := New(newRouter(t), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.Run(ctx, NewClient("xapp-wrong", apiURL))
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("Run with a bad token = %v", err)
	}
}

// scriptedSlack serves apps.connections.open for the token xapp-1-test,
// answering HTTP 500 to the first failOpens calls, and runs script on each WebSocket connection
// (numbered from 1) after sending hello.
func scriptedSlack(t *testing.T, failOpens int32, script func(n int32, c *websocket.Conn)) (apiURL string, conns *atomic.Int32) {
	t.Helper()
	var opens, links atomic.Int32
	var srv *httptest.Server
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer xapp-1-test" {
			fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		if opens.Add(1) <= failOpens {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, `{"ok":true,"url":"ws%s/link"}`, strings.TrimPrefix(srv.URL, "http"))
	})
	mux.HandleFunc("/link", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
		script(links.Add(1), c)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/", &links
}

// readAcks reads c until it fails, sending each acknowledgement to acks.
func readAcks(c *websocket.Conn, acks chan<- map[string]any) {
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(msg, &m) == nil {
			acks <- m
		}
	}
}

const helpEnvelope = `{"envelope_id":"env-2","type":"slash_commands","accepts_response_payload":true,` +
	`"payload":{"command":"/access","text":"help","user_id":"U1","channel_id":"C1","trigger_id":"1.2.4"}}`

func helpRouter(t *testing.T) *router.Router {
	r := newRouter(t)
	r.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{Text: "Usage: /access " + cmd.Text}, nil
	})
	return r
}

// runUntilAck runs h over c until an acknowledgement arrives on acks, then
// stops it and checks it stopped cleanly.
func runUntilAck(t *testing.T, h *Handler, c *Client, acks <-chan map[string]any) map[string]any {
	t.Helper()
	return runUntilAcks(t, h, c, acks, 1)[0]
}

// runUntilAcks is runUntilAck for n acknowledgements.
func runUntilAcks(t *testing.T, h *Handler, c *Client, acks <-chan map[string]any, n int) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, c) }()
	var got []map[string]any
	for len(got) < n {
		select {
		case a := <-acks:
			got = append(got, a)
		case err := <-done:
			t.Fatalf("Run ended before acknowledging: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d acknowledgements over the socket, want %d", len(got), n)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	return got
}

// TestRunReconnects: a failed apps.connections.open is retried, a
// disconnect message is followed by a new connection, and a malformed
// message does not end one.
func TestRunReconnects(t *testing.T) {
	acks := make(chan map[string]any, 4)
	apiURL, conns := scriptedSlack(t, 1, func(n int32, c *websocket.Conn) {
		if n == 1 {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"h"}}`))
		} else {
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":`))
			_ = c.WriteMessage(websocket.TextMessage, []byte(helpEnvelope))
		}
		readAcks(c, acks)
	})
	var logs logbuf.Buffer
	h := New(helpRouter(t), slog.New(slog.NewJSONHandler(&logs, nil)))
	c := NewClient("xapp-1-test", apiURL)
	c.backoff = [2]time.Duration{time.Millisecond, 2 * time.Millisecond}
	got := runUntilAck(t, h, c, acks)
	payload, _ := got["payload"].(map[string]any)
	if got["envelope_id"] != "env-2" || payload["text"] != "Usage: /access help" {
		t.Errorf("ack %v", got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one replaced after its disconnect message)", n)
	}
	for _, want := range []string{"cannot connect to Slack; retrying", "Slack asked to reconnect; opening a new connection", `"reason":"refresh_requested"`, "malformed Socket Mode message ignored"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs.String())
		}
	}
}

// TestRunKeepsAliveAndReplacesSilentConnections: Slack's pings are
// answered, and a connection on which nothing arrives for the silence
// limit is replaced.
func TestRunKeepsAliveAndReplacesSilentConnections(t *testing.T) {
	acks := make(chan map[string]any, 4)
	pong := make(chan string, 1)
	apiURL, conns := scriptedSlack(t, 0, func(n int32, c *websocket.Conn) {
		if n == 1 {
			c.SetPongHandler(func(data string) error { pong <- data; return nil })
			_ = c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second))
		} else {
			_ = c.WriteMessage(websocket.TextMessage, []byte(helpEnvelope))
		}
		readAcks(c, acks) // then silence, on the first connection
	})
	h := New(helpRouter(t), slog.New(slog.DiscardHandler))
	c := NewClient("xapp-1-test", apiURL)
	c.silence = 300 * time.Millisecond
	c.backoff = [2]time.Duration{time.Millisecond, 2 * time.Millisecond}
	got := runUntilAck(t, h, c, acks)
	if got["envelope_id"] != "env-2" {
		t.Errorf("ack %v", got)
	}
	select {
	case data := <-pong:
		if data != "p1" {
			t.Errorf("pong %q, want the ping's data", data)
		}
	case <-time.After(5 * time.Second):
		t.Error("the ping was not answered")
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the silent one replaced)", n)
	}
}

// TestRunPausesWhenConnectionsEndAtOnce: a peer that closes every
// connection right after it opens is not asked for new ones in a tight
// loop.
func TestRunPausesWhenConnectionsEndAtOnce(t *testing.T) {
	acks := make(chan map[string]any, 4)
	apiURL, conns := scriptedSlack(t, 0, func(n int32, c *websocket.Conn) {
		if n < 4 {
			return // closed at once
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte(helpEnvelope))
		readAcks(c, acks)
	})
	var logs logbuf.Buffer
	h := New(helpRouter(t), slog.New(slog.NewJSONHandler(&logs, nil)))
	c := NewClient("xapp-1-test", apiURL)
	c.backoff = [2]time.Duration{20 * time.Millisecond, 40 * time.Millisecond}
	start := time.Now()
	if got := runUntilAck(t, h, c, acks); got["envelope_id"] != "env-2" {
		t.Errorf("ack %v", got)
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
	// Three early ends: pauses of 20, 40 and 40 ms at least.
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("four connections in %s: no pause between early ends", took)
	}
	if !strings.Contains(logs.String(), "Socket Mode connection ended early; reconnecting") {
		t.Errorf("early ends not logged:\n%s", logs.String())
	}
}

// TestRunOverlapsARefresh: after Slack's disconnect message the next
// connection opens at once, and the old one goes on serving (here a
// request Slack sent on it after the new one opened) until Slack closes
// it; its closing does not open a third.
func TestRunOverlapsARefresh(t *testing.T) {
	acks := make(chan map[string]any, 4)
	second := make(chan struct{})
	apiURL, conns := scriptedSlack(t, 0, func(n int32, c *websocket.Conn) {
		switch n {
		case 1:
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"warning"}`))
			<-second
			_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Replace(helpEnvelope, "env-2", "on-old", 1)))
			_, msg, err := c.ReadMessage()
			if err == nil {
				var m map[string]any
				_ = json.Unmarshal(msg, &m)
				acks <- m
			}
			// Slack closes the refreshed connection.
		case 2:
			close(second)
			_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Replace(helpEnvelope, "env-2", "on-new", 1)))
			readAcks(c, acks)
		default:
			readAcks(c, acks)
		}
	})
	h := New(helpRouter(t), slog.New(slog.DiscardHandler))
	c := NewClient("xapp-1-test", apiURL)
	got := map[any]bool{}
	for _, a := range runUntilAcks(t, h, c, acks, 2) {
		got[a["envelope_id"]] = true
	}
	if !got["on-old"] || !got["on-new"] {
		t.Errorf("acknowledged %v, want on-old (over the refreshed connection) and on-new", got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestSlackGoSocketModeLosesARequestAtRefresh shows why tokken has its own
// client: slack-go's socketmode, given the same refresh as
// TestRunOverlapsARefresh, drops the request Slack sends on the old
// connection after its disconnect message. On "disconnect" it stops
// handling that connection's messages at once and closes it, and only then
// opens the next one, so the request is never delivered or acknowledged:
// for a slash command or a click the user sees Slack's "didn't respond"
// error (Slack does not redeliver those).
func TestSlackGoSocketModeLosesARequestAtRefresh(t *testing.T) {
	acks := make(chan map[string]any, 4)
	oldClosed := make(chan []any, 1) // the envelope ids acknowledged on the old connection
	apiURL, _ := scriptedSlack(t, 0, func(n int32, c *websocket.Conn) {
		switch n {
		case 1:
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"warning"}`))
			_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Replace(helpEnvelope, "env-2", "on-old", 1)))
			var acked []any
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					break // the client closed the old connection
				}
				var m map[string]any
				if json.Unmarshal(msg, &m) == nil {
					acked = append(acked, m["envelope_id"])
				}
			}
			oldClosed <- acked
		case 2:
			_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Replace(helpEnvelope, "env-2", "on-new", 1)))
			readAcks(c, acks)
		default:
			readAcks(c, acks)
		}
	})
	api := slack.New("xoxb-unused", slack.OptionAppLevelToken("xapp-1-test"), slack.OptionAPIURL(apiURL))
	client := socketmode.New(api)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = client.RunContext(ctx) }()
	delivered := make(chan string, 4)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-client.Events:
				if evt.Type == socketmode.EventTypeSlashCommand && evt.Request != nil {
					delivered <- evt.Request.EnvelopeID
					_ = client.Ack(*evt.Request)
				}
			}
		}
	}()
	var ackedOnOld []any
	select {
	case ackedOnOld = <-oldClosed:
	case <-ctx.Done():
		t.Fatal("slack-go never closed the refreshed connection")
	}
	select {
	case a := <-acks:
		if a["envelope_id"] != "on-new" {
			t.Fatalf("acknowledged %v on the new connection, want on-new", a)
		}
	case <-ctx.Done():
		t.Fatal("slack-go never acknowledged the request on the new connection")
	}
	cancel()
	<-runDone
	if len(ackedOnOld) != 0 {
		t.Fatalf("slack-go acknowledged %v on the old connection; this test no longer shows a loss", ackedOnOld)
	}
	close(delivered)
	var got []string
	for id := range delivered {
		got = append(got, id)
	}
	if slices.Contains(got, "on-old") {
		t.Fatalf("slack-go delivered %v; this test no longer shows a loss", got)
	}
}
