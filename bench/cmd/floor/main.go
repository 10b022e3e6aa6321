// Command floor is the floor of tokken's ack benchmark: the least a Go
// Slack endpoint can do. It verifies each request's signature with
// handlers/slacksig (the verifier tokken uses) and answers an empty 200,
// nothing else: no parsing, no routing, no logging of good requests. CPU
// per request above this is what tokken's routing, parsing, store and
// logging cost.
//
// Usage: SLACK_SIGNING_SECRET=… floor [-addr 127.0.0.1:0]. Once listening
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

	"github.com/tokken/tokken/handlers/slacksig"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Getenv("SLACK_SIGNING_SECRET")); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// handler verifies and answers 200.
func handler(secret string, log *slog.Logger) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return slacksig.Verifier{Secret: []byte(secret)}.Middleware(log, ok)
}

func run(ctx context.Context, addr, secret string) error {
	if secret == "" {
		return errors.New("SLACK_SIGNING_SECRET is required")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv := &http.Server{Handler: handler(secret, log), ReadHeaderTimeout: 10 * time.Second}
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
