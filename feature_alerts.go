package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/alertui"
	"github.com/tokken/tokken/infra/mackerel"
	"github.com/tokken/tokken/infra/metrics"
	"github.com/tokken/tokken/policies"
)

// registerAlerts wires alerts: the Mackerel webhook (when its Basic auth
// credentials are set), CloudWatch alarms from SNS and EventBridge, the
// lifecycle's jobs and sweep, the /alerts command and the alert buttons.
// Other features raise tokken's own alerts with alert.Report(ctx, a.queue,
// alert.Operational(…)). Alerts in and messages posted are counted into
// the app's metrics. Without a bot token (a Lambda ingress) alerts are
// still received and stored, and /alerts is not registered; a broken
// routes.yaml fails start-up.
func registerAlerts(a *app) error {
	log := a.log.With("feature", "alerts")
	cfg := a.cfg.Alerts
	routes, err := policies.LoadRoutes(a.cfg.PolicyDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no alert routes (" + policies.RoutesFile + "): every alert goes to TOKKEN_ALERT_CHANNEL")
		routes = nil
	case err != nil:
		return &configError{fmt.Errorf("TOKKEN_POLICY_DIR %s: %w", a.cfg.PolicyDir, err)}
	}
	view := alertui.Options{Location: a.cfg.Location}
	var notifier alert.Notifier = noSlack{}
	if a.slack != nil {
		notifier = countingNotifier{next: alertui.NewPoster(a.slack, alertui.NewPacer(0, nil), view, nil), rec: a.metrics}
	}
	svc, err := alert.NewService(alert.Options{
		Store: a.store, Queue: a.queue, Notifier: notifier, Routes: routes, Timers: a.timers,
		DefaultChannel: cfg.Channel, OpsChannel: a.cfg.OpsChannel, Log: log,
	})
	if err != nil {
		return fmt.Errorf("alert service: %w", err)
	}
	svc.Register(a.jobs)
	a.sweepers = append(a.sweepers, svc.Sweep)
	if a.cfg.Role.RunsJobs() {
		subject := "local"
		if a.local == nil {
			subject = "sqs"
		}
		a.sweepers = append(a.sweepers, func(ctx context.Context) error { return reportDeadLetters(ctx, a.store, a.queue, svc, subject) })
	}

	in := countingIngester{next: svc, rec: a.metrics}
	if cfg.WebhookEnabled() {
		wh, err := alertui.NewWebhook(cfg.WebhookUser, cfg.WebhookPassword.Reveal(), in, log)
		if err != nil {
			return fmt.Errorf("mackerel webhook: %w", err)
		}
		a.mackerel = wh
	} else {
		log.Info("Mackerel webhook disabled: set MACKEREL_WEBHOOK_USER and MACKEREL_WEBHOOK_PASSWORD to enable it")
	}
	a.sns = alertui.SNS(in, log)
	a.handleEventBridge("aws.cloudwatch", alertui.DetailTypeAlarmStateChange, alertui.EventBridge(in, log))

	if a.slack == nil {
		log.Warn("/alerts and alert buttons are disabled: SLACK_BOT_TOKEN is not set")
		return nil
	}
	// The shared directory resolves the Slack user groups the policies
	// name, so rules on slack_usergroups hold for alerts as for access.
	deps := alertui.Deps{Service: svc, Slack: a.slack, View: view, Log: log, Authorizer: a.policies, Directory: a.directory}
	if a.accessUI != nil {
		deps.Access = accessModal{a.accessUI}
	}
	if cfg.MackerelAPIKey != "" {
		c, err := mackerel.New(cfg.MackerelAPIURL, cfg.MackerelAPIKey.Reveal(), nil)
		if err != nil {
			return &configError{fmt.Errorf("MACKEREL_API_URL: %w", err)}
		}
		deps.Closer, deps.Downtimer = c, c
	}
	ui, err := alertui.New(deps)
	if err != nil {
		return fmt.Errorf("/alerts: %w", err)
	}
	ui.Register(a.router)
	return nil
}

