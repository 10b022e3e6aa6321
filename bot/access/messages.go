package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokken/tokken/bot"
)

// This file holds every user-facing sentence of the package, so wording is
// reviewed in one place. The text is plain: renderers escape it for mrkdwn
// (it quotes what the user typed).

// Help is the answer to `/access help`.
const Help = "*/access* asks for time-boxed AWS access.\n" +
	"• `/access` opens a form.\n" +
	"• `/access <profile> <duration> [i-… …] <reason>` asks in one line, e.g. " +
	"`/access prod-ssm 30m i-0abc123def4567890 investigating 5xx on web-01`.\n" +
	"  Durations: whole hours and minutes such as `10m`, `1h`, `1h30m`, `90m` (at most the profile's maximum).\n" +
	"  Instances (ssm profiles only): `i-` followed by 8 or 17 hex digits, separated by spaces or commas.\n" +
	"  ECS Exec (ecs-exec profiles): name the service or the task id before the reason, e.g. " +
	"`/access staging-exec 30m web investigating 502s`.\n" +
	"  IAM Identity Center (identity-center profiles): name the AWS account before the reason when the profile offers several, e.g. " +
	"`/access prod-admin 1h 111111111111 rotating the KMS key`; your DM links to the AWS access portal.\n" +
	"• `/access --break-glass <profile> <duration> [i-… …] <reason>` is for emergencies, on profiles that allow it and " +
	"if the rules let you: after you confirm, you approve it yourself at once; it is announced in the audit channel " +
	"and reviewed afterwards. E.g. `/access --break-glass prod-ssm 30m i-0abc123def4567890 db down, nobody answers`.\n" +
	"• `/access list` shows your pending and active requests.\n" +
	"• `/access creds <request-id>` gives you a new set of credentials for your active grant, until its window ends, " +
	"without another approval (the \"New credentials\" button in the credentials message does the same). " +
	"AWS lets one set last at most an hour, so a longer grant needs a new set every hour.\n" +
	"• `/access revoke <request-id> [reason]` ends access early (the requester, or anyone allowed to revoke).\n" +
	"• `/access help` shows this."

const (
	msgCredsUsage      = "Which request? Use `/access creds <request-id>`, e.g. `/access creds r-7k3q9x0m2c4d`. `/access list` shows your request ids."
	msgBreakGlassUsage = "`" + BreakGlassFlag + "` goes with a request: `/access " + BreakGlassFlag + " <profile> <duration> [i-… …] <reason>`, " +
		"e.g. `/access " + BreakGlassFlag + " prod-ssm 30m i-0abc123def4567890 db down`."
	msgRevokeUsage   = "Which request? Use `/access revoke <request-id>`, e.g. `/access revoke r-7k3q9x0m2c4d`. `/access list` shows your request ids."
	msgMissingReason = "A reason is required: `/access <profile> <duration> [i-… …] <reason>`, e.g. `/access prod-ssm 30m i-0abc123def4567890 investigating 5xx`."
)

func msgExtraArgs(verb string) string {
	return fmt.Sprintf("`/access %s` takes no arguments.", verb)
}

func msgBadRequestID(s string) string {
	return fmt.Sprintf("%q is not a request id. Request ids look like `r-7k3q9x0m2c4d`; `/access list` shows yours.", s)
}

func msgBadProfile(s string) string {
	return fmt.Sprintf("%q is not a profile name. Use `/access <profile> <duration> [i-… …] <reason>`; "+
		"profile names are letters, digits, `-`, `_` and `.`. `/access` opens a form listing the profiles you may request; `/access help` shows the syntax.", truncate(s, 80))
}

func msgMissingDuration(profile string) string {
	return fmt.Sprintf("How long? Use `/access %s <duration> [i-… …] <reason>` with a duration such as `10m`, `1h`, `1h30m` or `90m`.", profile)
}

func msgBadDuration(s string) string {
	return fmt.Sprintf("%q is not a duration. Write whole hours and/or minutes, such as `10m`, `1h`, `1h30m` or `90m` (at most 24h).", truncate(s, 40))
}

func msgZeroDuration(s string) string {
	return fmt.Sprintf("%q is no time at all. Ask for at least `1m`, e.g. `10m`, `1h` or `1h30m`.", s)
}

func msgDurationOverDay(s string) string {
	return fmt.Sprintf("%q is longer than 24h, the most anyone can ask for (and each profile has its own, lower maximum).", s)
}

