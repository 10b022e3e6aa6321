// Package socket receives Slack traffic over Socket Mode: a WebSocket the
// app opens to Slack with an app-level ("xapp-") token, so a developer
// running `tokken serve` on a laptop needs no public URL. Slash commands,
// interactions, options requests and Events API events go to the same
// router.Router as the HTTP routes, and are acknowledged over the socket
// with the same payloads HTTP would answer with. Slack authenticates the
// socket itself, so there is no request signature to verify here.
//
// The client is tokken's own (gorilla/websocket underneath) because
// slack-go's socketmode loses requests when Slack refreshes a connection,
// which it does every few hours: on Slack's disconnect message socketmode
// stops reading the old connection and closes it, and only then opens the
// next one. A request Slack sends on the old connection after its
// disconnect message, or while no connection is open, is never delivered;
// for a slash command or a click (which Slack does not redeliver) the user
// sees "didn't respond". This client opens the next connection at once and
// lets the old one serve until Slack closes it (TestRunOverlapsARefresh);
// TestSlackGoSocketModeLosesARequestAtRefresh shows socketmode's loss.
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

	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
)

// Handler maps Socket Mode requests onto a Router.
type Handler struct {
	router *router.Router
	log    *slog.Logger
}

// New returns a Handler dispatching to router.
func New(router *router.Router, log *slog.Logger) *Handler {
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
	ctx = router.WithRequestID(ctx, "sm-"+env.EnvelopeID)
	log := h.log.With("request_id", "sm-"+env.EnvelopeID, "type", env.Type)
	if env.RetryAttempt > 0 {
		log = log.With("slack_retry_num", env.RetryAttempt, "slack_retry_reason", env.RetryReason)
	}
	switch env.Type {
	case TypeSlashCommands:
		var cmd slack.SlashCommand
		if err := json.Unmarshal(env.Payload, &cmd); err != nil {
			log.Warn("malformed slash command payload", "err", err)
			return Reply{Ack: true} // redelivery would not fix it
		}
		if msg := h.router.DispatchCommand(ctx, cmd); msg != nil {
			return Reply{Ack: true, Payload: router.ReplyFrom(msg)}
		}
		return Reply{Ack: true}

	case TypeInteractive:
		ic, err := router.ParseInteraction(env.Payload)
		if err != nil {
			log.Warn("malformed interaction payload", "err", err)
			return Reply{Ack: true}
		}
		if ic.Type == slack.InteractionTypeBlockSuggestion {
			body, err := h.router.DispatchOptions(ctx, ic)
			if err != nil {
				log.Error("options failed", "err", err)
				body = router.NoOptions()
			}
			return Reply{Ack: true, Payload: body}
		}
		body, _, err := h.router.DispatchInteraction(ctx, ic)
		if err != nil {
			// Acknowledge anyway: an unacknowledged interaction shows the
			// user an error, and the delivery was forgotten so a new click
			// can try again.
			log.Error("interaction failed", "err", err)
			return Reply{Ack: true}
		}
		return Reply{Ack: true, Payload: body}

	case TypeEventsAPI:
		_, ev, err := router.ParseEvent(env.Payload)
		if err != nil {
			log.Warn("malformed events_api payload", "err", err)
			return Reply{Ack: true} // redelivery would not fix it
		}
		if ev == nil {
			return Reply{Ack: true}
		}
		if _, err := h.router.DispatchEvent(ctx, *ev); err != nil {
			log.Error("event failed; leaving it unacknowledged so Slack redelivers", "err", err)
			return Reply{Ack: false}
		}
		return Reply{Ack: true}
	}
	return Reply{}
}

// Run connects and serves until ctx is done or Slack refuses the app-level
// token. When Slack asks to reconnect (a disconnect message: it refreshes
// connections every few hours), Run opens the next connection at once and
// the old one serves until Slack closes it, so a refresh loses nothing. A
// connection that served for a while and then failed or fell silent is
// replaced at once; failed attempts to connect, and connections that end
// soon after they open, are retried after a growing pause. Each request
// is handled in its own goroutine, so a slow handler does not hold up the
// others; Run waits for them, and for its connections, before it returns.
func (h *Handler) Run(ctx context.Context, c *Client) error {
	var wg sync.WaitGroup // request handlers
	defer wg.Wait()
	conns, closeConns := context.WithCancel(ctx) // closes every connection when Run returns
	type end struct {
		id     int
		err    error
		lasted time.Duration
	}
	type refresh struct {
		id     int
		reason string
	}
	ends := make(chan end)
	refreshes := make(chan refresh, 4)
	live := 0
	defer func() {
		for ; live > 0; live-- {
			<-ends
		}
	}()
	defer closeConns() // before the wait above
	current, pause := 0, c.backoff[0]
	wait := func() bool { // pauses before the next attempt; false: ctx is done
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, c.backoff[1])
		return true
	}
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
			if !wait() {
				return nil
			}
			continue
		}
		current++
		live++
		id, began := current, time.Now()
		go func() {
			err := h.serve(conns, c, conn, &wg, func(reason string) {
				select {
				case refreshes <- refresh{id, reason}:
				default: // Run has not taken the last ones yet; one is enough
				}
			})
			ends <- end{id, err, time.Since(began)}
		}()
		// Wait for a reason to open another connection.
	waiting:
		for {
			select {
			case <-ctx.Done():
				return nil
			case r := <-refreshes:
				if r.id == current {
					h.log.Info("Slack asked to reconnect; opening a new connection", "reason", r.reason)
					break waiting
				}
			case e := <-ends:
				live--
				switch {
				case e.id != current:
					// A refreshed connection closing, as Slack said it would.
				case ctx.Err() != nil:
					return nil
				case e.lasted >= c.settled:
					pause = c.backoff[0]
					h.log.Info("Socket Mode connection ended; reconnecting", "reason", e.err.Error())
					break waiting
				default:
					// It failed soon after it opened: pause as after a failed
					// attempt, so that a peer closing every connection at
					// once is not asked for a new one in a tight loop.
					h.log.Warn("Socket Mode connection ended early; reconnecting", "reason", e.err.Error(), "retry_in_ms", pause.Milliseconds())
					if !wait() {
						return nil
					}
					break waiting
				}
			}
		}
	}
}

// maxMessage bounds one Socket Mode message: an envelope around a payload
// no larger than the HTTP routes accept.
const maxMessage = 2 * slacksig.MaxBody

// serve reads conn until it ends, handing requests to the router and
// Slack's disconnect messages to refresh, and returns why it ended.
func (h *Handler) serve(ctx context.Context, c *Client, conn *websocket.Conn, wg *sync.WaitGroup, refresh func(reason string)) error {
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
			refresh(env.Reason) // this connection serves on until Slack closes it
		case TypeSlashCommands, TypeInteractive, TypeEventsAPI:
			if env.EnvelopeID == "" {
				h.log.Warn("Socket Mode request without an envelope_id ignored", "type", env.Type)
				continue
			}
			wg.Go(func() {
				ctx, afterAck := router.WithAfterAck(ctx, h.log)
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
