// Package router dispatches Slack traffic to tokken's features, the same
// whichever transport brought it: the HTTP routes (handlers/httpapi, behind
// `tokken serve` and the Lambda Function URL) and Socket Mode
// (handlers/socket) parse a request and hand it to one Router. The Router
// routes slash commands by name and interactions, options and events by
// namespace or type; runs each handler with the ack deadline, answering
// for a slower one (a late command answer goes to the response_url through
// the job queue); and refuses a repeated delivery, remembered in the store.
//
// It also carries what belongs to one request on every transport: its id
// (RequestID) and the work deferred until it is acknowledged (AfterAck).
package router

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// CommandFunc answers a slash command. The returned message is the
// immediate answer (ephemeral unless it sets ResponseType "in_channel"); nil
// answers with an empty 200. Slow work belongs on the job queue. A returned
// error is logged and the user sees a short apology with the request id.
type CommandFunc func(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error)

// InteractionFunc handles an interaction payload (block_actions,
// view_submission, view_closed, shortcut, message_action). The result is
// the HTTP response body encoded as JSON (e.g. a view_submission
// response_action), or nil for an empty 200.
type InteractionFunc func(ctx context.Context, ic slack.InteractionCallback) (any, error)

// OptionsFunc answers an external select's options request
// (block_suggestion); the result is usually *slack.OptionsResponse or
// *slack.OptionGroupsResponse.
type OptionsFunc func(ctx context.Context, ic slack.InteractionCallback) (any, error)

// Event is one Events API event_callback, reduced to what routing needs; the
// handler decodes Inner (e.g. with slackevents) into the type it expects.
type Event struct {
	ID     string          // event_id: unique per event, the same on Slack's retries
	Type   string          // the inner event's type, e.g. "app_mention"
	TeamID string          // workspace
	Time   time.Time       // event_time
	Inner  json.RawMessage // the "event" object
}

// EventFunc handles an Events API event. It must be quick (enqueue a job);
// an error makes Slack retry later (HTTP) or is logged (Socket Mode).
type EventFunc func(ctx context.Context, ev Event) error

// Store kinds and job kinds the router uses.
const (
	// KindSeen holds one create-only record per delivered event,
	// interaction or slash command (ExpiresAt SeenTTL): a second delivery
	// finds it and has no effect.
	KindSeen = "seen"
	// JobRespond posts a late command answer to the command's response_url
	// (see RespondJob).
	JobRespond = "slack.respond"
)

// SeenTTL is how long a delivery is remembered: longer than Slack's
// retries (minutes) and the 5-minute signature window that bounds replays.
const SeenTTL = time.Hour

// DefaultAckTimeout is how long a handler may run before the request is
// acknowledged without it: Slack gives up after 3 s.
const DefaultAckTimeout = 2500 * time.Millisecond

// Router dispatches Slack traffic to the registered handlers. It is
// transport-independent: the HTTP handler (handlers/httpapi) and Socket
// Mode (handlers/socket) both call its Dispatch methods, so a command behaves the
// same whichever way it arrives. Register everything before serving; the
// Register methods panic on duplicates (a wiring bug).
//
// Interactions and options are routed by namespace: the part of the
// action_id (block_actions, block_suggestion) or callback_id (views,
// shortcuts) before the first ':' — "access:approve" goes to the "access"
// handler.
//
// Repeated deliveries have no second effect: a slash command (by
// trigger_id), an interaction (by trigger_id, or view id and hash) and an
// event (by event_id) runs once, and a replay or redelivery is answered
// without running it. Each delivery is one create-only KindSeen record in
// the store, written before the handler runs, so any process refuses what
// any other ran, across restarts and crashes, for SeenTTL.
type Router struct {
	team       func(context.Context) (string, error) // the installation's team; nil checks none
	seen       deliveries
	queue      bot.Queue
	log        *slog.Logger
	ackTimeout time.Duration

	commands     map[string]CommandFunc
	interactions map[string]InteractionFunc
	options      map[string]OptionsFunc
	events       map[string]EventFunc

	late sync.WaitGroup // handlers and after-ack work still running after their ack
}

