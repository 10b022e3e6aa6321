package accessui

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/slackapi"
)

// Attachment colours: the bar beside the approver message says at a glance
// where the request is.
const (
	ColorPending = "#ECB22E" // waiting for people
	ColorActive  = "#2EB67D" // access is live
	ColorEnded   = "#868686" // nothing more will happen
	ColorDenied  = "#E8912D" // refused or failed
	ColorDanger  = "#E01E5A" // REVOKE FAILED, break-glass announcements
)

// Texts that tests and people look for.
const (
	// RevokeFailedText leads a request whose revocation keeps failing.
	RevokeFailedText = "REVOKE FAILED"
	// NeedsReviewText marks a break-glass use nobody has reviewed yet.
	NeedsReviewText = "needs review"
	// NotPostedText marks a request whose approver message Slack refused.
	NotPostedText = "NOT POSTED"
)

// channelMention renders a channel id as a link to the channel.
func channelMention(id string) string {
	if id == "" {
		return "the approvers' channel"
	}
	return "<#" + mrkdwn.Escape(id) + ">"
}

// unpostedWhy says, in mrkdwn, why Slack refused the approver message of
// an unposted request and what fixes it.
func unpostedWhy(u *access.Unposted) (what, do string) {
	ch := channelMention(u.Channel)
	switch u.Code {
	case "not_in_channel":
		return "tokken is not a member of that channel", "ask someone in " + ch + " to invite the bot (`/invite @tokken`)"
	case "channel_not_found":
		return "the channel does not exist, or is private and tokken is not in it",
			"if it is private, invite the bot there (`/invite @tokken`); otherwise tell the tokken operators"
	case "is_archived":
		return "the channel is archived", "ask a Slack admin to unarchive " + ch + ", or tell the tokken operators"
	case "restricted_action":
		return "the workspace does not let tokken post there", "ask a Slack admin to allow the bot to post in " + ch + ", or tell the tokken operators"
	}
	return "Slack refused the post", "tell the tokken operators"
}

// unpostedText tells the requester that their request cannot be seen and
// what to do (mrkdwn).
func unpostedText(r access.Request) string {
	u := r.Unposted
	if u == nil {
		return fmt.Sprintf("Request `%s` for *%s* could not be posted for approvers.", r.ID, mrkdwn.Escape(r.Profile))
	}
	what, do := unpostedWhy(u)
	if !r.Message.IsZero() {
		return fmt.Sprintf("The approvers' message about your request `%s` for *%s* in %s can no longer be updated, so approvers no longer see where it stands: %s. "+
			"To fix it, %s. I try again every %s; `/access list` shows it as %s meanwhile.",
			r.ID, mrkdwn.Escape(r.Profile), channelMention(u.Channel), what, do, access.FormatDuration(bot.SweepInterval), NotPostedText)
	}
	return fmt.Sprintf("Your request `%s` for *%s* could not be posted in %s, so no approver can see it: %s. "+
		"To fix it, %s. I try again every %s and will tell you when it is posted; `/access list` shows it as %s meanwhile.",
		r.ID, mrkdwn.Escape(r.Profile), channelMention(u.Channel), what, do, access.FormatDuration(bot.SweepInterval), NotPostedText)
}

// view is what renderers need besides the request: the zone times are
// shown in, and the profile (for its description).
type view struct {
	loc     *time.Location
	profile access.Profile
}

// when renders t for Slack: each viewer sees their own zone, and clients
// that cannot localise see it in the configured one.
func (v view) when(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{time}|%s>", t.Unix(), v.clock(t))
}

// clock renders t as HH:MM in the configured zone (plain text).
func (v view) clock(t time.Time) string { return t.In(v.loc).Format("15:04 MST") }

// who renders a user id as a mention, tokken itself as its name.
func who(id string) string {
	if id == access.System || id == "" {
		return "tokken"
	}
	if m := mrkdwn.Mention(id); m != "" {
		return m
	}
	return mrkdwn.Escape(id)
}

func mentionAll(ids []string) string {
	if len(ids) == 0 {
		return "nobody yet"
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = who(id)
	}
	return strings.Join(out, ", ")
}

// userMention matches an escaped user mention, which escapeText restores.
var userMention = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`&lt;@([UW][A-Z0-9]{2,31})&gt;`) })

