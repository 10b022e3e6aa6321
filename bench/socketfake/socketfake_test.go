package socketfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const appToken = "xapp-1-A0SOCKFAKE-1-test"

func start(t *testing.T, opts ...Option) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(appToken, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open calls apps.connections.open and returns Slack's answer.
func open(t *testing.T, base string, header, form string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+OpenPath, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewRefusesNonAppTokens(t *testing.T) {
	for _, tok := range []string{"", "xoxb-1-bot", "secret"} {
		if _, err := New(tok); err == nil {
			t.Errorf("New(%q) accepted a token that is not app-level", tok)
		}
	}
}

func TestOpen(t *testing.T) {
	s, srv := start(t)
	tests := []struct {
		name, header, form string
		wantErr            string
	}{
		{name: "no token", wantErr: "not_authed"},
		{name: "token as a form field", form: "token=" + appToken, wantErr: "not_authed"},
		{name: "wrong token", header: "Bearer xapp-1-other", wantErr: "invalid_auth"},
		{name: "bot token", header: "Bearer xoxb-1-bot", wantErr: "invalid_auth"},
		{name: "app token", header: "Bearer " + appToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := open(t, srv.URL, tt.header, tt.form)
			if tt.wantErr != "" {
				if got["ok"] != false || got["error"] != tt.wantErr {
					t.Errorf("answer %v, want ok:false error %s", got, tt.wantErr)
				}
				return
			}
			raw, _ := got["url"].(string)
			u, err := url.Parse(raw)
			if got["ok"] != true || err != nil {
				t.Fatalf("answer %v", got)
			}
			if want := strings.TrimPrefix(srv.URL, "http://"); u.Scheme != "ws" || u.Host != want || u.Path != LinkPath || u.Query().Get("ticket") == "" {
				t.Errorf("url %s, want ws://%s%s?ticket=…", raw, want, LinkPath)
			}
		})
	}
	if got := s.Stats().Opens; got != 1 {
		t.Errorf("Opens = %d, want 1 (refused calls do not count)", got)
	}
}

func TestFallback(t *testing.T) {
	_, srv := start(t, WithFallback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "fallback "+r.URL.Path)
	})))
	resp, err := http.Post(srv.URL+"/api/chat.postEphemeral", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "fallback /api/chat.postEphemeral" {
		t.Errorf("fallback answered %q", b)
	}
}

