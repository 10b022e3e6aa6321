// Command slackgo is the least a Go server built on slack-go does for the
// two requests of the ack benchmark (bench/cmd/ackbench), beside which
// tokken's CPU per request reads as what tokken itself adds: it verifies
// Slack's signature (tokken's handlers/slacksig), parses with slack-go
// (slack.SlashCommandParse, an InteractionCallback from the payload) and
// answers — the slash command with the help text tokken answers `/access
// help` with, the click with 200 and then, as the Bolt peer does, a
// chat.postEphemeral through slack-go. It records nothing, decides
// nothing, logs nothing and checks no team: a floor, not a Slack app.
//
// Environment: SLACK_SIGNING_SECRET (required), SLACK_BOT_TOKEN and
// SLACK_API_URL (the Web API the click posts to), PORT (default 0: any
// free port). Once listening it prints "listening 127.0.0.1:PORT".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/slacksig"
)

// unknownAlert is what tokken tells the clicker of an alert it does not know.
const unknownAlert = ":warning: tokken no longer knows this alert (it may have expired); nothing was changed."

func main() {
	secret := os.Getenv("SLACK_SIGNING_SECRET")
	if secret == "" {
		log.Fatal("slackgo: SLACK_SIGNING_SECRET is required")
	}
	s := server{
		verifier: slacksig.Verifier{Secret: []byte(secret)},
		api:      slack.New(os.Getenv("SLACK_BOT_TOKEN"), slack.OptionAPIURL(os.Getenv("SLACK_API_URL"))),
		help:     mrkdwn.Escape(access.Help),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", s.command)
	mux.HandleFunc("POST /slack/interactions", s.click)
	port := os.Getenv("PORT")
	if port == "" {
		port = "0"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatalf("slackgo: %v", err)
	}
	fmt.Println("listening", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

type server struct {
	verifier slacksig.Verifier
	api      *slack.Client
	help     string
}

// verified reads r's body and checks its signature, answering 401 when it
// fails; it leaves the body readable again for slack-go's parsers.
func (s server) verified(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = s.verifier.Verify(r.Header, body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}

func (s server) command(w http.ResponseWriter, r *http.Request) {
	if !s.verified(w, r) {
		return
	}
	if _, err := slack.SlashCommandParse(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: s.help})
}

func (s server) click(w http.ResponseWriter, r *http.Request) {
	if !s.verified(w, r) {
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(r.PostFormValue("payload")), &cb); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	go func() {
		if _, err := s.api.PostEphemeralContext(context.Background(), channel, cb.User.ID, slack.MsgOptionText(unknownAlert, false)); err != nil {
			log.Printf("slackgo: chat.postEphemeral: %v", err)
		}
	}()
}
