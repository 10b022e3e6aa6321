// Package socket receives Slack traffic over Socket Mode: a WebSocket the
// app opens to Slack with an app-level ("xapp-") token, so a developer
// running `tokken serve` on a laptop needs no public URL. The client is
// tokken's own (gorilla/websocket underneath): an interaction's payload
// goes straight to httpapi.ParseInteraction, where slack-go's socketmode
// client decoded every payload with slack-go's decoder first, at several
// times the cost (BENCHMARKS.md). Slash commands, interactions, options requests and Events
// API events go to the same httpapi.Router as the HTTP routes, and are
// acknowledged over the socket with the same payloads HTTP would answer
// with. Slack authenticates the socket itself, so there is no request
// signature to verify here.
package socket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/slacksig"
)

// Handler maps Socket Mode requests onto a Router.
type Handler struct {
	router *httpapi.Router
	log    *slog.Logger
}

// New returns a Handler dispatching to router.
func New(router *httpapi.Router, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{router: router, log: log.With("transport", "socket_mode")}
}

// Reply is what to send back for one request: Ack false means do not
// acknowledge (Slack redelivers), Payload is the acknowledgement's payload
// (nil for none).
type Reply struct {
	Ack     bool
	Payload any
}

// Handle maps one envelope to the router and says how to answer it.
// Envelopes that are not requests (connection state) return a zero Reply.
func (h *Handler) Handle(ctx context.Context, env Envelope) Reply {
	ctx = httpapi.WithRequestID(ctx, "sm-"+env.EnvelopeID)
	// Built on first use: most requests log nothing here, and slog's With
	// formats its attributes at once.
	log := func() *slog.Logger {
		l := h.log.With("request_id", "sm-"+env.EnvelopeID, "type", env.Type)
		if env.RetryAttempt > 0 {
			l = l.With("slack_retry_num", env.RetryAttempt, "slack_retry_reason", env.RetryReason)
		}
		return l
	}
	switch env.Type {
	case TypeSlashCommands:
		var cmd slack.SlashCommand
		if err := json.Unmarshal(env.Payload, &cmd); err != nil {
			log().Warn("malformed slash command payload", "err", err)
			return Reply{Ack: true} // redelivery would not fix it
		}
		if msg := h.router.DispatchCommand(ctx, cmd); msg != nil {
			return Reply{Ack: true, Payload: httpapi.ReplyFrom(msg)}
		}
		return Reply{Ack: true}

	case TypeInteractive:
		ic, err := httpapi.ParseInteraction(env.Payload)
		if err != nil {
			log().Warn("malformed interaction payload", "err", err)
			return Reply{Ack: true}
		}
		if ic.Type == slack.InteractionTypeBlockSuggestion {
			body, err := h.router.DispatchOptions(ctx, ic)
			if err != nil {
				log().Error("options failed", "err", err)
				body = httpapi.NoOptions()
			}
			return Reply{Ack: true, Payload: body}
		}
		body, _, err := h.router.DispatchInteraction(ctx, ic)
		if err != nil {
			// Acknowledge anyway: an unacknowledged interaction shows the
			// user an error, and the delivery was forgotten so a new click
			// can try again.
			log().Error("interaction failed", "err", err)
			return Reply{Ack: true}
		}
		return Reply{Ack: true, Payload: body}

	case TypeEventsAPI:
		_, ev, err := httpapi.ParseEvent(env.Payload)
		if err != nil {
			log().Warn("malformed events_api payload", "err", err)
			return Reply{Ack: true} // redelivery would not fix it
		}
		if ev == nil {
			return Reply{Ack: true}
		}
		if _, err := h.router.DispatchEvent(ctx, *ev); err != nil {
			log().Error("event failed; leaving it unacknowledged so Slack redelivers", "err", err)
			return Reply{Ack: false}
		}
		return Reply{Ack: true}
	}
	return Reply{}
}

// Run connects and serves until ctx is done or Slack refuses the app-level
// token. A connection Slack refreshes (a disconnect message, every few
// hours) or one that served for a while before it failed or fell silent is
// replaced at once; failed attempts to connect, and connections that end
// soon after they open, are retried after a growing pause. Each request
// is handled in its own goroutine, so a slow handler does not hold up the
// others; Run waits for them before it returns.
func (h *Handler) Run(ctx context.Context, c *Client) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	pause := c.backoff[0]
	for {
		h.log.Info("connecting to Slack")
		conn, err := c.dial(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errInvalidAuth):
			return fmt.Errorf("socket mode: %w", err)
		case err != nil:
			h.log.Warn("cannot connect to Slack; retrying", "err", err, "retry_in_ms", pause.Milliseconds())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			pause = min(2*pause, c.backoff[1])
			continue
		}
		began := time.Now()
		err = h.serve(ctx, c, conn, &wg)
		if ctx.Err() != nil {
			return nil
		}
		var refresh *refreshError
		if errors.As(err, &refresh) || time.Since(began) >= c.settled {
			// Slack's own refresh, or a connection that served a while:
			// reconnect at once.
			pause = c.backoff[0]
			h.log.Info("Socket Mode connection ended; reconnecting", "reason", err.Error())
			continue
		}
		// A connection that failed soon after it opened: pause as after a
		// failed attempt, so that a peer closing every connection at once
		// is not asked for a new one in a tight loop.
		h.log.Warn("Socket Mode connection ended early; reconnecting", "reason", err.Error(), "retry_in_ms", pause.Milliseconds())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, c.backoff[1])
	}
}

// refreshError is Slack's disconnect message: it is about to close the
// connection and expects the app to open another.
type refreshError struct{ reason string }

func (e *refreshError) Error() string { return fmt.Sprintf("Slack asked to reconnect (%s)", e.reason) }

// maxMessage bounds one Socket Mode message: an envelope around a payload
// no larger than the HTTP routes accept.
const maxMessage = 2 * slacksig.MaxBody

// serve reads conn until it ends, handing requests to the router, and
// returns why it ended.
func (h *Handler) serve(ctx context.Context, c *Client, conn *websocket.Conn, wg *sync.WaitGroup) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() }) // unblocks the read
	defer stop()
	var writing sync.Mutex // one writer at a time
	send := func(v any) error {
		writing.Lock()
		defer writing.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteJSON(v)
	}
	conn.SetReadLimit(maxMessage)
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(c.silence)) }
	alive()
	conn.SetPingHandler(func(data string) error {
		alive()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		alive()
		var env Envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			h.log.Warn("malformed Socket Mode message ignored", "err", err, "bytes", len(msg))
			continue
		}
		switch env.Type {
		case TypeHello:
			h.log.Info("connected to Slack")
		case TypeDisconnect:
			return &refreshError{reason: env.Reason}
		case TypeSlashCommands, TypeInteractive, TypeEventsAPI:
			if env.EnvelopeID == "" {
				h.log.Warn("Socket Mode request without an envelope_id ignored", "type", env.Type)
				continue
			}
			wg.Add(1)
			h.router.Go(func() {
				defer wg.Done()
				ctx, afterAck := httpapi.WithAfterAck(ctx, h.log)
				defer afterAck() // work the handler deferred until after its ack
				r := h.Handle(ctx, env)
				if !r.Ack {
					return
				}
				if err := send(ack{EnvelopeID: env.EnvelopeID, Payload: r.Payload}); err != nil {
					h.log.Error("cannot acknowledge", "envelope_id", env.EnvelopeID, "err", err)
				}
			})
		default:
			h.log.Debug("Socket Mode message ignored", "type", env.Type)
		}
	}
}
