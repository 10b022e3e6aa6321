// Package httpapi is tokken's inbound HTTP surface, the same locally
// (`tokken serve`) and behind the Lambda Function URL / HTTP API:
//
//	POST /slack/commands      slash commands
//	POST /slack/interactions  buttons, modals, shortcuts
//	POST /slack/options       external select options (block_suggestion)
//	POST /slack/events        Events API (answers url_verification)
//	POST /webhooks/mackerel   Mackerel webhooks (503 until a handler is set)
//	GET  /healthz             liveness
//
// Every /slack/* request is verified by handlers/slacksig before anything
// reads it. Requests are answered within Slack's three seconds whatever the
// handlers do (see Router), repeated deliveries have no second effect, and
// every request is logged as one JSON line with a request id.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/slacksig"
)

// MaxWebhookBody bounds webhook bodies (the Slack routes are bounded by
// slacksig.MaxBody).
const MaxWebhookBody = 1 << 20

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-Id"

// Deps are what the HTTP surface needs.
type Deps struct {
	// Router dispatches Slack traffic. Required.
	Router *Router
	// Verifier checks Slack signatures. Required (Secret non-empty).
	Verifier slacksig.Verifier
	// Mackerel handles /webhooks/mackerel; nil answers 503 "not configured".
	Mackerel http.Handler
	// Log receives the access log and handler errors (default slog.Default()).
	Log *slog.Logger
	// Version is reported by /healthz.
	Version string
}

// New returns the HTTP handler. It panics if Router is nil or the signing
// secret is empty: both are wiring bugs caught at start-up, and serving
// Slack routes without verification is never an option.
func New(d Deps) http.Handler {
	if d.Router == nil {
		panic("httpapi: New needs a Router")
	}
	if len(d.Verifier.Secret) == 0 {
		panic("httpapi: New needs a signing secret")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &server{router: d.Router, log: d.Log}
	slackRoutes := func(h http.HandlerFunc) http.Handler { return d.Verifier.Middleware(d.Log, h) }

	mux := http.NewServeMux()
	mux.Handle("POST /slack/commands", slackRoutes(s.commands))
	mux.Handle("POST /slack/interactions", slackRoutes(s.interactions))
	mux.Handle("POST /slack/options", slackRoutes(s.options))
	mux.Handle("POST /slack/events", slackRoutes(s.events))
	mackerel := d.Mackerel
	if mackerel == nil {
		mackerel = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "mackerel webhooks are not configured", http.StatusServiceUnavailable)
		})
	}
	mux.Handle("POST /webhooks/mackerel", http.MaxBytesHandler(mackerel, MaxWebhookBody))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": d.Version})
	})
	return accessLog(d.Log, mux, d.Router)
}

type server struct {
	router *Router
	log    *slog.Logger
}

func (s *server) commands(w http.ResponseWriter, r *http.Request) {
	cmd, err := slack.SlashCommandParse(r)
	switch {
	case err != nil:
		http.Error(w, "malformed slash command: "+err.Error(), http.StatusBadRequest)
		return
	case r.PostForm.Get("ssl_check") == "1":
		w.WriteHeader(http.StatusOK) // Slack's certificate probe
		return
	case cmd.Command == "":
		http.Error(w, "malformed slash command: missing command", http.StatusBadRequest)
		return
	case cmd.UserID == "":
		http.Error(w, "malformed slash command: missing user_id", http.StatusBadRequest)
		return
	}
	msg := s.router.DispatchCommand(r.Context(), cmd)
	if msg == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, ReplyFrom(msg))
}

// ParseInteraction decodes an interaction payload (the "payload" form
// field Slack posts to /slack/interactions and /slack/options, or a Socket
// Mode envelope's payload) with slack-go's decoder.
func ParseInteraction(payload []byte) (slack.InteractionCallback, error) {
	var ic slack.InteractionCallback
	if len(payload) == 0 {
		return ic, errors.New("missing payload")
	}
	if err := json.Unmarshal(payload, &ic); err != nil {
		return slack.InteractionCallback{}, err
	}
	if ic.Type == "" {
		return slack.InteractionCallback{}, errors.New("missing type")
	}
	return ic, nil
}

func (s *server) parseInteraction(w http.ResponseWriter, r *http.Request) (slack.InteractionCallback, bool) {
	var ic slack.InteractionCallback
	err := r.ParseForm()
	if err == nil {
		ic, err = ParseInteraction([]byte(r.PostForm.Get("payload")))
	}
	if err != nil {
		http.Error(w, "malformed interaction payload: "+err.Error(), http.StatusBadRequest)
		return ic, false
	}
	return ic, true
}

func (s *server) interactions(w http.ResponseWriter, r *http.Request) {
	ic, ok := s.parseInteraction(w, r)
	if !ok {
		return
	}
	if ic.Type == slack.InteractionTypeBlockSuggestion {
		s.answerOptions(w, r, ic)
		return
	}
	body, _, err := s.router.DispatchInteraction(r.Context(), ic)
	if err != nil {
		s.log.ErrorContext(r.Context(), "interaction failed", "request_id", RequestID(r.Context()), "err", err)
		http.Error(w, "interaction failed (ref "+RequestID(r.Context())+")", http.StatusInternalServerError)
		return
	}
	if body == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *server) options(w http.ResponseWriter, r *http.Request) {
	ic, ok := s.parseInteraction(w, r)
	if !ok {
		return
	}
	s.answerOptions(w, r, ic)
}

