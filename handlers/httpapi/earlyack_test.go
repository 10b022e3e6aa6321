package httpapi

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// TestSlowHandlersAreAnsweredEarly: over `tokken serve`'s HTTP server a
// handler runs in the request's goroutine; one slower than the ack timeout
// gets the router's slow-handler answer, complete and on time, while it
// still runs, and nothing is written twice when it returns.
func TestSlowHandlersAreAnsweredEarly(t *testing.T) {
	e := newEnv(t, 30*time.Millisecond, nil)
	var serverErrors bytes.Buffer
	e.server = httptest.NewUnstartedServer(e.handler)
	e.server.Config.ErrorLog = log.New(&serverErrors, "", 0)
	e.server.Start()
	t.Cleanup(e.server.Close)

	release := make(chan struct{})
	finished := make(chan string, 4)
	slow := func(name string) { <-release; finished <- name }
	e.router.HandleCommand("/slow", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		slow("command")
		return &slack.Msg{Text: "late answer"}, nil
	})
	e.router.HandleInteraction("slow", func(context.Context, slack.InteractionCallback) (any, error) {
		slow("interaction")
		return map[string]string{"response_action": "clear"}, nil
	})
	e.router.HandleOptions("slow", func(context.Context, slack.InteractionCallback) (any, error) {
		slow("options")
		return &slack.OptionsResponse{Options: []*slack.OptionBlockObject{{Value: "late"}}}, nil
	})
	e.router.HandleEvent("app_mention", func(context.Context, Event) error {
		slow("event")
		return errors.New("failed after its ack")
	})

	cmd, _ := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/slow", UserID: "U1", ChannelID: "C1"})
	click, _ := e.fake.Interaction(t, "http://tokken/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, TriggerID: "t-early", User: slack.User{ID: "U1"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "slow:x", BlockID: "b"}}},
	})
	suggest, _ := e.fake.Interaction(t, "http://tokken/slack/options", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockSuggestion, User: slack.User{ID: "U1"}, ActionID: "slow:pick",
	})
	tests := []struct {
		name     string
		req      *http.Request
		wantBody string
	}{
		{"command", cmd, `"text":"` + MsgWorkingOnIt + `"`},
		{"interaction", click, ""},
		{"options", suggest, `{}`}, // the empty options list, as DispatchOptions gives it
		{"event", e.signed("/slack/events", eventBody("EvEarly"), time.Now()), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.overHTTP(tt.req) // the handler is still blocked on release
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if got := rec.Body.String(); tt.wantBody == "" && got != "" || !strings.Contains(got, tt.wantBody) {
				t.Errorf("early answer %q, want %q", got, tt.wantBody)
			}
			if cl := rec.Header().Get("Content-Length"); cl == "" {
				t.Error("early answer without Content-Length: the client would wait for the handler")
			}
			// The next request (the next subtest) must not queue behind the
			// still-running handler on the same connection.
			if c := rec.Header().Get("Connection"); c != "close" {
				t.Errorf("early answer with Connection %q, want close", c)
			}
		})
	}
	close(release)
	for range tests {
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("a slow handler never finished")
		}
	}
	if err := e.router.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.server.Close() // waits for the handlers' requests to end
	if serverErrors.Len() > 0 {
		t.Errorf("the server logged %q (a second answer?)", serverErrors.String())
	}
	select {
	case job := <-e.queue.jobs:
		if job.Kind != JobRespond {
			t.Errorf("queued %s, want the command's late answer", job.Kind)
		}
	default:
		t.Error("the slow command's answer was not queued for its response_url")
	}
}

// TestSlowHandlerOnAFrozenTransport: where the process may freeze once it
// answers (Lambda), nothing can be sent early, so the handler runs on its
// own goroutine and ServeHTTP itself returns the slow-handler answer.
func TestSlowHandlerOnAFrozenTransport(t *testing.T) {
	e := newEnv(t, 30*time.Millisecond, nil)
	release := make(chan struct{})
	e.router.HandleCommand("/slow", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		<-release
		return &slack.Msg{Text: "late answer"}, nil
	})
	req, _ := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/slow", UserID: "U1", ChannelID: "C1"})
	rec := e.do(req.WithContext(Frozen(req.Context()))) // returns although the handler is blocked
	close(release)
	if r := reply(t, rec); r.Text != MsgWorkingOnIt {
		t.Errorf("answer %+v, want %q", r, MsgWorkingOnIt)
	}
}
