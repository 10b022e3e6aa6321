// Package socket receives Slack traffic over Socket Mode (slack-go's
// socketmode): a WebSocket the app opens to Slack with an app-level
// ("xapp-") token, so a developer running `tokken serve` on a laptop needs
// no public URL. Slash commands, interactions, options requests and Events
// API events go to the same httpapi.Router as the HTTP routes, and are
// acknowledged over the socket with the same payloads HTTP would answer
// with. Slack authenticates the socket itself, so there is no request
// signature to verify here.
package socket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tokken/tokken/handlers/httpapi"
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

// Handle maps one Socket Mode event to the router and says how to answer.
// Events that are not requests (connection state) return a zero Reply.
func (h *Handler) Handle(ctx context.Context, evt socketmode.Event) Reply {
	if evt.Request == nil {
		return Reply{}
	}
	ctx = httpapi.WithRequestID(ctx, "sm-"+evt.Request.EnvelopeID)
	// Built on first use: most requests log nothing here, and slog's With
	// formats its attributes at once.
	log := sync.OnceValue(func() *slog.Logger {
		l := h.log.With("request_id", "sm-"+evt.Request.EnvelopeID, "type", string(evt.Type))
		if evt.Request.RetryAttempt > 0 {
			l = l.With("slack_retry_num", evt.Request.RetryAttempt, "slack_retry_reason", evt.Request.RetryReason)
		}
		return l
	})
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			log().Warn("slash command with unexpected data", "data_type", fmt.Sprintf("%T", evt.Data))
			return Reply{Ack: true}
		}
		if msg := h.router.DispatchCommand(ctx, cmd); msg != nil {
			return Reply{Ack: true, Payload: httpapi.ReplyFrom(msg)}
		}
		return Reply{Ack: true}

	case socketmode.EventTypeInteractive:
		ic, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			log().Warn("interaction with unexpected data", "data_type", fmt.Sprintf("%T", evt.Data))
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

	case socketmode.EventTypeEventsAPI:
		_, ev, err := httpapi.ParseEvent(evt.Request.Payload)
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

// NewClient builds a Socket Mode client from the bot token, the app-level
// token and an optional Web API base URL (SLACK_API_URL).
func NewClient(botToken, appToken, apiURL string) *socketmode.Client {
	opts := []slack.Option{slack.OptionAppLevelToken(appToken)}
	if apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return socketmode.New(slack.New(botToken, opts...))
}

// Run connects and serves until ctx is done or the connection fails for
// good (invalid_auth). Each request is handled in its own goroutine, so a
// slow handler does not hold up the others; Run waits for them before it
// returns.
func (h *Handler) Run(ctx context.Context, c *socketmode.Client) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- c.RunContext(ctx) }()

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-runErr:
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("socket mode: %w", err)
		case evt, ok := <-c.Events:
			if !ok {
				return nil
			}
			switch evt.Type {
			case socketmode.EventTypeConnecting:
				h.log.Info("connecting to Slack")
			case socketmode.EventTypeConnected:
				h.log.Info("connected to Slack")
			case socketmode.EventTypeConnectionError:
				h.log.Warn("connection error; retrying", "err", fmt.Sprint(evt.Data))
			case socketmode.EventTypeInvalidAuth:
				return errors.New("socket mode: Slack rejected SLACK_APP_TOKEN (invalid_auth)")
			case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
				h.log.Warn("socket mode error", "type", string(evt.Type), "err", fmt.Sprint(evt.Data))
			case socketmode.EventTypeHello, socketmode.EventTypeDisconnect:
				h.log.Debug("socket mode", "type", string(evt.Type))
			default:
				if evt.Request == nil {
					continue
				}
				wg.Add(1)
				h.router.Go(func() {
					defer wg.Done()
					ctx, afterAck := httpapi.WithAfterAck(ctx, h.log)
					defer afterAck() // work the handler deferred until after its ack
					r := h.Handle(ctx, evt)
					if !r.Ack {
						return
					}
					if err := c.AckCtx(context.WithoutCancel(ctx), evt.Request.EnvelopeID, r.Payload); err != nil {
						h.log.Error("cannot acknowledge", "envelope_id", evt.Request.EnvelopeID, "err", err)
					}
				})
			}
		}
	}
}
