package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/socketfake"
	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/socket"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/slackfake"
)

type nopQueue struct{}

func (nopQueue) Enqueue(context.Context, bot.Job) error { return nil }

// TestMeasureInProcess runs the whole measurement against tokken's Socket
// Mode transport in this process: handlers/socket over an router.Router,
// connected through serveFront like the real binary. A router answering
// as tokken does is measured without errors; one that answers the wrong
// text and posts no ephemeral is reported, not measured as fine.
func TestMeasureInProcess(t *testing.T) {
	tests := []struct {
		name       string
		helpText   string
		postOnAck  bool
		wantErrors bool
		wantCheck  string
	}{
		{name: "answers like tokken", helpText: "Ask for time-boxed AWS access with /access PROFILE DURATION REASON", postOnAck: true},
		{name: "wrong answer, no ephemeral", helpText: "Unknown command", wantErrors: true, wantCheck: "ephemerals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			slackFake := slackfake.New(t)
			slackFake.AddChannel(loadgen.ChannelID, "bench")
			slackFake.AddUser(slackfake.User{ID: loadgen.UserID, Name: "bench"})
			const appToken = "xapp-1-A0BENCH001-1-test"
			fake, base, stop, err := serveFront(appToken, slackFake)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)

			store, err := boltstore.Open(filepath.Join(t.TempDir(), "s.db"), boltstore.WithSweepInterval(0))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			rt, err := router.New(router.Deps{Store: store, Queue: nopQueue{}, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			rt.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
				return &slack.Msg{Text: tt.helpText}, nil
			})
			api := slack.New(slackFake.Token(), slack.OptionAPIURL(base+"/api/"))
			rt.HandleInteraction("alert.ack", func(ctx context.Context, ic slack.InteractionCallback) (any, error) {
				if !tt.postOnAck {
					return nil, nil
				}
				_, err := api.PostEphemeralContext(ctx, ic.Channel.ID, ic.User.ID, slack.MsgOptionText("no longer known", false))
				return nil, err
			})
			h := socket.New(rt, slog.New(slog.DiscardHandler))
			runCtx, stopRun := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- h.Run(runCtx, socket.NewClient(appToken, base+"/api/")) }()
			t.Cleanup(func() { stopRun(); <-done })
			if err := fake.WaitFor(ctx, func(st socketfake.Stats) bool { return st.Open > 0 }); err != nil {
				t.Fatal(err)
			}

			o := options{requests: 40, paced: 20, rate: 400, warmup: 5, concurrency: 4, maxRun: 30 * time.Second, ackTimeout: 5 * time.Second}
			runs, checks, err := measure(ctx, o, target{fake: fake, slack: slackFake})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 4 {
				t.Fatalf("%d runs, want 4 (two requests, paced and saturated, Socket Mode only)", len(runs))
			}
			for _, m := range runs {
				r := m.Result
				want := map[string]int{"paced": 20, "saturated": 40}[m.Mode]
				if m.Transport != "socket" || r.Requests != want {
					t.Errorf("%s %s %s: %d requests, want %d", m.Transport, r.Kind, m.Mode, r.Requests, want)
				}
				wantErrs := 0
				if tt.wantErrors && r.Kind == loadgen.KindCommand {
					wantErrs = r.Requests
				}
				if r.Errors != wantErrs {
					t.Errorf("%s %s: %d errors (first %q), want %d", r.Kind, m.Mode, r.Errors, r.FirstError, wantErrs)
				}
				if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
					t.Errorf("%s %s: percentiles %s %s %s", r.Kind, m.Mode, r.P50, r.P99, r.Max)
				}
			}
			if tt.wantCheck == "" && len(checks) != 0 {
				t.Errorf("checks %q, want none", checks)
			}
			if tt.wantCheck != "" && (len(checks) != 1 || !strings.Contains(checks[0], tt.wantCheck)) {
				t.Errorf("checks %q, want one about %s", checks, tt.wantCheck)
			}
			if got := socketChecks(fake.Stats()); len(got) != 0 {
				t.Errorf("socket checks %q", got)
			}
		})
	}
}