// accessModal lets "Request access to this host" open the access request
// modal pre-filled with the alert's instance and a reason quoting it.
type accessModal struct{ f *accessui.Feature }

func (m accessModal) Open(ctx context.Context, triggerID, userID string, p alertui.AccessPrefill) error {
	return m.f.OpenPrefilled(ctx, triggerID, userID, accessui.Prefill{InstanceID: p.InstanceID, HostName: p.HostName, Reason: p.Reason})
}

// countingIngester counts every alert or notice received (metrics.AlertsIn)
// on its way into the alert service: the Mackerel webhook, SNS and
// EventBridge all ingest through it. A failed ingest is not counted: the
// sender retries, and the retry counts.
type countingIngester struct {
	next alertui.Ingester
	rec  *metrics.Recorder
}

func (c countingIngester) Ingest(ctx context.Context, via, id string, ev alert.Event) (string, error) {
	key, err := c.next.Ingest(ctx, via, id, ev)
	if err == nil {
		c.rec.Count(ctx, metrics.AlertsIn, 1)
	}
	return key, err
}

// countingNotifier counts every alert message posted or updated in Slack
// (metrics.AlertsPosted), thread replies and storm summaries included;
// failed calls are retried by the job and counted when they succeed.
type countingNotifier struct {
	next alert.Notifier
	rec  *metrics.Recorder
}

var _ alert.Notifier = countingNotifier{}

// FitLines passes the wrapped Notifier's reply bound on (alert.LineFitter);
// without one, a reply takes every line offered.
func (c countingNotifier) FitLines(lines []alert.Line) int {
	if f, ok := c.next.(alert.LineFitter); ok {
		return f.FitLines(lines)
	}
	return len(lines)
}

func (c countingNotifier) count(ctx context.Context, err error) {
	if err == nil {
		c.rec.Count(ctx, metrics.AlertsPosted, 1)
	}
}

func (c countingNotifier) PostAlert(ctx context.Context, channel string, r alert.Record) (string, error) {
	ts, err := c.next.PostAlert(ctx, channel, r)
	c.count(ctx, err)
	return ts, err
}

func (c countingNotifier) UpdateAlert(ctx context.Context, channel, ts string, r alert.Record) error {
	err := c.next.UpdateAlert(ctx, channel, ts, r)
	c.count(ctx, err)
	return err
}

func (c countingNotifier) PostThread(ctx context.Context, channel, ts string, lines []alert.Line) error {
	err := c.next.PostThread(ctx, channel, ts, lines)
	c.count(ctx, err)
	return err
}

func (c countingNotifier) PostNotice(ctx context.Context, channel string, n alert.Notice) (string, error) {
	ts, err := c.next.PostNotice(ctx, channel, n)
	c.count(ctx, err)
	return ts, err
}

func (c countingNotifier) PostStorm(ctx context.Context, channel string, st alert.Storm) (string, error) {
	ts, err := c.next.PostStorm(ctx, channel, st)
	c.count(ctx, err)
	return ts, err
}

func (c countingNotifier) UpdateStorm(ctx context.Context, channel, ts string, st alert.Storm) error {
	err := c.next.UpdateStorm(ctx, channel, ts, st)
	c.count(ctx, err)
	return err
}

// noSlack is the Notifier of a process without a bot token (a Lambda
// ingress): it never runs alert jobs, and if it did they would fail and
// be retried by a worker that has one.
type noSlack struct{}

var errNoSlack = errors.New("SLACK_BOT_TOKEN is not set: alerts cannot be posted")

func (noSlack) PostAlert(context.Context, string, alert.Record) (string, error) {
	return "", errNoSlack
}
func (noSlack) UpdateAlert(context.Context, string, string, alert.Record) error { return errNoSlack }
func (noSlack) PostThread(context.Context, string, string, []alert.Line) error  { return errNoSlack }
func (noSlack) PostNotice(context.Context, string, alert.Notice) (string, error) {
	return "", errNoSlack
}
func (noSlack) PostStorm(context.Context, string, alert.Storm) (string, error) { return "", errNoSlack }
func (noSlack) UpdateStorm(context.Context, string, string, alert.Storm) error { return errNoSlack }