// escapeText makes a domain sentence (access.Explain, access.Help) safe
// mrkdwn: everything is escaped, then the user mentions the sentence itself
// makes ("<@U…>") are restored so they render as names.
func escapeText(s string) string {
	return userMention().ReplaceAllString(mrkdwn.Escape(s), "<@$1>")
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func contextBlock(text string) slack.Block {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, text, false, false))
}

func button(actionID, text, value string, style slack.Style) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, text, false, false))
	b.Style = style
	return b
}

func confirm(title, text, yes string) *slack.ConfirmationBlockObject {
	return slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		slack.NewTextBlockObject(slack.MarkdownType, text, false, false),
		slack.NewTextBlockObject(slack.PlainTextType, yes, false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
	).WithStyle(slack.StyleDanger)
}

// summary is the request in one mrkdwn line: who wants what for how long.
func summary(r access.Request) string {
	return fmt.Sprintf("%s asks for *%s* (%s) for *%s* · `%s`", who(r.Requester), mrkdwn.Escape(r.Profile),
		r.Kind, access.FormatDuration(r.Duration), r.ID)
}

func targets(ts []bot.Target) string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		s := "`" + mrkdwn.Escape(t.ID) + "`"
		if n := t.Tags["Name"]; n != "" {
			s += " " + mrkdwn.Escape(mrkdwn.Truncate(n, 60))
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// details are the request's fixed facts: reason, ticket, targets.
func details(r access.Request, v view) []slack.Block {
	var lines []string
	if d := v.profile.Description; d != "" {
		lines = append(lines, "_"+mrkdwn.Escape(mrkdwn.Truncate(d, 200))+"_")
	}
	lines = append(lines, "*Reason*\n"+mrkdwn.Quote(mrkdwn.Truncate(r.Reason, access.MaxReasonChars)))
	if r.Ticket != "" {
		lines = append(lines, "*Ticket* "+mrkdwn.Link(r.Ticket, mrkdwn.Truncate(r.Ticket, 120)))
	}
	if len(r.Targets) > 0 {
		lines = append(lines, "*Instances* "+targets(r.Targets))
	}
	if r.ECS != nil {
		lines = append(lines, ecsTargetLine(r.ECS))
	}
	if r.IDC != nil {
		lines = append(lines, idcTargetLine(r.IDC))
	}
	return []slack.Block{section(summary(r)), section(strings.Join(lines, "\n"))}
}

// RenderRequest renders the approver-channel message of r for its current
// state: one message that tracks the request's whole life. The blocks sit
// in an attachment whose colour follows the state; Text is the
// notification fallback and names the state too.
func RenderRequest(r access.Request, p access.Profile, loc *time.Location) slackapi.Message {
	v := view{loc: loc, profile: p}
	blocks := details(r, v)
	status, color, buttons := requestStatus(r, v)
	blocks = append(blocks, section(status+idcStatusNote(r, v)))
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("access_actions", buttons...))
	}
	if x := r.PendingExtension(); x != nil && r.State == access.StateActive {
		blocks = append(blocks, extensionBlocks(r, x)...)
	}
	blocks = append(blocks, contextBlock(fmt.Sprintf("Requested %s · `%s`", v.when(r.Created), r.ID)))
	text := fmt.Sprintf("Access %s for %s by %s: %s", r.ID, r.Profile, r.Requester, stateLabel(r))
	return slackapi.Message{
		Text:        mrkdwn.Escape(text),
		Attachments: []slack.Attachment{{Color: color, Fallback: mrkdwn.Escape(text), Blocks: slack.Blocks{BlockSet: blocks}}},
	}
}

// stateLabel names r's state in plain words for fallbacks.
func stateLabel(r access.Request) string {
	if r.State == access.StateRevokeFailed {
		return RevokeFailedText
	}
	return strings.ReplaceAll(string(r.State), "_", " ")
}