// Deps are what a Router needs.
type Deps struct {
	// Store records deliveries (KindSeen) for deduplication. Required.
	Store bot.Store
	// Queue receives the late answers of slow commands (JobRespond).
	// Required.
	Queue bot.Queue
	Log   *slog.Logger // default slog.Default()
	// AckTimeout is DefaultAckTimeout when zero.
	AckTimeout time.Duration
	// Team returns the Slack team tokken is installed in (auth.test's
	// team_id, e.g. (*slackapi.Client).Team). When set, commands,
	// interactions and options from any other team (a user of another
	// organisation in a Slack Connect channel), or while it cannot say, are
	// refused before any handler runs (see foreign).
	Team func(context.Context) (string, error)
}

// New returns a Router with no handlers.
func New(d Deps) (*Router, error) {
	if d.Store == nil || d.Queue == nil {
		return nil, errors.New("router: needs a store and a queue")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.AckTimeout <= 0 {
		d.AckTimeout = DefaultAckTimeout
	}
	return &Router{
		team: d.Team, seen: deliveries{d.Store}, queue: d.Queue, log: d.Log, ackTimeout: d.AckTimeout,
		commands: map[string]CommandFunc{}, interactions: map[string]InteractionFunc{},
		options: map[string]OptionsFunc{}, events: map[string]EventFunc{},
	}, nil
}

func register[F any](m map[string]F, what, key string, f F) {
	if key == "" {
		panic("httpapi: empty " + what + " name")
	}
	if _, dup := m[key]; dup {
		panic("router: " + what + " registered twice: " + key)
	}
	m[key] = f
}

// HandleCommand registers f for a slash command, e.g. "/access".
func (r *Router) HandleCommand(command string, f CommandFunc) {
	register(r.commands, "command", command, f)
}

// HandleInteraction registers f for the interactions of a namespace.
func (r *Router) HandleInteraction(namespace string, f InteractionFunc) {
	register(r.interactions, "interaction namespace", namespace, f)
}

// HandleOptions registers f for the external selects of a namespace.
func (r *Router) HandleOptions(namespace string, f OptionsFunc) {
	register(r.options, "options namespace", namespace, f)
}

// HandleEvent registers f for an Events API event type, e.g. "app_mention".
func (r *Router) HandleEvent(eventType string, f EventFunc) {
	register(r.events, "event type", eventType, f)
}

// Commands lists the registered slash commands, sorted.
func (r *Router) Commands() []string {
	out := make([]string, 0, len(r.commands))
	for c := range r.commands {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Wait blocks until handlers that outlived their acknowledgement, and work
// deferred until after an acknowledgement (AfterAck), have finished, or
// ctx is done. Call it on shutdown before closing the queue.
func (r *Router) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.late.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for slow slack handlers: %w", ctx.Err())
	}
}

// withDeadline runs f(arg) in a goroutine and returns its result if it
// finishes within the ack timeout. Otherwise it returns timedOut and f
// keeps running, detached from the request's cancellation; late receives
// its eventual result. A panic in f becomes an error. This is the one path
// of every transport: on Lambda a handler past its ack goes on when the
// next invocation thaws the process.
func withDeadline[A, T any](ctx context.Context, r *Router, f func(context.Context, A) (T, error), arg A, late func(T, error)) (v T, err error, timedOut bool) {
	var (
		mu        sync.Mutex
		abandoned bool // the caller acknowledged without the result
		ch        = make(chan result[T], 1)
	)
	r.late.Go(func() {
		res := runRecovered(ctx, f, arg)
		mu.Lock()
		if !abandoned {
			ch <- res
			mu.Unlock()
			return
		}
		mu.Unlock()
		if late != nil {
			late(res.v, res.err)
		}
	})
	timer := time.NewTimer(r.ackTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		return res.v, res.err, false
	case <-timer.C:
		mu.Lock()
		defer mu.Unlock()
		select {
		case res := <-ch: // finished just in time
			return res.v, res.err, false
		default:
			abandoned = true
			return v, nil, true
		}
	}
}

// result is what a handler produced.
type result[T any] struct {
	v   T
	err error
}

// runRecovered runs f detached from ctx's cancellation (a handler goes on
// after its request is answered); a panic becomes an error.
func runRecovered[A, T any](ctx context.Context, f func(context.Context, A) (T, error), arg A) (res result[T]) {
	defer func() {
		if p := recover(); p != nil {
			res.err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	res.v, res.err = f(context.WithoutCancel(ctx), arg)
	return res
}

// NoOptions is the answer of an external select without options (an
// unknown, failed or slow options handler), the same on every transport.
func NoOptions() *slack.OptionsResponse {
	return &slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
}

// MsgWorkingOnIt is the answer to a command whose handler outlasts the ack
// timeout; its own answer follows through the response_url.
const MsgWorkingOnIt = "Working on it… the answer will follow here."

// DispatchCommand runs the command's handler and returns the message that
// acknowledges it. A command delivered a second time (same trigger_id: a
// replayed request or a redelivery) does not run again and is answered
// MsgRepeatedCommand. It never fails: unknown commands, handler errors and
// handlers slower than the ack timeout all produce a message for the user,
// and a slow handler's answer is delivered later through the response_url
// (a JobRespond job).
func (r *Router) DispatchCommand(ctx context.Context, cmd slack.SlashCommand) *slack.Msg {
	log := r.logger(ctx, "command", cmd.Command, "user", cmd.UserID)
	if refusal := r.foreign(ctx, log, cmd.TeamID); refusal != "" {
		return Ephemeral(refusal)
	}
	f, ok := r.commands[cmd.Command]
	if !ok {
		return Ephemeral(fmt.Sprintf("Unknown command %s. tokken knows: %s.", mrkdwn.Escape(cmd.Command), strings.Join(r.Commands(), ", ")))
	}
	if key := commandKey(cmd); key != "" {
		fresh, err := r.seen.first(ctx, key)
		if err != nil {
			log.Error("cannot record the command delivery", "err", err)
			return r.failure(ctx, cmd.Command)
		}
		if !fresh {
			// A replay of a captured request (the signature is still inside
			// its 5-minute window) or a redelivery: it must not run twice.
			log.Warn("repeated command ignored", "dedup_key", key)
			return Ephemeral(MsgRepeatedCommand)
		}
	}
	start := time.Now()
	msg, err, timedOut := withDeadline(ctx, r, f, cmd,
		func(msg *slack.Msg, err error) {
			log.Warn("slow command finished after its ack", "ms", time.Since(start).Milliseconds(), "err", err)
			if err != nil {
				msg = r.failure(ctx, cmd.Command)
			}
			r.respondLater(ctx, log, cmd.ResponseURL, msg)
		})
	if timedOut {
		log.Warn("command handler exceeded the ack timeout; acknowledged without it", "timeout_ms", r.ackTimeout.Milliseconds())
		return Ephemeral(MsgWorkingOnIt)
	}
	if err != nil {
		log.Error("command failed", "err", err)
		return r.failure(ctx, cmd.Command)
	}
	if msg != nil && msg.ResponseType == "" {
		msg.ResponseType = slack.ResponseTypeEphemeral
	}
	return msg
}

func (r *Router) failure(ctx context.Context, what string) *slack.Msg {
	return Ephemeral(fmt.Sprintf(":warning: Something went wrong with %s (ref `%s`). It has been logged; please try again.", mrkdwn.Escape(what), RequestID(ctx)))
}

// respondLater queues a late answer for a response_url.
func (r *Router) respondLater(ctx context.Context, log *slog.Logger, responseURL string, msg *slack.Msg) {
	if msg == nil || responseURL == "" {
		return
	}
	job, err := bot.NewJob(bot.NewID("respond-"), JobRespond, RespondPayload{ResponseURL: responseURL, Reply: *ReplyFrom(msg)})
	if err == nil {
		err = r.queue.Enqueue(context.WithoutCancel(ctx), job)
	}
	if err != nil {
		log.Error("cannot queue the late answer of a slow command", "err", err)
	}
}

// DispatchInteraction deduplicates the interaction and runs its namespace's
// handler. duplicate is true when the same delivery was seen before (a retry
// or double submit): nothing ran. A handler slower than the ack timeout is
// acknowledged with a nil body and keeps running.
func (r *Router) DispatchInteraction(ctx context.Context, ic slack.InteractionCallback) (body any, duplicate bool, err error) {
	ns := interactionNamespace(ic)
	log := r.logger(ctx, "interaction", string(ic.Type), "namespace", ns, "user", ic.User.ID)
	if refusal := r.foreign(ctx, log, ic.Team.ID, ic.User.TeamID); refusal != "" {
		if ic.Type == slack.InteractionTypeViewSubmission {
			return refusalView(refusal), false, nil
		}
		r.respondLater(ctx, log, ic.ResponseURL, Ephemeral(refusal))
		return nil, false, nil
	}
	f, ok := r.interactions[ns]
	if !ok {
		log.Warn("no handler for interaction")
		return nil, false, nil
	}
	key := interactionKey(ic)
	if key != "" {
		fresh, err := r.seen.first(ctx, key)
		if err != nil {
			return nil, false, err
		}
		if !fresh {
			log.Info("duplicate interaction ignored", "dedup_key", key)
			return nil, true, nil
		}
	}
	start := time.Now()
	body, err, timedOut := withDeadline(ctx, r, f, ic,
		func(_ any, err error) {
			log.Warn("slow interaction finished after its ack; its response body was dropped", "ms", time.Since(start).Milliseconds(), "err", err)
		})
	if timedOut {
		log.Warn("interaction handler exceeded the ack timeout; acknowledged without it", "timeout_ms", r.ackTimeout.Milliseconds())
		return nil, false, nil
	}
	if err != nil {
		r.forget(ctx, log, key) // let Slack's retry or the user's second click try again
		return nil, false, fmt.Errorf("interaction %s/%s: %w", ic.Type, ns, err)
	}
	return body, false, nil
}

// DispatchOptions answers an external select. Options are reads, so they
// are not deduplicated; a slow handler yields an empty list.
func (r *Router) DispatchOptions(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	ns := namespace(ic.ActionID)
	log := r.logger(ctx, "namespace", ns)
	if refusal := r.foreign(ctx, log, ic.Team.ID, ic.User.TeamID); refusal != "" {
		return NoOptions(), nil
	}
	f, ok := r.options[ns]
	if !ok {
		log.Warn("no options handler", "action_id", ic.ActionID)
		return NoOptions(), nil
	}
	body, err, timedOut := withDeadline(ctx, r, f, ic, nil)
	if timedOut {
		log.Warn("options handler exceeded the ack timeout")
		return NoOptions(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("options %s: %w", ns, err)
	}
	return body, nil
}

// DispatchEvent deduplicates an event on its event_id and runs the handler
// for its type. Events without a handler are acknowledged and logged.
func (r *Router) DispatchEvent(ctx context.Context, ev Event) (duplicate bool, err error) {
	log := r.logger(ctx, "event_id", ev.ID, "event_type", ev.Type)
	f, ok := r.events[ev.Type]
	if !ok {
		log.Debug("no handler for event type")
		return false, nil
	}
	key := "event:" + ev.ID
	if ev.ID == "" {
		return false, errors.New("event without event_id")
	}
	fresh, err := r.seen.first(ctx, key)
	if err != nil {
		return false, err
	}
	if !fresh {
		log.Info("duplicate event delivery ignored")
		return true, nil
	}
	_, err, timedOut := withDeadline(ctx, r, func(ctx context.Context, ev Event) (struct{}, error) { return struct{}{}, f(ctx, ev) }, ev,
		func(_ struct{}, err error) {
			if err != nil {
				log.Error("slow event handler failed after its ack", "err", err)
			}
		})
	if timedOut {
		log.Warn("event handler exceeded the ack timeout; acknowledged without it")
		return false, nil
	}
	if err != nil {
		r.forget(ctx, log, key)
		return false, fmt.Errorf("event %s %s: %w", ev.Type, ev.ID, err)
	}
	return false, nil
}

func (r *Router) forget(ctx context.Context, log *slog.Logger, key string) {
	if key == "" {
		return
	}
	if err := r.seen.forget(context.WithoutCancel(ctx), key); err != nil {
		log.Warn("cannot forget a failed delivery; a retry will be ignored", "err", err)
	}
}

// logger returns the router's logger with the request id and attrs.
func (r *Router) logger(ctx context.Context, attrs ...any) *slog.Logger {
	if id := RequestID(ctx); id != "" {
		attrs = append(attrs, "request_id", id)
	}
	return r.log.With(attrs...)
}

// interactionNamespace picks the routing key of an interaction.
func interactionNamespace(ic slack.InteractionCallback) string {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		if len(ic.ActionCallback.BlockActions) > 0 {
			return namespace(ic.ActionCallback.BlockActions[0].ActionID)
		}
		return namespace(ic.ActionID)
	case slack.InteractionTypeViewSubmission, slack.InteractionTypeViewClosed:
		return namespace(ic.View.CallbackID)
	default: // shortcut, message_action, interactive_message, dialogs
		return namespace(ic.CallbackID)
	}
}

// MsgForeignTeam answers a command or click from a user of another Slack
// team than tokken's (Slack Connect).
const MsgForeignTeam = "tokken acts only for members of the workspace it is installed in; your account belongs to another Slack team, so nothing was done."

// MsgTeamUnknown answers a command or click while tokken cannot learn
// which workspace it serves (Slack's auth.test fails).
const MsgTeamUnknown = "tokken cannot confirm which Slack workspace it serves right now, so nothing was done. Please try again in a minute."

// foreign checks a payload's team, and its user's own team when the
// payload carries it (commands do not), against the installation's. It
// returns the answer for the user when the request must be refused (a
// payload without a team counts as another team's: Slack always sends
// it), or "" when it may proceed or the Router checks no team.
func (r *Router) foreign(ctx context.Context, log *slog.Logger, team string, userTeam ...string) string {
	if r.team == nil {
		return ""
	}
	home, err := r.team(ctx)
	if err != nil {
		log.Error("the installation's Slack team is unknown; request refused", "err", err)
		return MsgTeamUnknown
	}
	other := ""
	if team != home {
		other = cmp.Or(team, "(none)")
	}
	for _, t := range userTeam {
		if t != "" && t != home {
			other = t
		}
	}
	if other != "" {
		log.Warn("request from another Slack team refused", "team", other)
		return MsgForeignTeam
	}
	return ""
}

// refusalView replaces a submitted modal with text.
func refusalView(text string) *slack.ViewSubmissionResponse {
	return slack.NewUpdateViewSubmissionResponse(&slack.ModalViewRequest{
		Type:  slack.VTModal,
		Title: slack.NewTextBlockObject(slack.PlainTextType, "tokken", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.PlainTextType, text, false, false), nil, nil)}},
	})
}

