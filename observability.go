package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/logctx"
	"github.com/tokken/tokken/infra/metrics"
)

// MetricsNamespace is the CloudWatch namespace of tokken's EMF metrics; the
// alarms in template.yaml are written against it.
const MetricsNamespace = "tokken"

// appOption adjusts buildApp for the entry point calling it.
type appOption func(*appOptions)

type appOptions struct {
	// metricsOut receives the EMF lines (io.Discard when unset).
	metricsOut io.Writer
}

// metricsTo makes the app's metrics recorder write its EMF lines to w:
// stdout on Lambda (CloudWatch turns them into metrics) and under `serve`,
// stderr under `invoke`, whose stdout is the invocation's result.
func metricsTo(w io.Writer) appOption {
	return func(o *appOptions) { o.metricsOut = w }
}

// newRecorder returns the metrics recorder of a process running role: the
// "tokken" namespace, dimension Function = the role, the dimension the
// alarms in template.yaml select on.
func newRecorder(role config.Role, w io.Writer) (*metrics.Recorder, error) {
	if w == nil {
		w = io.Discard
	}
	rec := metrics.New(w, MetricsNamespace, map[string]string{"Function": string(role)})
	if err := rec.Err(); err != nil {
		return nil, &configError{err}
	}
	return rec, nil
}

// flushMetrics writes what was recorded since the last flush; a failure is
// logged, never fatal (metrics are best effort).
func (a *app) flushMetrics(ctx context.Context) {
	if err := a.metrics.Flush(); err != nil {
		a.log.WarnContext(ctx, "metrics flush", "err", err)
	}
}

// invokeLambda is the Lambda handler: one event through the dispatcher,
// then a metrics flush, before the runtime freezes the process.
func (a *app) invokeLambda(ctx context.Context, raw json.RawMessage) (any, error) {
	out, err := a.dispatcher.Invoke(ctx, raw)
	a.flushMetrics(ctx)
	return out, err
}

// slackRoute names the Slack route of path, whose acknowledgement time is
// recorded; the names are the Route dimension's only values.
func slackRoute(path string) (string, bool) {
	switch path {
	case "/slack/commands":
		return "commands", true
	case "/slack/interactions":
		return "interactions", true
	case "/slack/options":
		return "options", true
	case "/slack/events":
		return "events", true
	}
	return "", false
}

// measureAck records metrics.AckLatency, with dimension Route, for every
// request to a Slack route: the time until next has answered, which is when
// a Function URL response (and a buffered net/http one) reaches Slack. Other
// paths pass through unmeasured, so the dimension keeps four values.
func measureAck(rec *metrics.Recorder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, ok := slackRoute(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		next.ServeHTTP(w, r)
		rec.Duration(r.Context(), metrics.AckLatency, time.Since(start), metrics.Dim("Route", route))
	})
}

// newLogger returns the JSON logger every part of tokken writes to. Lines
// logged with a context carry its request id, Lambda request id and job
// ids (infra/logctx).
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	h := logctx.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.LogLevel}), logctx.Fields(router.RequestID)...)
	return slog.New(h).With("app", "tokken", "role", string(cfg.Role))
}
