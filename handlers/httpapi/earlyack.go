package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
)

// earlyAck lets a request's handler run in the request's own goroutine on
// a transport that can answer before the handler returns (`tokken serve`'s
// HTTP server): if the handler outlasts the ack timeout, a timer sends the
// answer the router gives a slow handler, and the handler goes on. Without
// it (Lambda, which freezes once it answers; Socket Mode; a handler called
// directly) withDeadline runs the handler on another goroutine and answers
// from the request's. Running inline saves that hand-off on every request:
// waking another goroutine is a futex wake-up of an idle thread whenever
// the machine is not saturated, a tenth of an in-process `/access help`
// (BENCHMARKS.md).
type earlyAck struct {
	mu       sync.Mutex
	w        http.ResponseWriter // where the slow-handler answer goes
	body     []byte              // the answer (JSON; nil: an empty 200)
	sent     bool                // answer ran
	finished bool                // the handler returned: too late to answer early
}

type earlyAckKey struct{}

// earlyAckFrom returns the request's earlyAck, or nil.
func earlyAckFrom(ctx context.Context) *earlyAck {
	ea, _ := ctx.Value(earlyAckKey{}).(*earlyAck)
	return ea
}

// fire sends the early answer unless the handler has already returned.
func (e *earlyAck) fire() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.finished {
		return
	}
	e.sent = true
	e.answer()
}

// answer writes and flushes the slow-handler answer.
func (e *earlyAck) answer() {
	h := e.w.Header()
	// A complete, length-delimited answer: flushed, the client has all of
	// it while the handler still runs (a chunked one would end only when
	// the handler returns).
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	// The connection stays busy until the handler returns: the client must
	// not send its next request on it.
	h.Set("Connection", "close")
	if e.body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	e.w.WriteHeader(http.StatusOK)
	_, _ = e.w.Write(e.body)
	_ = http.NewResponseController(e.w).Flush()
}

// finish records that the handler returned and reports whether the answer
// was already sent for it.
func (e *earlyAck) finish() (sent bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finished = true
	return e.sent
}

// answered reports whether the early answer went out (false for nil).
func (e *earlyAck) answered() bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}

// withEarlyAck returns r's context carrying an earlyAck whose answer is
// body (JSON; nil: an empty 200), if the transport can answer early: w
// must flush, and the request must not be Frozen. Otherwise it returns
// r's context and nil.
func withEarlyAck(r *http.Request, w http.ResponseWriter, body []byte) (context.Context, *earlyAck) {
	ctx := r.Context()
	if isFrozen(ctx) || !canFlush(w) {
		return ctx, nil
	}
	ea := &earlyAck{w: w, body: body}
	return context.WithValue(ctx, earlyAckKey{}, ea), ea
}

// canFlush reports whether w, or a writer it wraps, can flush.
func canFlush(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(http.Flusher); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}