// MsgRepeatedCommand answers a slash command delivered a second time.
const MsgRepeatedCommand = "This command was already received; it was not run again."

// commandKey identifies one invocation of a slash command: Slack issues a
// fresh trigger_id (and response_url) each time a user runs a command, so a
// request carrying one already seen is a replay or a redelivery. A command
// with neither (not something Slack sends) is not deduplicated.
func commandKey(cmd slack.SlashCommand) string {
	switch {
	case cmd.TriggerID != "":
		return "cmd:" + cmd.TriggerID
	case cmd.ResponseURL != "":
		return "cmd:" + cmd.ResponseURL
	}
	return ""
}

// interactionKey identifies one delivery of an interaction: Slack issues a
// fresh trigger_id per user action, and repeats it when it redelivers.
// view_closed carries no trigger_id: the view id and hash identify it.
func interactionKey(ic slack.InteractionCallback) string {
	switch {
	case ic.TriggerID != "":
		return "ix:" + string(ic.Type) + ":" + ic.TriggerID
	case ic.View.ID != "":
		return "ix:" + string(ic.Type) + ":" + ic.View.ID + ":" + ic.View.Hash
	case ic.ActionTs != "":
		return "ix:" + string(ic.Type) + ":" + ic.User.ID + ":" + ic.ActionTs
	}
	return ""
}

func namespace(id string) string {
	ns, _, _ := strings.Cut(id, ":")
	return ns
}

// Ephemeral is an answer only the user sees. text is mrkdwn: whatever in
// it did not come from tokken must have gone through mrkdwn.Escape.
func Ephemeral(text string) *slack.Msg {
	return &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: text}
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