// requestStatus is the status line, colour and buttons for r's state.
func requestStatus(r access.Request, v view) (string, string, []slack.BlockElement) {
	approved := ""
	if len(r.Approvals) > 0 {
		approved = "approved by " + mentionAll(r.Approvers())
	}
	switch r.State {
	case access.StatePending:
		return fmt.Sprintf(":hourglass_flowing_sand: *Waiting for approval* — %d of %d (%s)", len(r.Approvals), max(r.ApprovalsNeeded, 1),
				mentionAll(r.Approvers())), ColorPending,
			[]slack.BlockElement{
				button(ActionApprove, "Approve", r.ID, slack.StylePrimary),
				button(ActionDeny, "Deny", r.ID, slack.StyleDanger),
			}
	case access.StateActivating:
		if r.Kind == access.KindIdentityCenter {
			return ":gear: *Granting access* — IAM Identity Center is assigning it — " + orText(approved, breakGlassLine(r)), ColorActive, nil
		}
		return ":gear: *Granting access* — " + orText(approved, breakGlassLine(r)), ColorActive, nil
	case access.StateActive:
		line := fmt.Sprintf(":white_check_mark: *Active* until %s — %s", v.when(r.Window.ExpiresAt), orText(approved, "no approval needed"))
		buttons := []slack.BlockElement{}
		if r.BreakGlass != nil {
			line += "\n" + breakGlassLine(r)
			if r.BreakGlass.NeedsReview() {
				buttons = append(buttons, button(ActionReview, "Reviewed", r.ID, slack.StylePrimary))
			}
		}
		rev := button(ActionRevoke, "Revoke", r.ID, slack.StyleDanger)
		rev.Confirm = confirm("Revoke access?", fmt.Sprintf("End %s's access now and terminate their sessions?", who(r.Requester)), "Revoke")
		if r.Kind == access.KindIdentityCenter {
			rev.Confirm = confirm("Revoke access?", fmt.Sprintf("End %s's access now? tokken removes the Identity Center assignment; portal sessions already open keep working until their session duration ends.", who(r.Requester)), "Revoke")
		}
		buttons = append(buttons, rev)
		return line, ColorActive, buttons
	case access.StateEnding:
		if r.Kind == access.KindIdentityCenter {
			return ":hourglass: *Ending access* — " + endLine(r, v) + " (removing it from IAM Identity Center)", ColorActive, nil
		}
		return ":hourglass: *Ending access* — " + endLine(r, v) + " (terminating sessions, revoking credentials)", ColorActive, nil
	case access.StateExpired:
		return ":lock: *Expired* at " + v.when(r.Window.ExpiresAt) + sessionsLine(r) + reviewedLine(r), ColorEnded, reviewButton(r)
	case access.StateRevoked:
		return ":no_entry: *Revoked* — " + endLine(r, v) + sessionsLine(r) + reviewedLine(r), ColorEnded, reviewButton(r)
	case access.StateRevokeFailed:
		last := ""
		if r.End != nil && r.End.LastError != "" {
			last = "\nLast error: `" + mrkdwn.Escape(mrkdwn.Truncate(r.End.LastError, 500)) + "`"
		}
		byHand := "revoke the role's sessions in IAM by hand"
		if r.Kind == access.KindIdentityCenter {
			byHand = "remove the account assignment (or group membership) in IAM Identity Center by hand"
		}
		return ":rotating_light: *" + RevokeFailedText + "* — access may still be usable. tokken keeps retrying every " +
				access.FormatDuration(bot.SweepInterval) + "; ops have been alerted. If it persists, " + byHand + "." + last,
			ColorDanger, nil
	case access.StateDenied:
		if d := r.Denial; d != nil {
			return fmt.Sprintf(":x: *Denied* by %s at %s\n%s", who(d.By), v.when(d.At), mrkdwn.Quote(d.Why)), ColorDenied, nil
		}
		return ":x: *Denied*", ColorDenied, nil
	case access.StateCancelled:
		return ":heavy_multiplication_x: *Cancelled*" + cancelledBy(r), ColorEnded, nil
	case access.StateFailed:
		if f := r.Failure; f != nil {
			return fmt.Sprintf(":warning: *Failed* — %s\n*What to do:* %s", mrkdwn.Escape(f.What), mrkdwn.Escape(f.Do)) + reviewedLine(r), ColorDenied, nil
		}
		return ":warning: *Failed*", ColorDenied, nil
	}
	return mrkdwn.Escape(string(r.State)), ColorEnded, nil
}

