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
// reads it, parsed with slack-go (slack.SlashCommandParse, encoding/json
// into slack.InteractionCallback), and handed to a router.Router, which
// answers within Slack's three seconds whatever the handlers do and
// refuses repeated deliveries. A malformed request is refused 400 with the
// reason. Every request is logged as one JSON line with a request id.
package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/router"
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
	Router *router.Router
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
	s := &server{rt: d.Router, log: d.Log}
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
	rt  *router.Router
	log *slog.Logger
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
	msg := s.rt.DispatchCommand(r.Context(), cmd)
	if msg == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, router.ReplyFrom(msg))
}

func (s *server) parseInteraction(w http.ResponseWriter, r *http.Request) (slack.InteractionCallback, bool) {
	var ic slack.InteractionCallback
	err := r.ParseForm()
	if err == nil {
		ic, err = router.ParseInteraction([]byte(r.PostForm.Get("payload")))
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
	body, _, err := s.rt.DispatchInteraction(r.Context(), ic)
	if err != nil {
		s.log.ErrorContext(r.Context(), "interaction failed", "request_id", router.RequestID(r.Context()), "err", err)
		http.Error(w, "interaction failed (ref "+router.RequestID(r.Context())+")", http.StatusInternalServerError)
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
	body, err := s.rt.DispatchOptions(r.Context(), ic)
	if err != nil {
		s.log.ErrorContext(r.Context(), "options failed", "request_id", router.RequestID(r.Context()), "err", err)
		body = router.NoOptions()
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	challenge, ev, err := router.ParseEvent(body)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	case challenge != "":
		writeJSON(w, http.StatusOK, map[string]string{"challenge": challenge})
	case ev == nil:
		s.log.InfoContext(r.Context(), "events envelope ignored", "request_id", router.RequestID(r.Context()), "body_bytes", len(body))
		w.WriteHeader(http.StatusOK)
	default:
		_, err := s.rt.DispatchEvent(r.Context(), *ev)
		if err != nil {
			s.log.ErrorContext(r.Context(), "event failed; Slack will retry", "request_id", router.RequestID(r.Context()), "err", err)
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

// validRequestID reports whether a caller's request id is one tokken keeps:
// 1 to 64 ASCII letters, digits and . _ : -, safe in a log line and a
// header. (No regexp: this runs in each cold start's first request, and
// the bounded repeat alone compiled to 64 program states.)
func validRequestID(id string) bool {
	return id != "" && len(id) <= 64 &&
		strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == ""
}

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
// It also runs the request's router.AfterAck work once the handler has answered:
// (router.Router.Acked).
func accessLog(log *slog.Logger, next http.Handler, rt *router.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = bot.NewID("req-")
		}
		w.Header().Set(HeaderRequestID, id)
		sw := &statusWriter{ResponseWriter: w}
		ctx, afterAck := router.WithAfterAck(router.WithRequestID(r.Context(), id), log)
		defer rt.Acked(ctx, afterAck)
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
