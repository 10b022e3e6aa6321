package accessui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// blockAccount is the modal's AWS account select (identity-center profiles).
const blockAccount = "account"

// idcTargetLine shows approvers what an identity-center request reaches:
// the permission set on the account, through a group for the group form.
func idcTargetLine(g *access.IDCGrant) string {
	ps := g.PermissionSetName
	if ps == "" {
		ps = g.PermissionSet
	}
	line := fmt.Sprintf("*Identity Center* permission set `%s` on account `%s`", mrkdwn.Escape(ps), mrkdwn.Escape(g.Account))
	if g.Group != "" {
		line += fmt.Sprintf(", by membership of group `%s`", mrkdwn.Escape(g.Group))
	}
	return line
}

// idcPreexistingText says the requester had the access before tokken
// granted it, so tokken granted and will remove nothing.
func idcPreexistingText(r access.Request) string {
	what := "this assignment"
	if r.IDC.ByGroup() {
		what = "this group membership"
	}
	return fmt.Sprintf(":information_source: %s already has %s permanently (it existed before tokken looked): tokken granted nothing and will not remove it.",
		who(r.Requester), what)
}

// idcBound says what Identity Center cannot enforce: a portal session
// opened before the end lasts up to the permission set's session duration
// after it.
func idcBound(r access.Request, v view) string {
	g := r.IDC
	if g == nil || g.SessionDuration <= 0 {
		return ":warning: Identity Center cannot end portal sessions: one opened before the end keeps working until the permission set's session duration runs out."
	}
	line := fmt.Sprintf(":warning: Identity Center cannot end portal sessions: one opened before the end keeps working up to %s after it",
		access.FormatDuration(g.SessionDuration))
	if !r.Window.IsZero() {
		line += fmt.Sprintf(" (until %s at the latest)", v.when(r.Window.ExpiresAt.Add(g.SessionDuration)))
	}
	return line + "."
}

// idcStatusNote is what the card adds to r's status line for an
// identity-center grant: the pre-existing access, or the bound.
func idcStatusNote(r access.Request, v view) string {
	switch {
	case r.IDC == nil:
		return ""
	case r.IDC.Preexisting:
		return "\n" + idcPreexistingText(r)
	case r.IDC.Granted && (r.State == access.StateActive || r.State == access.StateEnding ||
		r.State == access.StateExpired || r.State == access.StateRevoked || r.State == access.StateRevokeFailed):
		return "\n" + idcBound(r, v)
	}
	return ""
}

// idcActiveTell is the requester's DM once an identity-center grant is
// active: the access portal link for the account and permission set (or
// that they had the access already), and the bound.
func idcActiveTell(r access.Request, v view) string {
	id, profile := "`"+r.ID+"`", mrkdwn.Escape(r.Profile)
	g := r.IDC
	if g.Preexisting {
		return fmt.Sprintf(":information_source: Your request %s for *%s*: you already have this access permanently (%s existed before tokken looked), "+
			"so tokken granted nothing and will remove nothing. The request stays open until %s.",
			id, profile, mrkdwn.Escape(g.Describe()), v.when(r.Window.ExpiresAt))
	}
	var b strings.Builder
	fmt.Fprintf(&b, ":white_check_mark: Your access %s to *%s* is active until %s: %s.\n", id, profile, v.when(r.Window.ExpiresAt), mrkdwn.Escape(g.Describe()))
	if g.PortalURL != "" {
		ps := g.PermissionSetName
		if ps == "" {
			ps = g.PermissionSet
		}
		fmt.Fprintf(&b, "*Console:* %s\n", mrkdwn.Link(g.PortalURL, "open account "+g.Account+" as "+ps+" in the AWS access portal"))
	} else {
		b.WriteString("*Console:* sign in to your AWS access portal and choose the account and permission set above.\n")
	}
	b.WriteString("*CLI:* `aws sso login`, then use a profile with this account and permission set (`aws configure sso`).\n")
	b.WriteString(idcBound(r, v))
	return b.String()
}

// accountBlock is the modal's AWS account select: every account the
// identity-center profiles among choices offer, labelled with the
// profiles that offer it.
func accountBlock(choices []Choice) slack.Block {
	var accounts []string
	offered := map[string][]string{}
	for _, c := range choices {
		if c.Profile.Kind != access.KindIdentityCenter {
			continue
		}
		for _, a := range c.Profile.IDC.Accounts {
			if !slices.Contains(accounts, a) {
				accounts = append(accounts, a)
			}
			offered[a] = append(offered[a], c.Profile.Name)
		}
	}
	opts := make([]*slack.OptionBlockObject, 0, len(accounts))
	for _, a := range accounts {
		opts = append(opts, option(a, a+" ("+strings.Join(offered[a], ", ")+")"))
	}
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose an account"), actionID(blockAccount), opts...)
	b := slack.NewInputBlock(blockAccount, plain("AWS account"), plain("For identity-center profiles with several accounts."), sel)
	b.Optional = true
	return b
}

// checkAccount checks the account select against the chosen profile.
func checkAccount(f requestForm, p access.Profile, errs map[string]string) {
	switch {
	case errs[blockAccount] != "":
	case p.Kind != access.KindIdentityCenter && f.Account != "":
		errs[blockAccount] = p.Name + " is not an identity-center profile: clear this field."
	case p.Kind != access.KindIdentityCenter:
	case f.Account == "" && len(p.IDC.Accounts) > 1:
		errs[blockAccount] = "Pick the account: " + p.Name + " offers " + strings.Join(p.IDC.Accounts, ", ") + "."
	case f.Account != "" && !slices.Contains(p.IDC.Accounts, f.Account):
		errs[blockAccount] = p.Name + " does not offer account " + f.Account + " (it offers " + strings.Join(p.IDC.Accounts, ", ") + ")."
	}
}
