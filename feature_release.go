package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/handlers/lambdaevent"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/releaseui"
	"github.com/tokken/tokken/policies"
)

// registerRelease wires release approvals (docs/releases.md): /release,
// the Approve / Reject buttons and the reject modal at ingress; on the worker,
// the release service, its jobs and the SNS handler of CodePipeline's
// approval notifications. The pipelines are pipelines.yaml in the policy
// directory; without it (or with no entries) the feature is off. Where
// the worker cannot run it (no Slack bot token, no AWS region) it says so
// in the log and approval notifications are dropped with that reason.
func registerRelease(a *app) error {
	log := a.log.With("feature", "release")
	pipes, err := policies.LoadPipelines(a.cfg.PolicyDir)
	if err != nil {
		return &configError{fmt.Errorf("TOKKEN_POLICY_DIR %s: %w", a.cfg.PolicyDir, err)}
	}
	if len(pipes.Entries) == 0 {
		log.Info("release approvals are off: " + policies.PipelinesFile + " names no pipeline")
		a.router.HandleCommand("/release", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
			return &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: "Releases are off in this tokken: " + policies.PipelinesFile + " names no pipeline."}, nil
		})
		return nil
	}
	var views releaseui.ViewOpener
	if a.slack != nil {
		views = a.slack
	}
	h, err := releaseui.New(a.queue, views, a.log)
	if err != nil {
		return fmt.Errorf("release feature: %w", err)
	}
	a.router.HandleInteraction(releaseui.Namespace, h.Interaction)
	if !a.cfg.Role.RunsJobs() {
		a.router.HandleCommand("/release", h.Command)
		return nil
	}
	svc, err := startReleaseService(a, pipes)
	var unavailable *unavailableError
	if errors.As(err, &unavailable) {
		log.Error("release approvals are unavailable; approve in the CodePipeline console", "err", err)
		reason := err.Error()
		a.releaseSNS = func(ctx context.Context, msg events.SNSEntity) error {
			log.ErrorContext(ctx, "approval notification dropped: release approvals are unavailable", "message_id", msg.MessageID, "reason", reason)
			return nil
		}
		a.router.HandleCommand("/release", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
			return &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: "Releases are unavailable in this tokken: " + mrkdwn.Escape(reason)}, nil
		})
		return nil
	}
	if err != nil {
		return fmt.Errorf("release feature: %w", err)
	}
	svc.Register(a.jobs)
	a.releaseSNS = releaseui.SNS(svc, log)
	a.router.HandleCommand("/release", h.Command)
	return nil
}

// startReleaseService builds the release service.
func startReleaseService(a *app, pipes *release.Pipelines) (*release.Service, error) {
	if a.slack == nil {
		return nil, &unavailableError{reason: "SLACK_BOT_TOKEN is not set: approval cards cannot be posted"}
	}
	awsCfg, err := a.featureAWS(context.Background(), "CodePipeline is needed to decide approvals")
	if err != nil {
		return nil, err
	}
	notifier, err := releaseui.NewNotifier(a.slack)
	if err != nil {
		return nil, err
	}
	log := a.log.With("feature", "release")
	return release.NewService(release.Deps{
		Store:        a.store,
		Pipelines:    pipes,
		CodePipeline: newCodePipeline(awsCfg),
		Notifier:     notifier,
		Authorizer:   directoryAuthorizer{set: a.policies, dir: a.directory, log: log},
		Timers:       a.timers,
		Auditor:      a.audit,
		Log:          a.log,
	})
}

// routeSNS is the worker's one SNS handler: CodePipeline approval
// notifications go to release approvals, everything else to alerts
// (CloudWatch alarms), so one topic may carry both.
func (a *app) routeSNS() lambdaevent.SNSHandler {
	alerts, rel := a.sns, a.releaseSNS
	return func(ctx context.Context, msg events.SNSEntity) error {
		if rel != nil && releaseui.IsApproval(msg) {
			return rel(ctx, msg)
		}
		if alerts == nil {
			return fmt.Errorf("no handler for this SNS message from %s (release approvals take only CodePipeline approval notifications)", msg.TopicArn)
		}
		return alerts(ctx, msg)
	}
}
