package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/handlers/domainui"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// registerDomain wires Windows domain join/leave (/domain): the command,
// the Approve/Deny/Cancel buttons and the deny modal at ingress; the
// domainjoin service, its jobs and the EventBridge tag-change handler on
// the worker. Its settings are a.cfg.Domain, validated by config.Load.
// Where the worker cannot run operations (no AWS region, no Slack bot
// token) /domain answers with the reason instead of queueing work nobody
// would do; any other error fails start-up.
func registerDomain(a *app) error {
	log := a.log.With("feature", "domain")
	deps := domainui.Deps{Queue: a.queue, Tags: a.cfg.Domain.Tags, Log: a.log} // domainui adds "feature":"domain" itself
	if a.slack != nil {
		deps.Views = a.slack
	}
	h, err := domainui.New(deps)
	if err != nil {
		return fmt.Errorf("domain feature: %w", err)
	}
	if a.cfg.Role.RunsJobs() {
		err = startDomainService(a, log)
		var unavailable *unavailableError
		if errors.As(err, &unavailable) {
			log.Error("domain operations are unavailable", "err", err)
			reason := err.Error()
			a.router.HandleCommand("/domain", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
				return &slack.Msg{Text: "Domain operations are unavailable in this tokken: " + mrkdwn.Escape(reason)}, nil
			})
			return nil
		}
		if err != nil {
			return fmt.Errorf("domain feature: %w", err)
		}
		a.handleEventBridge(domainui.TagEventSource, domainui.TagEventDetailType, h.TagEvent)
	}
	a.router.HandleCommand("/domain", h.Command)
	a.router.HandleInteraction(domainui.Namespace, h.Interaction)
	return nil
}

// startDomainService builds the domainjoin service and registers its jobs.
func startDomainService(a *app, log *slog.Logger) error {
	if a.slack == nil {
		return &unavailableError{reason: "SLACK_BOT_TOKEN is not set: operation messages cannot be posted"}
	}
	awsCfg, err := a.featureAWS(context.Background(), "EC2 is needed to tag and reboot instances")
	if errors.As(err, new(*unavailableError)) {
		return &unavailableError{reason: "it tags and reboots EC2 instances, and " + msgNoAWS + "."}
	}
	if err != nil {
		return err
	}
	cfg := a.cfg.Domain
	nc := domainui.NotifierConfig{Channel: cfg.Channel, Log: log}
	if slices.Contains(a.jobs.Kinds(), alert.JobReport) { // registerAlerts ran
		nc.Raise = func(ctx context.Context, check, opID, summary string) error {
			return alert.Report(ctx, a.queue, alert.Operational(check, opID, alert.StatusCritical, summary, time.Now()))
		}
	} else {
		log.Warn("alerts are disabled: a timed-out or failed domain operation is announced in the domain channel only")
	}
	notifier, err := domainui.NewNotifier(a.slack, nc)
	if err != nil {
		return err
	}
	svc, err := domainjoin.NewService(domainjoin.Config{
		Tags: cfg.Tags, Timeout: cfg.Timeout, CheckEvery: cfg.CheckEvery, ApprovalTimeout: cfg.ApprovalTimeout, Log: log,
	}, domainjoin.Deps{
		Store:      a.store,
		Instances:  newEC2(awsCfg),
		Notifier:   notifier,
		Authorizer: directoryAuthorizer{set: a.policies, dir: a.directory, log: log},
		Timers:     a.timers,
		Auditor:    a.audit,
	})
	if err != nil {
		return err
	}
	svc.Register(a.jobs)
	if cfg.Channel == "" {
		log.Warn("TOKKEN_DOMAIN_CHANNEL is not set: operation messages go to the requester's DM, where approvers cannot see them")
	}
	return nil
}

// principalDirectory resolves a Slack user into the principal policies
// decide on (*slackdir.Directory: e-mail and Slack user groups).
type principalDirectory interface {
	Lookup(ctx context.Context, userID string) (bot.Principal, error)
}

// directoryAuthorizer is the policy set with principals completed from
// the shared directory: the /domain command and the buttons only know the
// user id, and groups.yaml may list people by e-mail or Slack user group,
// so the principal is looked up before the set decides. A failed lookup
// decides on the id alone: it can only deny more, never allow more.
type directoryAuthorizer struct {
	set bot.Authorizer
	dir principalDirectory
	log *slog.Logger
}

// Authorize completes q.Principal from the directory, then asks the set.
func (p directoryAuthorizer) Authorize(ctx context.Context, q bot.AuthzQuery) (bot.Decision, error) {
	if p.dir != nil && q.Principal.Email == "" && len(q.Principal.SlackGroups) == 0 {
		if u, err := p.dir.Lookup(ctx, q.Principal.ID); err == nil {
			q.Principal = u
		} else {
			p.log.WarnContext(ctx, "directory lookup failed; deciding on the user id alone", "user", q.Principal.ID, "err", err)
		}
	}
	return p.set.Authorize(ctx, q)
}
