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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/logbuf"
)

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, bot.Job) error { return nil }

func newRouter(t *testing.T) *httpapi.Router {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	r, err := httpapi.NewRouter(httpapi.RouterDeps{Store: store, Queue: nopQueue{}, Log: slog.New(slog.DiscardHandler)})
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
	r.HandleEvent("app_mention", func(context.Context, httpapi.Event) error {
		events.Add(1)
		if failEvents.Load() {
			return errors.New("down")
		}
		return nil
	})
	var logs logbuf.Buffer
	h := New(r, slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx := context.Background()
	req := func(id string) *socketmode.Request { return &socketmode.Request{EnvelopeID: id} }

	got := h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: slack.SlashCommand{Command: "/access", UserID: "U1"}, Request: req("e1")})
	if rep, ok := got.Payload.(*httpapi.Reply); !got.Ack || !ok || rep.Text != "help for U1" || rep.ResponseType != "ephemeral" {
		t.Errorf("command: %+v", got)
	}
	got = h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: slack.SlashCommand{Command: "/nope", UserID: "U1"}, Request: req("e2")})
	if rep := got.Payload.(*httpapi.Reply); !strings.Contains(rep.Text, "Unknown command /nope") {
		t.Errorf("unknown command: %+v", rep)
	}

	click := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, TriggerID: "t1", User: slack.User{ID: "U2"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "access:approve"}}}}
	for range 2 { // the same delivery twice
		if got := h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeInteractive, Data: click, Request: req("e3")}); !got.Ack || got.Payload != nil {
			t.Errorf("click: %+v", got)
		}
	}
	if n := clicks.Load(); n != 1 {
		t.Errorf("click handled %d times", n)
	}
	sub := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, TriggerID: "t2", View: slack.View{CallbackID: "access:request"}}
	got = h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeInteractive, Data: sub, Request: req("e4")})
	if b, _ := json.Marshal(got.Payload); !strings.Contains(string(b), `"response_action":"clear"`) {
		t.Errorf("view submission payload %s", b)
	}
	sug := slack.InteractionCallback{Type: slack.InteractionTypeBlockSuggestion, ActionID: "access:instance"}
	got = h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeInteractive, Data: sug, Request: req("e5")})
	if b, _ := json.Marshal(got.Payload); !strings.Contains(string(b), `"value":"i-1"`) {
		t.Errorf("options payload %s", b)
	}

	event := func(id string) socketmode.Event {
		payload := fmt.Sprintf(`{"type":"event_callback","event_id":%q,"event_time":1,"event":{"type":"app_mention","text":"hi"}}`, id)
		return socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{EnvelopeID: "e-" + id, Payload: json.RawMessage(payload)}}
	}
	if got := h.Handle(ctx, event("Ev1")); !got.Ack {
		t.Error("event not acknowledged")
	}
	if got := h.Handle(ctx, event("Ev1")); !got.Ack || events.Load() != 1 {
		t.Errorf("redelivered event ran again (%d runs)", events.Load())
	}
	failEvents.Store(true)
	retried := event("Ev2")
	retried.Request.RetryAttempt, retried.Request.RetryReason = 1, "timeout"
	if got := h.Handle(ctx, retried); got.Ack {
		t.Error("a failed event was acknowledged: Slack would not redeliver it")
	}
	for _, want := range []string{`"request_id":"sm-e-Ev2"`, `"type":"events_api"`, `"slack_retry_num":1`, `"slack_retry_reason":"timeout"`, `"transport":"socket_mode"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the failed event's line:\n%s", want, logs.String())
		}
	}
	if got := h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{EnvelopeID: "bad", Payload: json.RawMessage(`{`)}}); !got.Ack {
		t.Error("a malformed event must be acknowledged (redelivery cannot fix it)")
	}
	if got := h.Handle(ctx, socketmode.Event{Type: socketmode.EventTypeHello}); got.Ack {
		t.Error("connection events are not requests")
	}
}

// fakeSlack serves apps.connections.open and a Socket Mode WebSocket that
// sends one slash command envelope and reports the acknowledgement.
func fakeSlack(t *testing.T, envelope string) (apiURL string, acks <-chan map[string]any) {
	t.Helper()
	ch := make(chan map[string]any, 4)
	var srv *httptest.Server
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer xapp-1-test" {
			fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
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
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1,"connection_info":{"app_id":"A1"}}`))
		_ = c.WriteMessage(websocket.TextMessage, []byte(envelope))
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(msg, &m) == nil {
				ch <- m
			}
		}
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/", ch
}

func TestRunOverAWebSocket(t *testing.T) {
	r := newRouter(t)
	r.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{Text: "Usage: /access " + cmd.Text}, nil
	})
	envelope := `{"envelope_id":"env-1","type":"slash_commands","accepts_response_payload":true,` +
		`"payload":{"command":"/access","text":"help","user_id":"U1","channel_id":"C1","trigger_id":"1.2.3"}}`
	apiURL, acks := fakeSlack(t, envelope)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := New(r, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, NewClient("xoxb-test", "xapp-1-test", apiURL)) }()
	select {
	case ack := <-acks:
		payload, _ := ack["payload"].(map[string]any)
		if ack["envelope_id"] != "env-1" || payload["text"] != "Usage: /access help" || payload["response_type"] != "ephemeral" {
			t.Errorf("ack %v", ack)
		}
	case err := <-done:
		t.Fatalf("Run ended before acknowledging: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement over the socket")
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
}

func TestRunRejectsBadAppToken(t *testing.T) {
	apiURL, _ := fakeSlack(t, `{}`)
	h := New(newRouter(t), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.Run(ctx, NewClient("xoxb-test", "xapp-wrong", apiURL))
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("Run with a bad token = %v", err)
	}
}
