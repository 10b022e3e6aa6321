package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/infra/config"
)

// auditCLI is `tokken audit`: it prints the audit events of the last
// --since (default 24h), optionally of one --request, oldest first, one
// JSON object per line, from the configured store.
func auditCLI(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("tokken audit", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	since := fs.Duration("since", 24*time.Hour, "how far back to print, e.g. 1h, 24h, 168h")
	request := fs.String("request", "", "only events about this request, operation or alert id (e.g. r-7k3q9x0m2c4d)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: tokken audit [--since 24h] [--request r-…]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "tokken audit: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *since <= 0 {
		fmt.Fprintln(e.stderr, "tokken audit: --since must be a positive duration such as 24h")
		return exitUsage
	}
	if strings.HasPrefix(*request, "r-") && !access.ValidRequestID(*request) {
		fmt.Fprintf(e.stderr, "tokken audit: %q is not a request id (they look like r-7k3q9x0m2c4d)\n", *request)
		return exitUsage
	}
	cfg, code := storeConfig(e)
	if code != exitOK {
		return code
	}
	a := &app{cfg: cfg, log: newLogger(cfg, io.Discard)}
	store, err := a.openStore(ctx)
	if err != nil {
		fmt.Fprintln(e.stderr, "tokken audit:", err)
		if cfg.Store.Kind == config.StoreBolt {
			fmt.Fprintln(e.stderr, "  (the embedded store admits one process: stop `tokken serve` first, or read a DynamoDB store)")
		}
		return exitFailed
	}
	defer store.Close()
	events, err := auditlog.Read(ctx, store, auditlog.Query{Since: time.Now().Add(-*since), Subject: *request})
	if err != nil {
		fmt.Fprintln(e.stderr, "tokken audit:", err)
		return exitFailed
	}
	enc := json.NewEncoder(e.stdout)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			fmt.Fprintln(e.stderr, "tokken audit:", err)
			return exitFailed
		}
	}
	return exitOK
}

// storeConfig reads the configuration a store reader needs: problems with
// Slack credentials, which reading the audit trail does not use, are
// ignored; any other is reported as loadConfig does.
func storeConfig(e env) (config.Config, int) {
	cfg, err := config.Load(e.getenv, e.dotenv)
	if err == nil {
		return cfg, exitOK
	}
	var other []error
	for _, err := range unjoin(err) {
		var fe *config.FieldError
		if errors.As(err, &fe) && strings.HasPrefix(fe.Var, "SLACK_") {
			continue
		}
		other = append(other, err)
	}
	if len(other) == 0 {
		return cfg, exitOK
	}
	fmt.Fprintln(e.stderr, "tokken: invalid configuration:")
	for _, err := range other {
		fmt.Fprintln(e.stderr, "  "+err.Error())
	}
	return cfg, exitUsage
}

// unjoin lists the errors joined in err (err itself if it joins none).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
