package accessui

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// helpFor is the answer to `/access help` for user: how requests work,
// then the profiles the policies let user request, with their
// descriptions. When the profiles cannot be worked out (the Slack lookup
// of the user failed), the help is still given, saying so.
func (f *Feature) helpFor(ctx context.Context, user string) string {
	choices, err := f.choices(ctx, user)
	if err != nil {
		f.log.WarnContext(ctx, "access help: cannot list the profiles the user may request", "user", user, "err", err)
		return f.help + "\n\n_The profiles you may request cannot be listed right now; `/access` opens a form with them._"
	}
	return f.help + "\n\n" + RenderProfileList(choices)
}

// RenderProfileList is mrkdwn listing choices: name, maximum duration,
// approvals needed, break-glass, and description, all escaped.
func RenderProfileList(choices []Choice) string {
	if len(choices) == 0 {
		return "*You may not request any profile yet.* An admin decides who may request what (policies/groups.yaml and the rules)."
	}
	var b strings.Builder
	b.WriteString("*Profiles you may request:*")
	for _, c := range choices {
		p := c.Profile
		var notes []string
		switch {
		case c.BreakGlassOnly:
			notes = append(notes, "break-glass only")
		case p.Approvals == 0:
			notes = append(notes, "no approval needed")
		default:
			notes = append(notes, fmt.Sprintf("%d approval(s)", p.Approvals))
		}
		notes = append(notes, "up to "+access.FormatDuration(p.MaxDuration))
		if p.Kind == access.KindIdentityCenter {
			notes = append(notes, mrkdwn.Escape("Identity Center "+p.IDC.PermissionSet+" on account "+strings.Join(p.IDC.Accounts, " or ")))
		}
		fmt.Fprintf(&b, "\n• `%s` (%s)", mrkdwn.Escape(p.Name), strings.Join(notes, ", "))
		if d := strings.TrimSpace(p.Description); d != "" {
			b.WriteString(": " + mrkdwn.Escape(d))
		}
	}
	return b.String()
}