func (s *server) answerOptions(w http.ResponseWriter, r *http.Request, ic slack.InteractionCallback) {
	body, err := s.router.DispatchOptions(r.Context(), ic)
	if err != nil {
		s.log.ErrorContext(r.Context(), "options failed", "request_id", RequestID(r.Context()), "err", err)
		body = NoOptions()
	}
	writeJSON(w, http.StatusOK, body)
}

// envelope is the outer Events API body.
type envelope struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	EventID   string `json:"event_id"`
	EventTime int64  `json:"event_time"`
	TeamID    string `json:"team_id"`
	Event     json.RawMessage
}

// ParseEvent decodes an Events API body. It returns the url_verification
// challenge, or the event of an event_callback; other envelope types
// (app_rate_limited) return neither and no error.
func ParseEvent(body []byte) (challenge string, ev *Event, err error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", nil, fmt.Errorf("malformed event: %w", err)
	}
	switch env.Type {
	case "url_verification":
		if env.Challenge == "" {
			return "", nil, errors.New("malformed event: url_verification without challenge")
		}
		return env.Challenge, nil, nil
	case "event_callback":
		var inner struct {
			Type string `json:"type"`
		}
		if len(env.Event) == 0 || json.Unmarshal(env.Event, &inner) != nil || inner.Type == "" {
			return "", nil, errors.New("malformed event: event_callback without an event type")
		}
		if env.EventID == "" {
			return "", nil, errors.New("malformed event: event_callback without event_id")
		}
		return "", &Event{ID: env.EventID, Type: inner.Type, TeamID: env.TeamID, Time: time.Unix(env.EventTime, 0).UTC(), Inner: env.Event}, nil
	case "":
		return "", nil, errors.New("malformed event: missing type")
	}
	return "", nil, nil
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	challenge, ev, err := ParseEvent(body)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	case challenge != "":
		writeJSON(w, http.StatusOK, map[string]string{"challenge": challenge})
	case ev == nil:
		s.log.InfoContext(r.Context(), "events envelope ignored", "request_id", RequestID(r.Context()), "body_bytes", len(body))
		w.WriteHeader(http.StatusOK)
	default:
		_, err := s.router.DispatchEvent(r.Context(), *ev)
		if err != nil {
			s.log.ErrorContext(r.Context(), "event failed; Slack will retry", "request_id", RequestID(r.Context()), "err", err)
			http.Error(w, "event failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type ctxKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id (for entry points other than HTTP,
// such as Socket Mode, so handler logs carry an id too).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// statusWriter remembers the status, size and the moment of the answer.
type statusWriter struct {
	http.ResponseWriter
	status  int
	bytes   int
	ackedAt time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.ackedAt = time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog assigns a request id (a caller's X-Request-Id when well-formed,
// e.g. the Lambda request id) and logs one line per request ("http
// request") with the time to the answer: for Slack routes, the ack
// latency Slack's 3 s rule is about. The line is Info, Warn for a 4xx,
// Error for a 5xx, and names Slack's retry number and reason on a retry.
//
// It also runs the request's AfterAck work once the handler has answered:
// in a goroutine the router waits for on shutdown (Router.Wait), or before
// returning when the request is Frozen (Lambda).
func accessLog(log *slog.Logger, next http.Handler, router *Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID.MatchString(id) {
			id = bot.NewID("req-")
		}
		w.Header().Set(HeaderRequestID, id)
		sw := &statusWriter{ResponseWriter: w}
		ctx, afterAck := WithAfterAck(WithRequestID(r.Context(), id), log)
		defer func() {
			if isFrozen(ctx) {
				afterAck() // the process may be frozen once this returns
				return
			}
			router.late.Go(afterAck)
		}()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(ctx, "handler panicked", "request_id", id, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					http.Error(sw, "internal error (ref "+id+")", http.StatusInternalServerError)
				}
			}
			if sw.status == 0 {
				sw.WriteHeader(http.StatusOK)
			}
			level := slog.LevelInfo
			switch {
			case sw.status >= 500:
				level = slog.LevelError
			case sw.status >= 400:
				level = slog.LevelWarn
			}
			attrs := []slog.Attr{
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.status), slog.Int("bytes", sw.bytes),
				slog.Float64("ack_ms", millis(sw.ackedAt.Sub(start))), slog.Float64("ms", millis(time.Since(start))),
			}
			if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
				num, _ := strconv.Atoi(n)
				attrs = append(attrs, slog.Int("slack_retry_num", num), slog.String("slack_retry_reason", r.Header.Get("X-Slack-Retry-Reason")))
			}
			log.LogAttrs(ctx, level, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// millis is d in milliseconds with microsecond precision.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