func orText(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func breakGlassLine(r access.Request) string {
	bg := r.BreakGlass
	if bg == nil {
		return ""
	}
	line := ":rotating_light: *Break-glass* by " + who(r.Requester) + ": " + mrkdwn.Escape(mrkdwn.Truncate(bg.Reason, 300))
	if bg.NeedsReview() {
		return line + " — *" + NeedsReviewText + "*"
	}
	return line + " — reviewed by " + who(bg.ReviewedBy)
}

// reviewedLine keeps break-glass review visible after the grant ended.
func reviewedLine(r access.Request) string {
	if r.BreakGlass == nil {
		return ""
	}
	return "\n" + breakGlassLine(r)
}

func reviewButton(r access.Request) []slack.BlockElement {
	if r.BreakGlass.NeedsReview() {
		return []slack.BlockElement{button(ActionReview, "Reviewed", r.ID, slack.StylePrimary)}
	}
	return nil
}

func endLine(r access.Request, v view) string {
	e := r.End
	if e == nil {
		return ""
	}
	switch e.Cause {
	case access.CauseDone:
		return fmt.Sprintf("ended by %s at %s", who(e.By), v.when(e.At)) + doneWhy(e)
	case access.CauseExpired:
		return "the window ended at " + v.when(r.Window.ExpiresAt)
	case access.CauseFailed:
		return "activation failed: " + mrkdwn.Escape(e.Why)
	}
	line := fmt.Sprintf("by %s at %s", who(e.By), v.when(e.At))
	if e.Why != "" {
		line += ": " + mrkdwn.Escape(mrkdwn.Truncate(e.Why, 300))
	}
	return line
}

// doneWhy is the requester's own reason for ending their access, or
// "(I'm done)" when they gave none.
func doneWhy(e *access.End) string {
	if e.Why == "" || e.Why == access.ReasonDone {
		return " (I'm done)"
	}
	return ": " + mrkdwn.Escape(mrkdwn.Truncate(e.Why, 300))
}

// revokedTell is the requester's DM once access ended early: who ended it,
// when, and the reason they gave.
func revokedTell(r access.Request, v view) string {
	id, profile := "`"+r.ID+"`", mrkdwn.Escape(r.Profile)
	e := r.End
	switch {
	case e == nil:
		return fmt.Sprintf(":no_entry: Your access %s to *%s* was revoked%s.", id, profile, sessionsLine(r))
	case e.Cause == access.CauseDone:
		return fmt.Sprintf(":no_entry: Your access %s to *%s* was ended by you at %s%s%s.", id, profile, v.when(e.At), doneWhy(e), sessionsLine(r))
	}
	return fmt.Sprintf(":no_entry: Your access %s to *%s* was revoked %s%s.", id, profile, endLine(r, v), sessionsLine(r))
}

func sessionsLine(r access.Request) string {
	if r.End == nil || r.End.Sessions == 0 {
		return ""
	}
	if r.End.Sessions == 1 {
		return " · 1 SSM session terminated"
	}
	return fmt.Sprintf(" · %d SSM sessions terminated", r.End.Sessions)
}

func cancelledBy(r access.Request) string {
	for i := len(r.History) - 1; i >= 0; i-- {
		if h := r.History[i]; h.Action == access.ActCancelled {
			line := " by " + who(h.Actor)
			if h.Note != "" {
				line += ": " + mrkdwn.Escape(h.Note)
			}
			return line
		}
	}
	return ""
}

func extensionBlocks(r access.Request, x *access.Extension) []slack.Block {
	approvers := make([]string, 0, len(x.Approvals))
	for _, a := range x.Approvals {
		approvers = append(approvers, a.By)
	}
	line := fmt.Sprintf(":heavy_plus_sign: *Extension asked* — %s more: %s", access.FormatDuration(x.Duration),
		mrkdwn.Escape(mrkdwn.Truncate(x.Reason, 300)))
	if x.State == access.ExtensionApproved {
		return []slack.Block{section(line + "\nApproved by " + mentionAll(approvers) + "; issuing fresh credentials…")}
	}
	line += fmt.Sprintf("\n%d of %d (%s)", len(x.Approvals), max(r.ApprovalsNeeded, 1), mentionAll(approvers))
	return []slack.Block{section(line), slack.NewActionBlock("access_extension",
		button(ActionApproveExtension, "Approve extension", r.ID, slack.StylePrimary),
		button(ActionDenyExtension, "Deny extension", r.ID, slack.StyleDanger))}
}

// RenderTell is the requester's DM about action on r.
func RenderTell(r access.Request, action string, loc *time.Location) slackapi.Message {
	v := view{loc: loc}
	id := "`" + r.ID + "`"
	var text string
	var buttons []slack.BlockElement
	switch action {
	case access.ActApproved:
		text = fmt.Sprintf(":thumbsup: Your request %s for *%s* was approved by %s (%d of %d).", id, mrkdwn.Escape(r.Profile),
			mentionAll(r.Approvers()), len(r.Approvals), max(r.ApprovalsNeeded, 1))
		if x := r.PendingExtension(); x != nil {
			text = fmt.Sprintf(":thumbsup: Your extension of %s got an approval.", id)
		}
	case access.ActActive:
		text = fmt.Sprintf(":white_check_mark: Your access %s to *%s* is active until %s. Credentials are in the message above.",
			id, mrkdwn.Escape(r.Profile), v.when(r.Window.ExpiresAt))
		if r.IDC != nil {
			text = idcActiveTell(r, v)
		}
		buttons = grantButtons(r)
	case access.ActExtended:
		text = fmt.Sprintf(":heavy_plus_sign: Your access %s is extended until %s. Fresh credentials are above.", id, v.when(r.Window.ExpiresAt))
		if r.IDC != nil {
			text = fmt.Sprintf(":heavy_plus_sign: Your access %s is extended until %s; the Identity Center assignment stays until then.", id, v.when(r.Window.ExpiresAt))
		}
		buttons = grantButtons(r)
	case access.ActDenied:
		by, why := "", ""
		if d := r.Denial; d != nil {
			by, why = who(d.By), d.Why
		}
		text = fmt.Sprintf(":x: Your request %s for *%s* was denied by %s:\n%s", id, mrkdwn.Escape(r.Profile), by, mrkdwn.Quote(why))
	case access.ActCancelled:
		text = fmt.Sprintf(":heavy_multiplication_x: Your request %s was cancelled%s.", id, cancelledBy(r))
	case access.ActRefused:
		if r.State == access.StateActive || r.State == access.StateEnding {
			// An extension was refused; the grant keeps its window.
			why := ""
			for i := len(r.History) - 1; i >= 0; i-- {
				if r.History[i].Action == access.ActRefused {
					why = r.History[i].Note
					break
				}
			}
			if rest, ok := strings.CutPrefix(why, access.NoteNewCredentials); ok {
				text = fmt.Sprintf(":heavy_multiplication_x: New credentials for %s were refused: %s. The operators have been alerted; "+
					"the credentials you have keep working until they expire, at the latest when your access ends at %s.",
					id, mrkdwn.Escape(rest), v.when(r.Window.ExpiresAt))
				break
			}
			text = fmt.Sprintf(":heavy_multiplication_x: Your extension of %s was refused: %s. Your access still ends at %s.",
				id, mrkdwn.Escape(why), v.when(r.Window.ExpiresAt))
			break
		}
		fallthrough
	case access.ActFailed:
		what, do := "", ""
		if f := r.Failure; f != nil {
			what, do = f.What, f.Do
		}
		text = fmt.Sprintf(":warning: Your access %s failed: %s\n*What to do:* %s", id, mrkdwn.Escape(what), mrkdwn.Escape(do))
	case access.ActExpired:
		text = fmt.Sprintf(":lock: Your access %s to *%s* expired%s.", id, mrkdwn.Escape(r.Profile), sessionsLine(r))
	case access.ActRevoked:
		text = revokedTell(r, v)
	case access.ActRevokeFailed:
		text = fmt.Sprintf(":rotating_light: tokken could not yet confirm that access %s ended; it keeps trying and ops have been told. Stop using it.", id)
	case access.ActUnposted:
		text = ":warning: " + unpostedText(r)
	case access.ActPosted:
		text = fmt.Sprintf(":white_check_mark: Your request %s for *%s* is now posted in %s, waiting for approval.", id,
			mrkdwn.Escape(r.Profile), channelMention(r.Message.Channel))
	case access.ActExtendDenied:
		text = fmt.Sprintf(":x: Your extension of %s was denied%s.", id, extensionDenial(r))
	case access.ActReissueFailed:
		why := ""
		for i := len(r.History) - 1; i >= 0; i-- {
			if r.History[i].Action == access.ActReissueFailed {
				why = strings.TrimPrefix(r.History[i].Note, access.NoteNewCredentials)
				break
			}
		}
		text = fmt.Sprintf(":warning: New credentials for %s could not be issued: %s. The credentials you have keep working until they expire; "+
			"try again, and tell the tokken operators if it keeps failing.", id, mrkdwn.Escape(why))
	case access.ActExtendLapsed:
		text = fmt.Sprintf(":heavy_multiplication_x: Your extension of %s lapsed: the grant ended first or could not be renewed.", id)
	default:
		text = fmt.Sprintf("Your request %s: %s.", id, mrkdwn.Escape(action))
	}
	m := slackapi.Message{Text: text, Blocks: []slack.Block{section(text)}}
	if len(buttons) > 0 {
		m.Blocks = append(m.Blocks, slack.NewActionBlock("access_grant", buttons...))
	}
	return m
}

func extensionDenial(r access.Request) string {
	for i := len(r.Extensions) - 1; i >= 0; i-- {
		if d := r.Extensions[i].Denial; d != nil {
			return " by " + who(d.By) + ": " + mrkdwn.Escape(d.Why)
		}
	}
	return ""
}

// grantButtons are the requester's controls over a live grant.
func grantButtons(r access.Request) []slack.BlockElement {
	done := button(ActionDone, "I'm done", r.ID, slack.StylePrimary)
	done.Confirm = confirm("End your access now?", "Your credentials stop working and your SSM sessions are terminated.", "End access")
	if r.Kind == access.KindIdentityCenter {
		done.Confirm = confirm("End your access now?", "tokken removes your Identity Center access; a portal session you already opened keeps working until its session duration ends.", "End access")
	}
	return []slack.BlockElement{done, button(ActionExtend, "Extend", r.ID, slack.StyleDefault)}
}

// RenderCredentials is the DM that hands the requester their credentials:
// console link, CLI exports and, for ssm grants, the session commands. It
// is the only place credentials are ever written.
func RenderCredentials(r access.Request, c access.Credentials, end time.Time, loc *time.Location, region string) slackapi.Message {
	v := view{loc: loc}
	var b strings.Builder
	renewable := r.Kind.HasCredentials() && c.Expiration.Before(end)
	if renewable {
		fmt.Fprintf(&b, ":key: *Access %s to %s* — these credentials expire at %s (AWS lets a set last at most an hour); your access lasts until %s. "+
			"Until then, *New credentials* below (or `/access creds %s`) gives you a new set, without another approval.\n",
			r.ID, mrkdwn.Escape(r.Profile), v.when(c.Expiration), v.when(end), r.ID)
	} else {
		fmt.Fprintf(&b, ":key: *Access %s to %s* — valid until %s (window end; the credentials stop working then even though STS says %s).\n",
			r.ID, mrkdwn.Escape(r.Profile), v.when(end), v.clock(c.Expiration))
	}
	if c.ConsoleURL != "" {
		fmt.Fprintf(&b, "*Console:* %s (link valid 15 minutes, use it once)\n", mrkdwn.Link(c.ConsoleURL, "open the AWS console"))
	} else if r.Kind != access.KindECSExec {
		b.WriteString("*Console:* no sign-in link could be made right now; the CLI credentials below work.\n")
	}
	b.WriteString("*CLI:*\n```\n")
	fmt.Fprintf(&b, "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_SESSION_TOKEN=%s\n", c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	if region != "" {
		fmt.Fprintf(&b, "export AWS_REGION=%s\n", region)
	}
	b.WriteString("```")
	if r.Kind == access.KindSSM && len(r.Targets) > 0 {
		b.WriteString("\n*Sessions:*\n```\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "aws ssm start-session --target %s\n", t.ID)
		}
		fmt.Fprintf(&b, "# port forwarding, e.g. RDP on localhost:13389:\naws ssm start-session --target %s --document-name AWS-StartPortForwardingSession --parameters '{\"portNumber\":[\"3389\"],\"localPortNumber\":[\"13389\"]}'\n", r.Targets[0].ID)
		b.WriteString("```")
	}
	if r.ECS != nil {
		b.WriteString(ecsCommands(r.ECS))
	}
	text := b.String()
	m := slackapi.Message{Text: fmt.Sprintf("Credentials for %s", r.ID), Blocks: []slack.Block{section(text)}}
	if renewable {
		m.Blocks = append(m.Blocks, slack.NewActionBlock("access_credentials",
			button(ActionNewCredentials, "New credentials", r.ID, slack.StyleDefault)),
			contextBlock(fmt.Sprintf("New credentials can be asked until %s; after that this button only says the access is over.", v.when(end))))
	}
	return m
}

// RenderAlert is a loud message for the audit or ops channel.
func RenderAlert(a access.Alert, loc *time.Location) slackapi.Message {
	r := a.Request
	var lines []string
	switch a.Action {
	case access.ActBreakGlass:
		lines = append(lines, fmt.Sprintf(":rotating_light: *BREAK-GLASS* — %s self-approved `%s` on *%s* for %s", who(r.Requester), r.ID,
			mrkdwn.Escape(r.Profile), access.FormatDuration(r.Duration)))
		if r.BreakGlass != nil {
			lines = append(lines, mrkdwn.Quote(r.BreakGlass.Reason))
		}
		lines = append(lines, "This use *"+NeedsReviewText+"* by someone other than the requester.")
	case access.ActUntold:
		lines = append(lines, ":rotating_light: "+escapeText(a.Text))
	case access.ActRevokeFailed:
		lines = append(lines, fmt.Sprintf(":rotating_light: *%s* — access `%s` (%s, requester %s) may still be usable.", RevokeFailedText, r.ID,
			mrkdwn.Escape(r.Profile), who(r.Requester)))
		lines = append(lines, escapeText(a.Text))
	case access.ActUnposted:
		if u := r.Unposted; u != nil {
			what, do := unpostedWhy(u)
			lines = append(lines, fmt.Sprintf(":rotating_light: *%s* — request `%s` on *%s* (requester %s) cannot be posted to its approver channel %s: %s (`%s`). No approver can see it.",
				NotPostedText, r.ID, mrkdwn.Escape(r.Profile), who(r.Requester), channelMention(u.Channel), what, mrkdwn.Escape(u.Code)))
			lines = append(lines, fmt.Sprintf("*What to do:* %s, or change `approver_channel` of `%s` in profiles.yaml. tokken tries again every %s.",
				do, mrkdwn.Escape(r.Profile), access.FormatDuration(bot.SweepInterval)))
		} else {
			lines = append(lines, escapeText(a.Text))
		}
	default:
		lines = append(lines, escapeText(a.Text))
	}
	blocks := []slack.Block{section(strings.Join(lines, "\n"))}
	if a.Action == access.ActBreakGlass && r.BreakGlass.NeedsReview() {
		blocks = append(blocks, slack.NewActionBlock("access_alert", button(ActionReview, "Reviewed", r.ID, slack.StylePrimary)))
	}
	fallback := mrkdwn.Escape(a.Text)
	return slackapi.Message{Text: fallback, Attachments: []slack.Attachment{{Color: ColorDanger, Fallback: fallback, Blocks: slack.Blocks{BlockSet: blocks}}}}
}

// RenderList answers `/access list`.
func RenderList(rs []access.Request, loc *time.Location) string {
	if len(rs) == 0 {
		return "You have no pending or active requests. `/access` asks for access."
	}
	v := view{loc: loc}
	lines := []string{"*Your requests:*"}
	for _, r := range rs {
		line := fmt.Sprintf("• `%s` *%s* %s — %s", r.ID, mrkdwn.Escape(r.Profile), access.FormatDuration(r.Duration), stateLabel(r))
		switch r.State {
		case access.StatePending:
			line += fmt.Sprintf(" (%d of %d approvals)", len(r.Approvals), max(r.ApprovalsNeeded, 1))
		case access.StateActive:
			line += " until " + v.when(r.Window.ExpiresAt)
		}
		if u := r.Unposted; u != nil {
			what, do := unpostedWhy(u)
			line += fmt.Sprintf(" — :warning: *%s* in %s: %s; %s", NotPostedText, channelMention(u.Channel), what, do)
		}
		lines = append(lines, line)
	}
	if slices.ContainsFunc(rs, func(r access.Request) bool { return r.State == access.StateActive && r.Kind.HasCredentials() }) {
		lines = append(lines, "`/access creds <request-id>` gives you a new set of credentials for an active grant, until its window ends.")
	}
	lines = append(lines, "`/access revoke <request-id>` ends one early.")
	return strings.Join(lines, "\n")
}
