package slackfake

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/slacksig"
)

// app is a minimal Slack app: it verifies requests with slacksig, opens a
// modal for /access and answers on the response_url; for a button click it
// replaces the original message.
func app(t *testing.T, f *Fake) *httptest.Server {
	api := f.Client()
	v := slacksig.Verifier{Secret: []byte(f.SigningSecret())}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", func(w http.ResponseWriter, r *http.Request) {
		cmd, err := slack.SlashCommandParse(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := api.OpenViewContext(r.Context(), cmd.TriggerID, modal("Access")); err != nil {
			t.Errorf("views.open: %v", err)
		}
		if _, _, err := api.PostMessageContext(r.Context(), "", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral),
			slack.MsgOptionText("got "+cmd.Text, false)); err != nil {
			t.Errorf("response_url: %v", err)
		}
	})
	mux.HandleFunc("POST /slack/interactions", func(w http.ResponseWriter, r *http.Request) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal([]byte(r.FormValue("payload")), &cb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, _, err := api.PostMessageContext(r.Context(), "", slack.MsgOptionReplaceOriginal(cb.ResponseURL),
			slack.MsgOptionText("approved by "+cb.User.ID, false)); err != nil {
			t.Errorf("replace_original: %v", err)
		}
	})
	srv := httptest.NewServer(v.Middleware(slog.New(slog.DiscardHandler), mux))
	t.Cleanup(srv.Close)
	return srv
}

func TestSignedSlashCommand(t *testing.T) {
	f, _ := setup(t)
	srv := app(t, f)
	req, sent := f.SlashCommand(t, srv.URL+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: "prod-ssm 30m", UserID: "U0ALICE001", UserName: "alice", ChannelID: "C0OPS00001",
	})
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if views := f.Views(); len(views) != 1 || views[0].User != "U0ALICE001" || views[0].TriggerID != sent.TriggerID {
		t.Errorf("views = %+v", views)
	}
	posts := f.Calls("response_url")
	if len(posts) != 1 || posts[0].Text != "got prod-ssm 30m" || !strings.HasPrefix(sent.ResponseURL, f.URL()) {
		t.Errorf("response_url posts = %+v", posts)
	}
}

func TestSignedInteractionReplacesCard(t *testing.T) {
	f, api := setup(t)
	srv := app(t, f)
	ch, ts, err := api.PostMessageContext(t.Context(), "C0OPS00001", slack.MsgOptionText("approve?", false))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := f.Interaction(t, srv.URL+"/slack/interactions", slack.InteractionCallback{
		Type:      slack.InteractionTypeBlockActions,
		User:      slack.User{ID: "U0BOB00001"},
		Container: slack.Container{Type: "message", ChannelID: ch, MessageTs: ts},
	})
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if m, _ := f.Message(ch, ts); m.Text != "approved by U0BOB00001" {
		t.Errorf("card = %+v", m)
	}
}

func TestTamperedRequestRejected(t *testing.T) {
	f, _ := setup(t)
	srv := app(t, f)
	req, _ := f.SlashCommand(t, srv.URL+"/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U0ALICE001"})
	body, _ := io.ReadAll(req.Body)
	tampered := strings.Replace(string(body), "help", "prod-admin", 1)
	req.Body = io.NopCloser(strings.NewReader(tampered))
	req.ContentLength = int64(len(tampered))
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || len(f.Calls("")) != 0 {
		t.Errorf("tampered request: status %d, calls %d", res.StatusCode, len(f.Calls("")))
	}
}
