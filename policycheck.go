package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/policies"
)

// policyCLI runs `tokken policy`. With a bot token (SLACK_BOT_TOKEN, from
// the environment or .env), `check` also asks Slack, without posting,
// whether the bot can post to every channel tokken is configured to use.
func policyCLI(ctx context.Context, args []string, e env) int {
	// Only the Slack settings and channel ids are used here: whatever else
	// is wrong with the configuration is serve's to report.
	cfg, _ := config.Load(e.getenv, e.dotenv)
	opts := policies.CheckOptions{Roles: roleChecker(e), PermissionSets: permissionSetChecker(cfg.Access.IdentityCenter)}
	if cfg.SlackBotToken != "" {
		client := slackapi.New(string(cfg.SlackBotToken), slackapi.Options{
			APIURL: cfg.SlackAPIURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxAttempts: 2,
		})
		opts.Channels = client.PostProblem
		opts.Extra = []policies.ChannelUse{
			{Channel: cfg.Access.AuditChannel, Use: "audit channel (TOKKEN_AUDIT_CHANNEL)"},
			{Channel: cfg.OpsChannel, Use: "ops channel (TOKKEN_OPS_CHANNEL)"},
			{Channel: cfg.Alerts.Channel, Use: "alert channel (TOKKEN_ALERT_CHANNEL)"},
			{Channel: cfg.Domain.Channel, Use: "domain channel (TOKKEN_DOMAIN_CHANNEL)"},
		}
	}
	return policies.RunCLI(ctx, args, e.stdout, e.stderr, opts)
}