// dial opens a raw WebSocket the way a client does and reads the hello.
func dial(t *testing.T, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	raw, _ := open(t, srv.URL, "Bearer "+appToken, "")["url"].(string)
	ws, _, err := websocket.DefaultDialer.Dial(raw, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", raw, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	var hello struct {
		Type           string `json:"type"`
		ConnectionInfo struct {
			AppID string `json:"app_id"`
		} `json:"connection_info"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.ConnectionInfo.AppID != "A0SOCKFAKE" {
		t.Fatalf("first message %+v, %v; want hello from A0SOCKFAKE", hello, err)
	}
	return ws
}

func TestTicketsAreSingleUse(t *testing.T) {
	_, srv := start(t)
	raw, _ := open(t, srv.URL, "Bearer "+appToken, "")["url"].(string)
	link := strings.Replace(srv.URL, "http://", "ws://", 1) + LinkPath
	tests := []struct {
		name, url  string
		wantStatus int // 0: accepted
	}{
		{name: "no ticket", url: link, wantStatus: http.StatusUnauthorized},
		{name: "made-up ticket", url: link + "?ticket=0123456789abcdef", wantStatus: http.StatusUnauthorized},
		{name: "issued ticket", url: raw},
		{name: "same ticket again", url: raw, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(tt.url, nil)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				_ = ws.Close()
				return
			}
			if err == nil {
				_ = ws.Close()
				t.Fatal("dial accepted")
			}
			if resp == nil || resp.StatusCode != tt.wantStatus {
				t.Errorf("dial answered %v, want HTTP %d", resp, tt.wantStatus)
			}
		})
	}
}

func TestAppendEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		env     Envelope
		want    string
		wantErr string
	}{
		{
			name: "slash command",
			env:  Envelope{ID: "e-1", Type: TypeSlashCommands, Payload: json.RawMessage(`{"command":"/access"}`), AcceptsResponsePayload: true},
			want: `{"envelope_id":"e-1","payload":{"command":"/access"},"type":"slash_commands","accepts_response_payload":true}`,
		},
		{
			name: "button click",
			env:  Envelope{ID: "e-2", Type: TypeInteractive, Payload: json.RawMessage(`{"type":"block_actions"}`)},
			want: `{"envelope_id":"e-2","payload":{"type":"block_actions"},"type":"interactive","accepts_response_payload":false}`,
		},
		{
			name: "redelivered event",
			env:  Envelope{ID: "e-3", Type: TypeEventsAPI, Payload: json.RawMessage(`{"type":"event_callback"}`), RetryAttempt: 1, RetryReason: "timeout"},
			want: `{"envelope_id":"e-3","payload":{"type":"event_callback"},"type":"events_api","accepts_response_payload":false,"retry_attempt":1,"retry_reason":"timeout"}`,
		},
		{name: "no id", env: Envelope{Type: TypeInteractive, Payload: json.RawMessage(`{}`)}, wantErr: "without an id"},
		{name: "unknown type", env: Envelope{ID: "e", Type: "hello", Payload: json.RawMessage(`{}`)}, wantErr: "unknown type"},
		{name: "payload not JSON", env: Envelope{ID: "e", Type: TypeInteractive, Payload: json.RawMessage(`{"a":`)}, wantErr: "not valid JSON"},
		{name: "no payload", env: Envelope{ID: "e", Type: TypeInteractive}, wantErr: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendEnvelope(nil, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v\nwant %s", got, err, tt.want)
			}
			// What slack-go's client decodes must be what was meant.
			var req socketmode.Request
			if err := json.Unmarshal(got, &req); err != nil || req.EnvelopeID != tt.env.ID || req.Type != tt.env.Type ||
				req.AcceptsResponsePayload != tt.env.AcceptsResponsePayload || req.RetryAttempt != tt.env.RetryAttempt {
				t.Errorf("slack-go decodes %+v, %v", req, err)
			}
		})
	}
}

// slackGoClient runs slack-go's Socket Mode client against srv and answers
// every request with answer's result; it returns the data each request
// carried as slack-go parsed it.
func slackGoClient(t *testing.T, ctx context.Context, srv *httptest.Server, answer func(socketmode.Event) any, opts ...socketmode.Option) <-chan any {
	t.Helper()
	api := slack.New("xoxb-unused", slack.OptionAppLevelToken(appToken), slack.OptionAPIURL(srv.URL+"/api/"))
	c := socketmode.New(api, opts...)
	ctx, cancel := context.WithCancel(ctx)
	seen := make(chan any, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.RunContext(ctx)
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-c.Events:
				if evt.Request == nil || evt.Type == socketmode.EventTypeHello {
					continue
				}
				seen <- evt.Data
				_ = c.AckCtx(ctx, evt.Request.EnvelopeID, answer(evt))
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return seen
}

func TestRequestWithSlackGoClient(t *testing.T) {
	s, srv := start(t)
	ctx := testContext(t)
	seen := slackGoClient(t, ctx, srv, func(evt socketmode.Event) any {
		if cmd, ok := evt.Data.(slack.SlashCommand); ok {
			return map[string]string{"response_type": "ephemeral", "text": "help for " + cmd.Text}
		}
		return nil // a click is acknowledged without a payload
	})
	if err := s.WaitFor(ctx, func(st Stats) bool { return st.Open == 1 }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         Envelope
		wantPayload string
		check       func(data any) bool
	}{
		{
			name: "slash command, fields as strings as Slack sends them",
			env: Envelope{ID: "env-cmd", Type: TypeSlashCommands, AcceptsResponsePayload: true,
				Payload: json.RawMessage(`{"command":"/access","text":"help","user_id":"U1","is_enterprise_install":"false","trigger_id":"1.2.3"}`)},
			wantPayload: `{"response_type":"ephemeral","text":"help for help"}`,
			check: func(data any) bool {
				cmd, ok := data.(slack.SlashCommand)
				return ok && cmd.Command == "/access" && cmd.UserID == "U1" && cmd.TriggerID == "1.2.3"
			},
		},
		{
			name: "button click",
			env: Envelope{ID: "env-click", Type: TypeInteractive,
				Payload: json.RawMessage(`{"type":"block_actions","trigger_id":"4.5.6","user":{"id":"U2"},"actions":[{"action_id":"alert.ack","block_id":"b1","type":"button","value":"x"}]}`)},
			check: func(data any) bool {
				ic, ok := data.(slack.InteractionCallback)
				return ok && ic.Type == slack.InteractionTypeBlockActions && len(ic.ActionCallback.BlockActions) == 1 &&
					ic.ActionCallback.BlockActions[0].ActionID == "alert.ack" && ic.User.ID == "U2"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack, err := s.Request(ctx, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if ack.EnvelopeID != tt.env.ID || string(ack.Payload) != tt.wantPayload {
				t.Errorf("ack %s %s, want %s %s", ack.EnvelopeID, ack.Payload, tt.env.ID, tt.wantPayload)
			}
			if ack.Sent.IsZero() || ack.Received.Before(ack.Sent) {
				t.Errorf("ack sent %v received %v", ack.Sent, ack.Received)
			}
			if data := <-seen; !tt.check(data) {
				t.Errorf("slack-go parsed %#v", data)
			}
		})
	}
	if st := s.Stats(); st.Sent != 2 || st.Acks != 2 || st.UnmatchedAcks != 0 || st.BadFrames != 0 || st.Connections != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRequestFailures(t *testing.T) {
	click := func(id string) Envelope {
		return Envelope{ID: id, Type: TypeInteractive, Payload: json.RawMessage(`{"type":"block_actions"}`)}
	}
	t.Run("nobody connected", func(t *testing.T) {
		s, _ := start(t)
		if _, err := s.Request(testContext(t), click("e1")); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Request = %v, want ErrNotConnected", err)
		}
	})
	t.Run("invalid envelope", func(t *testing.T) {
		s, srv := start(t)
		dial(t, srv)
		if _, err := s.Request(testContext(t), Envelope{ID: "e1", Type: "bogus", Payload: json.RawMessage(`{}`)}); err == nil {
			t.Error("Request sent an envelope of unknown type")
		}
	})
	t.Run("connection closed before the ack", func(t *testing.T) {
		s, srv := start(t)
		ws := dial(t, srv)
		go func() {
			_, _, _ = ws.ReadMessage() // the envelope
			_ = ws.Close()
		}()
		_, err := s.Request(testContext(t), click("e1"))
		if err == nil || !strings.Contains(err.Error(), "connection closed") {
			t.Errorf("Request = %v, want connection closed", err)
		}
	})
	t.Run("no ack in time, then a late, a foreign and a broken one", func(t *testing.T) {
		s, srv := start(t)
		ws := dial(t, srv)
		ctx, cancel := context.WithCancel(testContext(t))
		go func() {
			_, _, _ = ws.ReadMessage() // the envelope: give up waiting once it is out
			cancel()
		}()
		if _, err := s.Request(ctx, click("e1")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Request = %v, want context.Canceled", err)
		}
		for _, frame := range []string{`{"envelope_id":"e1"}`, `{"envelope_id":"nobody"}`, `not json`, `{"payload":{}}`} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.WaitFor(testContext(t), func(st Stats) bool { return st.UnmatchedAcks == 2 && st.BadFrames == 2 }); err != nil {
			t.Error(err)
		}
		if st := s.Stats(); st.Acks != 0 {
			t.Errorf("stats %+v: a late ack was matched", st)
		}
	})
	t.Run("same envelope id twice at once", func(t *testing.T) {
		s, srv := start(t)
		ws := dial(t, srv)
		ctx := testContext(t)
		first := make(chan error, 1)
		go func() { _, err := s.Request(ctx, click("e1")); first <- err }()
		if _, _, err := ws.ReadMessage(); err != nil { // the first is out and awaiting its ack
			t.Fatal(err)
		}
		if _, err := s.Request(ctx, click("e1")); err == nil || !strings.Contains(err.Error(), "already awaiting") {
			t.Errorf("second Request = %v", err)
		}
		if err := ws.WriteJSON(map[string]string{"envelope_id": "e1"}); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Errorf("first Request = %v", err)
		}
	})
}

// TestPingsKeepSlackGoConnected runs slack-go's client with a short ping
// timeout: without the fake's pings it would reconnect after each.
func TestPingsKeepSlackGoConnected(t *testing.T) {
	const timeout = 250 * time.Millisecond
	s, srv := start(t, WithPingInterval(timeout/10))
	ctx := testContext(t)
	slackGoClient(t, ctx, srv, func(socketmode.Event) any { return nil }, socketmode.OptionPingInterval(timeout))
	// 20 pongs span two of the client's ping timeouts.
	if err := s.WaitFor(ctx, func(st Stats) bool { return st.Pongs >= 20 }); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Connections != 1 || st.Open != 1 || st.Opens != 1 {
		t.Errorf("stats %+v: the client reconnected although it was pinged", st)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	s, srv := start(t)
	ws := dial(t, srv)
	s.Close()
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("connection still open after Close")
	}
	if st := s.Stats(); st.Open != 0 {
		t.Errorf("Open = %d after Close", st.Open)
	}
	if got := open(t, srv.URL, "Bearer "+appToken, ""); got["ok"] != false {
		t.Errorf("apps.connections.open after Close: %v", got)
	}
}
