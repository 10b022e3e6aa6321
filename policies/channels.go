package policies

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
)

// ChannelUse is a Slack channel tokken is configured to post to, and what
// for ("approver channel of profile prod-ssm").
type ChannelUse struct {
	Channel string
	Use     string
}

// ChannelChecker says, without posting, why the bot cannot post to
// channel: Slack's error code a post would meet ("not_in_channel",
// "channel_not_found", "is_archived"), or "" when it can. err is a failure
// to find out. (*slackapi.Client).PostProblem is one.
type ChannelChecker func(ctx context.Context, channel string) (code string, err error)

// CheckOptions extend `tokken policy check` beyond the files.
type CheckOptions struct {
	// Channels, when set, is asked about every channel the directory names
	// (approver channels, routes.yaml) and every channel of Extra; each one
	// the bot cannot post to is printed as a warning. Warnings do not
	// change the exit code.
	Channels ChannelChecker
	// Extra are channels configured outside the directory (audit, ops,
	// alert and domain channels).
	Extra []ChannelUse
	// Roles, when set, makes `check --aws` available: it is asked about
	// every profile's role.
	Roles RoleChecker
	// PermissionSets is asked, by `check --aws`, about the permission set
	// of every identity-center profile; without it those profiles are
	// reported as not checkable.
	PermissionSets PermissionSetChecker
}

// Channels lists the channels dir names: each profile's approver channel,
// each pipeline's approver channel (pipelines.yaml) and every channel of
// routes.yaml, in file order. dir must load.
func Channels(dir string) ([]ChannelUse, error) {
	set, err := Load(dir)
	if err != nil {
		return nil, err
	}
	var out []ChannelUse
	for _, p := range set.Profiles() {
		if p.ApproverChannel != "" {
			out = append(out, ChannelUse{p.ApproverChannel, "approver channel of profile " + p.Name + " (profiles.yaml)"})
		}
	}
	out = append(out, pipelineChannels(dir)...)
	routes, err := LoadRoutes(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out, nil
	case err != nil:
		return nil, err
	}
	if routes == nil {
		return out, nil
	}
	for _, r := range routes.Rules {
		if r.Channel != "" {
			out = append(out, ChannelUse{r.Channel, fmt.Sprintf("alert route %q (%s:%d)", r.Name, RoutesFile, r.Line)})
		}
	}
	if routes.Default.Channel != "" {
		out = append(out, ChannelUse{routes.Default.Channel, "default alert channel (" + RoutesFile + ")"})
	}
	for _, env := range slices.Sorted(maps.Keys(routes.EnvChannels)) {
		out = append(out, ChannelUse{routes.EnvChannels[env], "alert channel of environment " + env + " (" + RoutesFile + ")"})
	}
	return out, nil
}

// CheckChannels asks check about each channel of uses once and returns a
// warning per channel the bot cannot post to, naming every use of it and
// what to do. A failure that would repeat for every channel (the token's
// scopes or validity) is reported once and ends the check.
func CheckChannels(ctx context.Context, uses []ChannelUse, check ChannelChecker) []string {
	var order []string
	byChannel := map[string][]string{}
	for _, u := range uses {
		if u.Channel == "" {
			continue
		}
		if _, ok := byChannel[u.Channel]; !ok {
			order = append(order, u.Channel)
		}
		byChannel[u.Channel] = append(byChannel[u.Channel], u.Use)
	}
	var warnings []string
	for _, ch := range order {
		what := ch + ", the " + strings.Join(byChannel[ch], " and the ")
		code, err := check(ctx, ch)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "missing_scope") {
				return append(warnings, "warning: cannot check whether tokken can post to its channels: the bot token lacks "+
					"channels:read and groups:read (add them to the Slack app, see docs/slack-app.md)")
			}
			if strings.Contains(msg, "invalid_auth") || strings.Contains(msg, "not_authed") || strings.Contains(msg, "token_revoked") {
				return append(warnings, "warning: cannot check channels: Slack refused SLACK_BOT_TOKEN ("+msg+")")
			}
			warnings = append(warnings, fmt.Sprintf("warning: could not check channel %s: %v", what, err))
			continue
		}
		if code == "" {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("warning: tokken cannot post to channel %s: %s", what, channelAdvice(code)))
	}
	return warnings
}

// channelAdvice explains a Slack code from ChannelChecker and what fixes it.
func channelAdvice(code string) string {
	switch code {
	case "not_in_channel":
		return "the bot is not a member (not_in_channel): invite it there with /invite @tokken"
	case "channel_not_found":
		return "no such channel, or a private one the bot is not in (channel_not_found): fix the id, or invite the bot"
	case "is_archived":
		return "the channel is archived (is_archived): unarchive it or name another channel"
	}
	return "Slack says " + code
}
