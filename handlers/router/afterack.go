package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// AfterAck runs f once the Slack request ctx belongs to has been
// acknowledged: work the user waits for but Slack's acknowledgement does
// not, such as the ephemeral answer to a click ("tokken no longer knows
// this alert"). Slack shows a click as pending until its 200 arrives, so
// answering first and posting after takes the Web API round trip out of
// the ack, as Slack recommends.
//
// f runs with a context that keeps the request's values (request id) but
// not its cancellation. Where the transport can work after answering
// (`tokken serve`'s HTTP server, Socket Mode) it runs after the answer was
// handed to the transport; on Lambda, where a function is frozen once its
// response is returned, it runs just before the response is returned; and
// without a transport (a handler called directly) it runs at once. A panic
// in f is logged, not propagated. Work that must not be lost if the
// process dies right after the ack belongs on the job queue instead.
func AfterAck(ctx context.Context, f func(context.Context)) {
	if d, ok := ctx.Value(afterAckKey{}).(*afterAck); ok && d.add(f) {
		return
	}
	f(context.WithoutCancel(ctx))
}

type afterAckKey struct{}

// afterAck collects the functions deferred during one request.
type afterAck struct {
	mu   sync.Mutex
	fns  []func(context.Context)
	done bool // run has started: later functions run at once
}

func (d *afterAck) add(f func(context.Context)) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return false
	}
	d.fns = append(d.fns, f)
	return true
}

// take returns the collected functions and makes later AfterAck calls
// (from a handler still running after a timed-out ack) run at once.
func (d *afterAck) take() []func(context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = true
	fns := d.fns
	d.fns = nil
	return fns
}

// WithAfterAck returns ctx collecting AfterAck work for a transport, and
// the function the transport calls once it has answered: it runs the
// collected work in order, and from then on AfterAck runs work at once (a
// handler still running past its ack). A transport whose process may be
// frozen once it answers (Lambda) calls it before answering.
func WithAfterAck(ctx context.Context, log *slog.Logger) (context.Context, func()) {
	if log == nil {
		log = slog.Default()
	}
	d := &afterAck{}
	ctx = context.WithValue(ctx, afterAckKey{}, d)
	return ctx, func() {
		detached := context.WithoutCancel(ctx)
		for _, f := range d.take() {
			runLogged(detached, log, f)
		}
	}
}

func runLogged(ctx context.Context, log *slog.Logger, f func(context.Context)) {
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "work after the ack panicked", "panic", fmt.Sprint(p))
		}
	}()
	f(ctx)
}

type frozenKey struct{}

// Frozen marks ctx as a request whose process may be frozen as soon as
// it answers (a Lambda invocation): Acked then runs AfterAck work before
// the transport returns the response instead of after.
func Frozen(ctx context.Context) context.Context {
	return context.WithValue(ctx, frozenKey{}, true)
}

func isFrozen(ctx context.Context) bool {
	frozen, _ := ctx.Value(frozenKey{}).(bool)
	return frozen
}

// Acked runs run, the function WithAfterAck returned for ctx, once the
// transport has handed over its answer: at once when ctx is Frozen (the
// process may be frozen as soon as the transport returns), otherwise in a
// goroutine that Wait waits for.
func (r *Router) Acked(ctx context.Context, run func()) {
	if isFrozen(ctx) {
		run()
		return
	}
	r.late.Go(run)
}
