package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestOtherTeamRefused: with the installation's team set, a command, a
// click, a view submission or an options request from another Slack team
// (the payload's team, or its user's own team in a Slack Connect channel)
// runs no handler and is answered that tokken acts only for its workspace;
// the installation's own team is served as before.
func TestOtherTeamRefused(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	r, err := router.New(router.Deps{Store: e.store, Queue: e.queue, Log: slog.New(slog.DiscardHandler), Team: func(context.Context) (string, error) { return slackfake.TeamID, nil }})
	if err != nil {
		t.Fatal(err)
	}
	handler := New(Deps{Router: r, Verifier: slacksig.Verifier{Secret: []byte(e.fake.SigningSecret())}, Log: slog.New(slog.DiscardHandler)})
	var ran atomic.Int32
	r.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		ran.Add(1)
		return &slack.Msg{Text: "ran"}, nil
	})
	r.HandleInteraction("access", func(context.Context, slack.InteractionCallback) (any, error) {
		ran.Add(1)
		return nil, nil
	})
	r.HandleOptions("access", func(context.Context, slack.InteractionCallback) (any, error) {
		ran.Add(1)
		return &slack.OptionsResponse{Options: []*slack.OptionBlockObject{
			slack.NewOptionBlockObject("i-0abc", slack.NewTextBlockObject("plain_text", "web-01", false, false), nil)}}, nil
	})
	e.handler = handler
	const other = "T0OTHERORG"

	req, _ := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U1", TeamID: other})
	if got := reply(t, e.do(req)); got.Text != router.MsgForeignTeam || got.ResponseType != slack.ResponseTypeEphemeral {
		t.Errorf("command from another team answered %+v", got)
	}

	click := func(team, userTeam string) slack.InteractionCallback {
		return slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, Team: slack.Team{ID: team},
			User:           slack.User{ID: "U2", TeamID: userTeam},
			ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: "access:approve", Value: "r-1"}}}}
	}
	for _, ic := range []slack.InteractionCallback{click(other, other), click(slackfake.TeamID, other)} {
		req, sent := e.fake.Interaction(t, "http://tokken/slack/interactions", ic)
		if rec := e.do(req); rec.Code != 200 || rec.Body.Len() != 0 {
			t.Fatalf("click from team %s / user team %s: %d %q", ic.Team.ID, ic.User.TeamID, rec.Code, rec.Body)
		}
		select {
		case j := <-e.queue.jobs:
			var p router.RespondPayload
			if err := j.Decode(&p); err != nil || j.Kind != router.JobRespond || p.ResponseURL != sent.ResponseURL || p.Reply.Text != router.MsgForeignTeam {
				t.Errorf("answer to a click from another team: %s %+v %v", j.Kind, p, err)
			}
		default:
			t.Errorf("no answer to a click from team %s / user team %s", ic.Team.ID, ic.User.TeamID)
		}
	}

	submit := slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, Team: slack.Team{ID: slackfake.TeamID},
		User: slack.User{ID: "U1", TeamID: other}, View: slack.View{ID: "V1", CallbackID: "access:request", Hash: "h1"}}
	req, _ = e.fake.Interaction(t, "http://tokken/slack/interactions", submit)
	rec := e.do(req)
	var view struct {
		Action string          `json:"response_action"`
		View   json.RawMessage `json:"view"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &view); err != nil || view.Action != "update" || !strings.Contains(string(view.View), "another Slack team") {
		t.Errorf("submission from another team: %d %q", rec.Code, rec.Body)
	}

	sug := slack.InteractionCallback{Type: slack.InteractionTypeBlockSuggestion, ActionID: "access:instance", Value: "web",
		Team: slack.Team{ID: other}, User: slack.User{ID: "U1"}}
	req, _ = e.fake.Interaction(t, "http://tokken/slack/options", sug)
	if rec := e.do(req); strings.Contains(rec.Body.String(), "i-0abc") {
		t.Errorf("options for another team: %q", rec.Body)
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("handlers ran %d times for another team", n)
	}

	// The installation's own team is served.
	req, _ = e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U1"})
	if got := reply(t, e.do(req)); got.Text != "ran" {
		t.Errorf("command from the installation's team answered %+v", got)
	}
	req, _ = e.fake.Interaction(t, "http://tokken/slack/interactions", click("", ""))
	e.do(req)
	req, _ = e.fake.Interaction(t, "http://tokken/slack/options", slack.InteractionCallback{Type: slack.InteractionTypeBlockSuggestion,
		ActionID: "access:instance", User: slack.User{ID: "U1"}})
	if rec := e.do(req); !strings.Contains(rec.Body.String(), "i-0abc") {
		t.Errorf("options for the installation's team: %q", rec.Body)
	}
	if n := ran.Load(); n != 3 {
		t.Fatalf("handlers ran %d times for the installation's team, want 3", n)
	}
}

// TestUnknownTeamRefused: while Slack cannot say which team tokken is
// installed in, Slack requests are refused (asked again each time), and
// served once it can.
func TestUnknownTeamRefused(t *testing.T) {
	e := newEnv(t, time.Second, nil)
	var down atomic.Bool
	down.Store(true)
	team := func(context.Context) (string, error) {
		if down.Load() {
			return "", errors.New("slack auth.test: network_error")
		}
		return slackfake.TeamID, nil
	}
	r, err := router.New(router.Deps{Store: e.store, Queue: e.queue, Log: slog.New(slog.DiscardHandler), Team: team})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = New(Deps{Router: r, Verifier: slacksig.Verifier{Secret: []byte(e.fake.SigningSecret())}, Log: slog.New(slog.DiscardHandler)})
	var ran atomic.Int32
	r.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		ran.Add(1)
		return &slack.Msg{Text: "ran"}, nil
	})
	req, _ := e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U1"})
	if got := reply(t, e.do(req)); got.Text != router.MsgTeamUnknown || ran.Load() != 0 {
		t.Fatalf("with the team unknown: %+v, handler ran %d times", got, ran.Load())
	}
	down.Store(false)
	req, _ = e.fake.SlashCommand(t, "http://tokken/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U1"})
	if got := reply(t, e.do(req)); got.Text != "ran" {
		t.Fatalf("with the team known: %+v", got)
	}
}
