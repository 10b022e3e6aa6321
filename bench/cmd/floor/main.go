// Command floor is the floor of tokken's ack benchmark: the least a Go
// Slack endpoint can do. It verifies each request's signature with
// handlers/slacksig (the verifier tokken uses) and answers an empty 200,
// nothing else: no parsing, no routing, no logging of good requests. CPU
// per request above this is what tokken's routing, parsing, store and
// logging cost.
//
// With -post it is the floor of a click that tells the clicker something:
// after verifying a request to /slack/interactions it posts one
// chat.postEphemeral (to bench/loadgen's channel and user, with slack-go's
// client as tokken does) to the Web API at SLACK_API_URL with
// SLACK_BOT_TOKEN, then answers 200. It still parses nothing.
//
// Usage: SLACK_SIGNING_SECRET=… floor [-addr 127.0.0.1:0] [-post]. Once listening
// it prints "listening HOST:PORT" on stdout; SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/handlers/slacksig"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	post := flag.Bool("post", false, "post an ephemeral to SLACK_API_URL for each click before answering")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var poster *slack.Client
	if *post {
		api, token := os.Getenv("SLACK_API_URL"), os.Getenv("SLACK_BOT_TOKEN")
		if api == "" || token == "" {
			fmt.Fprintln(os.Stderr, "floor: -post needs SLACK_API_URL and SLACK_BOT_TOKEN")
			os.Exit(2)
		}
		poster = slack.New(token, slack.OptionAPIURL(api), slack.OptionHTTPClient(&http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 10 * time.Second}))
	}
	if err := run(ctx, *addr, os.Getenv("SLACK_SIGNING_SECRET"), poster); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// handler verifies and answers 200; with a poster, a click first posts an
// ephemeral (a failed post answers 502).
func handler(secret string, log *slog.Logger, poster *slack.Client) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if poster != nil && r.URL.Path == "/slack/interactions" {
			if _, err := poster.PostEphemeralContext(r.Context(), loadgen.ChannelID, loadgen.UserID, slack.MsgOptionText(unknownAlert, false)); err != nil {
				http.Error(w, "post: "+err.Error(), http.StatusBadGateway)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	return slacksig.Verifier{Secret: []byte(secret)}.Middleware(log, ok)
}

// unknownAlert is what tokken tells the clicker of an alert it does not know.
const unknownAlert = ":warning: tokken no longer knows this alert (it may have expired); nothing was changed."

func run(ctx context.Context, addr, secret string, poster *slack.Client) error {
	if secret == "" {
		return errors.New("SLACK_SIGNING_SECRET is required")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv := &http.Server{Handler: handler(secret, log, poster), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
