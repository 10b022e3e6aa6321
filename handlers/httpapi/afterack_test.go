package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/router"
)

// clickWithAfterAck registers a click handler that defers work with
// router.AfterAck, and returns a click request and the channel the work reports
// on.
func clickWithAfterAck(t *testing.T, e *env, work func(ctx context.Context)) *http.Request {
	t.Helper()
	e.router.HandleInteraction("ns", func(ctx context.Context, _ slack.InteractionCallback) (any, error) {
		router.AfterAck(ctx, work)
		return nil, nil
	})
	req, _ := e.fake.Interaction(t, "http://tokken/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, TriggerID: "t-" + t.Name(), User: slack.User{ID: "U1"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "ns:x", BlockID: "b"}}},
	})
	return req
}

// TestAfterAckRunsAfterTheAnswer: under `serve`, deferred work runs after
// the handler has answered (it waits for a signal the test gives only
// once the answer is in), keeps the request id, and router.Router.Wait waits for
// it.
func TestAfterAckRunsAfterTheAnswer(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	answered := make(chan struct{})
	var ran atomic.Bool
	var gotID atomic.Value
	req := clickWithAfterAck(t, e, func(ctx context.Context) {
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
			t.Error("AfterAck work ran before the request was answered")
		}
		gotID.Store(router.RequestID(ctx))
		if ctx.Err() != nil {
			t.Error("AfterAck work got a cancelled context")
		}
		ran.Store(true)
	})
	req.Header.Set(HeaderRequestID, "req-after-ack")
	rec := e.do(req)
	close(answered)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.router.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !ran.Load() || gotID.Load() != "req-after-ack" {
		t.Fatalf("ran %v with request id %v", ran.Load(), gotID.Load())
	}
}

// TestAfterAckFrozen: on Lambda (a router.Frozen request) the work is done by
// the time the handler returns.
func TestAfterAckFrozen(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	var ran atomic.Bool
	req := clickWithAfterAck(t, e, func(context.Context) { ran.Store(true) })
	rec := e.do(req.WithContext(router.Frozen(req.Context())))
	if rec.Code != http.StatusOK || !ran.Load() {
		t.Fatalf("status %d, work done before the return: %v", rec.Code, ran.Load())
	}
}

// TestAfterAckPanicIsLogged: a panic in deferred work is logged and the
// process goes on.
func TestAfterAckPanicIsLogged(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	req := clickWithAfterAck(t, e, func(context.Context) { panic("boom") })
	e.do(req.WithContext(router.Frozen(req.Context())))
	if !strings.Contains(e.logs.String(), "work after the ack panicked") {
		t.Fatalf("no log of the panic:\n%s", e.logs)
	}
}

// TestAfterAckFromAHandlerPastItsAck: a handler slower than the ack
// timeout that defers work after the answer went out still gets it done.
func TestAfterAckFromAHandlerPastItsAck(t *testing.T) {
	e := newEnv(t, 20*time.Millisecond, nil)
	release := make(chan struct{})
	done := make(chan struct{})
	e.router.HandleInteraction("slow", func(ctx context.Context, _ slack.InteractionCallback) (any, error) {
		<-release
		router.AfterAck(ctx, func(context.Context) { close(done) })
		return nil, nil
	})
	req, _ := e.fake.Interaction(t, "http://tokken/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, TriggerID: "t-slow", User: slack.User{ID: "U1"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "slow:x", BlockID: "b"}}},
	})
	if rec := e.do(req); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("work deferred by a handler past its ack never ran")
	}
}
