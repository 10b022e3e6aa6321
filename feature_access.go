package main

import (
	"context"
	"strings"

	"github.com/slack-go/slack"
)

// registerAccess wires the /access command. This is the placeholder the
// access feature (bot/access) replaces: it answers `/access help` and
// explains that requests are not available yet, so a fresh deployment
// answers instead of failing. Swap this file's body for the real wiring.
func registerAccess(a *app) {
	a.router.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
		switch strings.ToLower(strings.TrimSpace(cmd.Text)) {
		case "", "help":
			return &slack.Msg{Text: accessHelp}, nil
		}
		return &slack.Msg{Text: "Access requests are not enabled in this build yet. Try `/access help`."}, nil
	})
}

// accessHelp is mrkdwn: '<' and '>' are escaped, or Slack reads them as
// links.
const accessHelp = "*/access* — time-boxed AWS access, approved in Slack.\n" +
	"• `/access &lt;profile&gt; &lt;duration&gt; [instance…] &lt;reason&gt;` — request access, e.g. `/access prod-ssm 30m i-0abc123def4567890 investigating 5xx`\n" +
	"• `/access` — open the request form\n" +
	"• `/access list` — your pending and active requests\n" +
	"• `/access revoke &lt;request-id&gt;` — end a grant early\n" +
	"• `/access help` — this help"