func msgBadInstance(s string) string {
	return fmt.Sprintf("%q is not an instance id. Instance ids are `i-` followed by 8 or 17 hex digits, e.g. `i-0abc123def4567890`.", truncate(s, 40))
}

func msgTooManyInstances(n int) string {
	return fmt.Sprintf("%d instances is too many for one request; ask for at most %d.", n, MaxInstances)
}

// ReasonTooLong says, for the user, that reason is longer than
// MaxReasonChars characters, or returns "" when it is not. Characters are
// runes, what the user sees: a Japanese reason has as many as it shows,
// though three times as many bytes.
func ReasonTooLong(reason string) string {
	n := utf8.RuneCountInString(reason)
	if n <= MaxReasonChars {
		return ""
	}
	return fmt.Sprintf("The reason is %d characters; it may have at most %d (link a ticket for details).", n, MaxReasonChars)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// Explain turns an error from this package into the sentence shown to the
// user who caused it (ephemerally): what was wrong and what is allowed. ok
// is false for errors that are not the user's doing (store or network
// failures); show a generic apology for those and log the error.
func Explain(err error) (msg string, ok bool) {
	var (
		cmd     *CommandError
		decided *ErrAlreadyDecided
		active  *ErrNotActive
		denied  *ErrNotAllowed
		unknown *ErrUnknownProfile
		long    *ErrDurationTooLong
		target  *ErrBadTarget
		glass   *ErrBreakGlassDisabled
		noreq   *ErrUnknownRequest
		role    *ErrRoleNotGrantable
		nocreds *ErrNoNewCredentials
	)
	switch {
	case err == nil:
		return "", true
	case errors.As(err, &cmd):
		return cmd.Msg, true
	case errors.As(err, &decided):
		return fmt.Sprintf("Too late: this is already %s by %s.", stateWords(decided.State), mentions(decided.By)), true
	case errors.As(err, &active):
		return fmt.Sprintf("This request is %s, not active.", stateWords(active.State)), true
	case errors.As(err, &denied):
		why := "no rule permits it"
		if len(denied.Reasons) > 0 {
			why = strings.Join(denied.Reasons, "; ")
		}
		msg := fmt.Sprintf("You are not allowed to %s here: %s.", actionWords(string(denied.Action)), why)
		if denied.BreakGlass != "" {
			msg += " In an emergency you may break glass instead: you approve it yourself, it is announced in the audit channel " +
				"and reviewed afterwards. Type `" + denied.BreakGlass + "` (you will be asked to confirm)."
		}
		return msg, true
	case errors.As(err, &unknown):
		if len(unknown.Allowed) == 0 {
			return fmt.Sprintf("There is no profile %q you may request, and no profile you may request at all: ask an admin.", unknown.Name), true
		}
		return fmt.Sprintf("There is no profile %q you may request. You may request: %s.", unknown.Name, strings.Join(unknown.Allowed, ", ")), true
	case errors.As(err, &long):
		return fmt.Sprintf("%s is longer than %s allows: at most %s.", FormatDuration(long.Asked), long.Profile, FormatDuration(long.Max)), true
	case errors.As(err, &target):
		if target.ID == "" {
			return fmt.Sprintf("Profile %s: %s.", target.Profile, target.Why), true
		}
		return fmt.Sprintf("Profile %s does not cover %s: %s.", target.Profile, target.ID, target.Why), true
	case errors.As(err, &role):
		return fmt.Sprintf("The role %s cannot be granted: %s. tokken grants only roles whose permissions boundary is %s: ask your AWS admins to set it (docs/deploy.md, step 4).",
			role.Role, role.Why, role.Boundary), true
	case errors.As(err, &glass):
		return fmt.Sprintf("Profile %s does not allow break-glass: wait for an approver.", glass.Profile), true
	case errors.As(err, &nocreds):
		return fmt.Sprintf("No new credentials for %s: %s.", nocreds.ID, nocreds.Why), true
	case errors.As(err, &noreq):
		return fmt.Sprintf("There is no request %s. `/access list` shows yours.", noreq.ID), true
	case errors.Is(err, ErrSelfApproval):
		return "You cannot approve, deny or review your own request: another approver must.", true
	case errors.Is(err, ErrAlreadyApproved):
		return "You have already approved this; it needs another approver.", true
	case errors.Is(err, ErrReasonRequired):
		return "A reason is required.", true
	case errors.Is(err, ErrNotRequester):
		return "Only the requester can do this.", true
	case errors.Is(err, ErrNotBreakGlass):
		return "Only break-glass requests are reviewed.", true
	case errors.Is(err, ErrExtensionPending):
		return "An extension is already waiting for approval.", true
	case errors.Is(err, ErrUnknownExtension):
		return "That extension no longer exists.", true
	}
	return "Something went wrong on our side; nothing was changed. Try again in a minute.", false
}

// FormatDuration writes d the way users type it: 10m, 1h, 1h30m.
func FormatDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

func mentions(ids []string) string {
	if len(ids) == 0 {
		return "someone else"
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		if id == System {
			out[i] = "tokken"
			continue
		}
		out[i] = "<@" + id + ">"
	}
	return strings.Join(out, ", ")
}

func stateWords(s State) string {
	switch s {
	case StateActivating:
		return "approved (access is being granted)"
	case StateActive:
		return "approved and active"
	case StateEnding:
		return "ending"
	case StateRevokeFailed:
		return "being revoked (revocation is failing; ops have been alerted)"
	}
	return string(s)
}

func actionWords(a string) string { return strings.ReplaceAll(a, "_", "-") }

// Why new credentials are refused (ErrNoNewCredentials).
const (
	whyReissueUnderway   = "a new set is already being issued; it arrives in a DM from me"
	whyExtensionUnderway = "your extension was approved and its fresh credentials are being issued; they arrive in a DM from me"
)

func whyReissueTooSoon(last, next time.Time) string {
	return fmt.Sprintf("a set was issued at %s; ask again from %s", last.UTC().Format("15:04:05 UTC"), next.UTC().Format("15:04:05 UTC"))
}

func whyNoCredentials(k Kind) string {
	if k == KindIdentityCenter {
		return "identity-center grants have no credentials to renew: sign in again through the AWS access portal (the link in your DM) while the grant is active"
	}
	return fmt.Sprintf("%s grants have no credentials to renew", k)
}

func whyWindowOver(end time.Time) string {
	return "the access window ended at " + end.UTC().Format(time.RFC3339) + "; ask for access again with /access"
}

// ReasonDone is the reason recorded when the requester ends their own
// access without giving one (the "I'm done" button).
const ReasonDone = "requester is done"

// Reasons and explanations used inside requests (shown in Slack).
const (
	reasonPendingTimeout = "no decision within 24h"
	whyRoleNotInstances  = "it grants a role, not instances: leave out the instance ids"
	whyNeedInstances     = "name the instances you need, e.g. `i-0abc123def4567890`"
	whyNotInstanceID     = "not an instance id (`i-` followed by 8 or 17 hex digits)"
	whyNoSuchInstance    = "no such instance in this account and region"
)

func whyNotSelected(sel InstanceSelector) string {
	var parts []string
	if len(sel.IDs) > 0 {
		parts = append(parts, "instances "+strings.Join(sel.IDs, ", "))
	}
	if len(sel.Tags) > 0 {
		tags := make([]string, 0, len(sel.Tags))
		for k, v := range sel.Tags {
			tags = append(tags, k+"="+v)
		}
		slices.Sort(tags)
		parts = append(parts, "instances tagged "+strings.Join(tags, " and "))
	}
	if len(parts) == 0 {
		return "the profile allows no instances (ask an admin to fix its selector)"
	}
	return "the profile allows only " + strings.Join(parts, ", or ")
}

func failureIssue(cause error, now time.Time) Failure {
	return Failure{
		What: "AWS did not grant access: " + cause.Error(),
		Do: "Nothing usable was granted. Ask again with /access; if it fails again, tell your AWS admins " +
			"(the role must trust tokken with sts:AssumeRole, sts:SetSourceIdentity and sts:TagSession).",
		At: now,
	}
}

// failureIDC says why Identity Center did not grant access: no Identity
// Store user for the requester's e-mail (named), a FAILED assignment (with
// Identity Center's reason), or another failure.
func failureIDC(cause error, now time.Time) Failure {
	var (
		nouser *ErrNoIdentityUser
		failed *AssignmentFailedError
	)
	switch {
	case errors.As(cause, &nouser):
		return Failure{
			What: "IAM Identity Center has no user " + nouser.Looked(),
			Do:   "Nothing was granted. To be granted, " + nouser.Fix() + "; then ask again with /access.",
			At:   now,
		}
	case errors.As(cause, &failed):
		return Failure{
			What: "IAM Identity Center failed the account assignment: " + failed.Reason,
			Do:   "Nothing usable was granted. Ask again with /access; if it fails again, tell your AWS admins what Identity Center said.",
			At:   now,
		}
	}
	return Failure{
		What: "IAM Identity Center did not grant access: " + cause.Error(),
		Do:   "Anything granted has been removed. Ask again with /access; if it fails again, tell the tokken operators.",
		At:   now,
	}
}

func failureRoleNotGrantable(e *ErrRoleNotGrantable, now time.Time) Failure {
	return Failure{
		What: fmt.Sprintf("role %s may not be granted: %s", e.Role, e.Why),
		Do: "Nothing was granted. tokken grants only roles whose permissions boundary is " + e.Boundary +
			": ask your AWS admins to set it (docs/deploy.md, step 4), then ask again with /access.",
		At: now,
	}
}

func failureWindowPassed(end, now time.Time) Failure {
	return Failure{
		What: "the access window ended at " + end.UTC().Format(time.RFC3339) + " before credentials could be issued",
		Do:   "Anything issued has been revoked. Ask again with /access; if it happens again, tell the tokken operators.",
		At:   now,
	}
}

func failureStuck(now time.Time) Failure {
	return Failure{
		What: fmt.Sprintf("access was not granted within %s of approval", ActivationDeadline),
		Do:   "Anything issued has been revoked. Ask again with /access; if it happens again, tell the tokken operators.",
		At:   now,
	}
}

func failureRefused(why string, now time.Time) Failure {
	return Failure{
		What: "tokken refused to grant this access: " + why,
		Do: "Nothing was granted. Ask again with /access; the approvals must come from people the policy allows now. " +
			"The operators have been alerted.",
		At: now,
	}
}

func alertRefused(r *Request, why string) string {
	return fmt.Sprintf("GRANT REFUSED: access %s (%s, requester %s) was not issued: %s. A stored request that claims approvals the policy does not give can mean a misbehaving ingress or a tampered table; check the audit trail.",
		r.ID, r.Profile, r.Requester, why)
}

func alertBreakGlass(r *Request) string {
	return fmt.Sprintf("BREAK-GLASS: %s self-approved %s on %s for %s: %q. Needs review.",
		r.Requester, r.ID, r.Profile, FormatDuration(r.Duration), r.BreakGlass.Reason)
}

func alertHeldEnded(r *Request, note string) string {
	return fmt.Sprintf("GRANT ENDED FROM TOKKEN'S OWN RECORD: access %s (%s, requester %s): %s. A request item that does not end its own access can mean a misbehaving ingress or a tampered table; check the audit trail.",
		r.ID, r.Profile, r.Requester, note)
}

func alertRevokeFailed(r *Request, err error) string {
	return fmt.Sprintf("REVOKE FAILED: access %s (%s, requester %s) may still be usable: %v. tokken keeps retrying every %s.",
		r.ID, r.Profile, r.Requester, err, FormatDuration(bot.SweepInterval))
}

// BreakGlassCommand is the one-line command that files in as break-glass.
func BreakGlassCommand(in SubmitInput) string {
	words := []string{"/access", BreakGlassFlag, in.Profile}
	if in.Duration > 0 {
		words = append(words, FormatDuration(in.Duration))
	}
	words = append(words, in.Instances...)
	return strings.Join(append(words, strings.Fields(in.Reason)...), " ")
}

func alertUntold(r *Request, action, code string) string {
	return fmt.Sprintf("NOT TOLD: Slack refuses direct messages to %s (%s), the requester of %s (profile %s), so they were not told about %s. "+
		"Check that the user is active and can receive messages from the app, and tell them yourself.",
		r.Requester, code, r.ID, r.Profile, action)
}

func alertUnposted(r *Request) string {
	u := r.Unposted
	return fmt.Sprintf("NOT POSTED: request %s (profile %s, requester %s) cannot be posted to its approver channel %s (%s), so no approver can see it. "+
		"Invite the bot to that channel, or fix approver_channel of %s in profiles.yaml; tokken tries again every %s.",
		r.ID, r.Profile, r.Requester, u.Channel, u.Code, r.Profile, FormatDuration(bot.SweepInterval))
}
