package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/alertin"
	"github.com/tokken/tokken/handlers/alertui"
	"github.com/tokken/tokken/handlers/alertview"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/localqueue"
	"github.com/tokken/tokken/infra/mackerel"
	"github.com/tokken/tokken/policies"
)

// registerAlerts wires alerts: the Mackerel webhook (when its Basic auth
// credentials are set), CloudWatch alarms from SNS and EventBridge, the
// lifecycle's jobs and sweep, the /alerts command and the alert buttons.
// Other features raise tokken's own alerts with alert.Report(ctx, a.queue,
// alert.Operational(…)). A configuration mistake disables the feature
// with an error log naming the variable; the rest of tokken runs.
func registerAlerts(a *app) {
	log := a.log.With("feature", "alerts")
	cfg, err := config.LoadAlerts(os.Getenv, ".env")
	if err != nil {
		log.Error("alerts are disabled: invalid configuration", "err", err)
		return
	}
	routes, err := policies.LoadRoutes(a.cfg.PolicyDir)
	if err != nil {
		log.Error("alert routes not loaded: every alert goes to TOKKEN_ALERT_CHANNEL", "err", err)
		routes = nil
	}
	view := alertview.Options{Location: cfg.Location}
	var notifier alert.Notifier = noSlack{}
	if a.slack != nil {
		notifier = alertui.NewPoster(a.slack, alertui.NewPacer(0, nil, nil), view, nil)
	}
	svc, err := alert.NewService(alert.Options{
		Store: a.store, Queue: a.queue, Notifier: notifier, Routes: routes, Timers: a.timers,
		DefaultChannel: cfg.Channel, OpsChannel: cfg.OpsChannel, Log: log,
	})
	if err != nil {
		log.Error("alerts are disabled", "err", err)
		return
	}
	svc.Register(a.jobs)
	a.sweepers = append(a.sweepers, svc.Sweep)
	if a.local != nil {
		a.sweepers = append(a.sweepers, func(ctx context.Context) error { return reportDeadLetters(ctx, a.store, a.queue, svc) })
	}

	if cfg.WebhookEnabled() {
		wh, err := alertui.NewWebhook(cfg.WebhookUser, cfg.WebhookPassword.Reveal(), svc, log)
		if err != nil {
			log.Error("Mackerel webhook disabled", "err", err)
		} else {
			a.mackerel = wh
		}
	} else {
		log.Info("Mackerel webhook disabled: set MACKEREL_WEBHOOK_USER and MACKEREL_WEBHOOK_PASSWORD to enable it")
	}
	a.sns = alertui.SNS(svc, log)
	a.handleEventBridge("aws.cloudwatch", alertin.DetailTypeAlarmStateChange, alertui.EventBridge(svc, log))

	if a.slack == nil {
		log.Warn("/alerts and alert buttons are disabled: SLACK_BOT_TOKEN is not set")
		return
	}
	deps := alertui.Deps{Service: svc, Slack: a.slack, View: view, Log: log}
	if a.policies != nil {
		// The access UI's directory resolves the Slack user groups the
		// policies name, so rules on slack_usergroups hold for alerts too.
		deps.Authorizer = a.policies
		deps.Directory = accessui.NewDirectory(a.slack, a.policies.SlackUserGroups(), log)
	} else {
		log.Error("no policy set is loaded: every alert action is refused")
		deps.Authorizer = refuseAll{reason: "the policies failed to load; see tokken's log"}
		deps.Directory = alertui.SlackDirectory{Users: a.slack}
	}
	if cfg.MackerelAPIKey != "" {
		c, err := mackerel.New(cfg.MackerelAPIURL, cfg.MackerelAPIKey.Reveal(), nil)
		if err != nil {
			log.Error("Mackerel API disabled", "err", err)
		} else {
			deps.Closer, deps.Downtimer = c, c
		}
	}
	ui, err := alertui.New(deps)
	if err != nil {
		log.Error("/alerts is disabled", "err", err)
		return
	}
	ui.Register(a.router)
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

// refuseAll is the Authorizer when the policies cannot be loaded: nobody
// may act, and the reason says why.
type refuseAll struct{ reason string }

func (r refuseAll) Authorize(context.Context, bot.AuthzQuery) (bot.Decision, error) {
	return bot.Decision{Allow: false, Reasons: []string{r.reason}}, nil
}

// Operational alert checks run by the sweep.
const checkDeadLetters = "dlq_not_empty"

// reportDeadLetters raises tokken's "DLQ not empty" alert while the local
// queue holds dead-lettered jobs, and closes it once they are gone. (On
// Lambda the SQS dead-letter queue has a CloudWatch alarm instead.)
func reportDeadLetters(ctx context.Context, store bot.Store, q bot.Queue, svc *alert.Service) error {
	dead, err := store.List(ctx, localqueue.KindDeadLetter, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("count dead letters: %w", err)
	}
	key := "tokken:" + checkDeadLetters + ":local"
	rec, err := svc.Get(ctx, key)
	open := err == nil && rec.Alert.Open
	if err != nil && !errors.Is(err, bot.ErrNotFound) {
		return err
	}
	switch {
	case len(dead) > 0 && !open:
		msg := fmt.Sprintf("%d job(s) failed for good and wait in the dead-letter list (store kind %q)", len(dead), localqueue.KindDeadLetter)
		return alert.Report(ctx, q, alert.Operational(checkDeadLetters, "local", alert.StatusCritical, msg, time.Now()))
	case len(dead) == 0 && open:
		return alert.Report(ctx, q, alert.Operational(checkDeadLetters, "local", alert.StatusOK, "the dead-letter list is empty", time.Now()))
	}
	return nil
}
