// Command tokken is a ChatOps bot for privileged access and operations:
// time-boxed AWS access approved in Slack, Windows domain join/leave by EC2
// tag, and Mackerel-style alerts. The same binary runs locally
// (`tokken serve`) and on AWS Lambda (when AWS_LAMBDA_RUNTIME_API is set).
//
// Run `tokken --help` for the subcommands and configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tokken/tokken/infra/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2 // bad arguments or configuration
)

// env is the process environment run works in; tests substitute it.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	dotenv         string // path of the .env file read ("" to skip)
	// ready, if set, is called with the HTTP address once `serve` listens.
	ready func(addr string)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, dotenv: ".env"})
	stop()
	os.Exit(code)
}

// run executes one tokken command and returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	if e.getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return runLambda(ctx, e)
	}
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "tokken: no command given (try 'tokken serve').\nRun 'tokken help' for the commands and configuration.")
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		if len(rest) != 0 {
			fmt.Fprintln(e.stderr, "tokken serve takes no arguments (configure it with environment variables; see tokken --help)")
			return exitUsage
		}
		return serve(ctx, e)
	case "invoke":
		if len(rest) != 1 {
			fmt.Fprintln(e.stderr, "usage: tokken invoke EVENT.json   (\"-\" reads the event from stdin)")
			return exitUsage
		}
		return invoke(ctx, e, rest[0])
	case "policy":
		return policyCLI(ctx, rest, e)
	case "audit":
		return auditCLI(ctx, rest, e)
	case "version":
		printVersion(e.stdout)
		return exitOK
	case "help", "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	default:
		// The error and one hint, not the whole help: the error must stay
		// on screen.
		fmt.Fprintf(e.stderr, "tokken: unknown command %q\nRun 'tokken help' for the commands and configuration.\n", cmd)
		return exitUsage
	}
}

// loadConfig reads the configuration, reporting errors the way the CLI
// promises: one line per variable, exit code 2.
func loadConfig(e env) (config.Config, int) {
	cfg, err := config.Load(e.getenv, e.dotenv)
	if err != nil {
		fmt.Fprintln(e.stderr, "tokken: invalid configuration:")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(e.stderr, "  "+line)
		}
		return cfg, exitUsage
	}
	return cfg, exitOK
}

// startupError prints err and picks the exit code: configuration problems
// found while building the app (secrets, AWS region) are usage errors.
func startupError(e env, err error) int {
	fmt.Fprintln(e.stderr, "tokken:", err)
	var ce *configError
	if errors.As(err, &ce) {
		return exitUsage
	}
	return exitFailed
}

// startApp is how serve, invoke and Lambda all start tokken: the
// configuration, the JSON logger, the app graph (EMF metrics to
// metricsOut) and its background work. When tokken cannot start, the
// reason is on stderr and code is the exit code to return. waiting, when
// not nil, takes a Slack secret that still holds the template's
// placeholder instead of failing (Lambda waits for it: unconfigured.go);
// startApp then returns no app and exitOK once waiting returns.
func startApp(ctx context.Context, e env, metricsOut io.Writer, waiting func(config.Config, *slog.Logger, error)) (*app, int) {
	cfg, code := loadConfig(e)
	if code != exitOK {
		return nil, code
	}
	log := newLogger(cfg, e.stderr)
	a, err := buildApp(ctx, cfg, log, metricsTo(metricsOut))
	if waiting != nil && errors.Is(err, config.ErrSecretNotFilledIn) {
		waiting(cfg, log, err)
		return nil, exitOK
	}
	if err != nil {
		return nil, startupError(e, err)
	}
	a.start()
	return a, exitOK
}

func usage(w io.Writer) {
	fmt.Fprint(w, `tokken: privileged access and operations from Slack.

Usage:
  tokken serve            run locally: HTTP on TOKKEN_ADDR, embedded store, in-process
                          queue and timers; Socket Mode too when SLACK_APP_TOKEN is set
  tokken invoke EVENT     feed one raw Lambda event (file, or "-" for stdin) through the
                          dispatcher Lambda uses and print the result: Function URL / HTTP API
                          request, SQS batch, SNS, EventBridge, or a tokken job
  tokken audit --since 24h [--request r-…]
                          print the audit trail from the store as JSON lines
  tokken policy check     validate the policy directory offline (file:line for each problem)
  tokken policy explain --user U… --action request --profile P --duration 30m
                          print a decision and the rules that made it
  tokken version          print the version and build information
  tokken help             print this help

On AWS Lambda (AWS_LAMBDA_RUNTIME_API set) tokken serves Lambda invocations instead;
TOKKEN_ROLE selects the ingress or worker half.

Configuration (environment; a .env file in the working directory is read too, the
environment wins):
`)
	for _, v := range config.Vars() {
		def := ""
		if v.Default != "" {
			def = " (default " + v.Default + ")"
		}
		fmt.Fprintf(w, "  %s\n      %s%s\n", v.Name, v.Help, def)
	}
	fmt.Fprint(w, `
Exit codes: 0 ok, 1 failure, 2 bad arguments or configuration.
`)
}
