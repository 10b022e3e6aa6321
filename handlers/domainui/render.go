package domainui

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/slackapi"
)

// Namespace is the interaction namespace of every action and view id this
// package renders (router.Router routes on the part before ':').
const Namespace = "domain"

// Action ids of the buttons on an operation's message. Their value is the
// operation id and nothing else: state lives in the store, not in Slack.
const (
	ActionApprove = Namespace + ":approve"
	ActionDeny    = Namespace + ":deny"
	ActionCancel  = Namespace + ":cancel"
)

// Ids of the modal that asks a denier for the reason the requester sees.
const (
	// CallbackDeny is the modal's callback_id.
	CallbackDeny = Namespace + ":deny_reason"
	// blockReason and actionReason locate the reason input in the view state.
	blockReason  = "reason"
	actionReason = "reason_input"
)

// maxSeen bounds the progress lines shown on the message itself; the
// thread holds them all.
const maxSeen = 6

// Limits keeping untrusted text well inside Slack's block limits (3000
// characters per section) after escaping.
const (
	maxName   = 128
	maxReason = 500
	maxValue  = 120
)

// Render is the message that tracks op in place: what is asked of which
// instance, by whom, where it stands, the latest progress the instance
// reported, and the buttons that fit the state (Approve / Deny while
// approval is pending, Cancel while it is unfinished). Every text that came
// from a user or an instance is escaped.
func Render(op domainjoin.Operation) slackapi.Message {
	title := fmt.Sprintf("%s Domain %s of %s", stateEmoji(op.State), op.Action, instanceLabel(op))
	lines := []string{
		"*" + title + "*",
		fmt.Sprintf("*State:* %s", stateText(op)),
		fmt.Sprintf("*Requested by:* %s %s", person(op.Requester), when(op.Started)),
	}
	if op.Force {
		lines = append(lines, "*Forced:* yes (runs even though the instance reports it is done)")
	}
	if op.NeedsApproval {
		lines = append(lines, "*Approval:* "+approvalText(op))
	}
	if !op.Deadline.IsZero() && !op.State.Terminal() {
		lines = append(lines, "*Times out:* "+when(op.Deadline))
	}
	if r := outcomeReason(op); r != "" {
		lines = append(lines, "*Reason:* "+mrkdwn.Escape(mrkdwn.Truncate(r, maxReason)))
	}
	blocks := []slack.Block{section(strings.Join(lines, "\n"))}
	if seen := progressLines(op); len(seen) > 0 {
		blocks = append(blocks, slack.NewContextBlock("progress",
			slack.NewTextBlockObject(slack.MarkdownType, strings.Join(seen, "\n"), false, false)))
	}
	if btns := buttons(op); len(btns) > 0 {
		blocks = append(blocks, slack.NewActionBlock("actions", btns...))
	}
	blocks = append(blocks, slack.NewContextBlock("ref",
		slack.NewTextBlockObject(slack.MarkdownType, "operation `"+mrkdwn.Escape(op.ID)+"` · progress in the thread", false, false)))
	return slackapi.Message{Text: fallback(op), Blocks: blocks}
}

// RenderThread turns lines from the service (plain text, possibly holding
// instance-written tag values) into one thread reply.
func RenderThread(lines []string) slackapi.Message {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, mrkdwn.Escape(mrkdwn.Truncate(l, maxReason)))
		}
	}
	return slackapi.Message{Text: strings.Join(out, "\n")}
}

// RenderAlert is the channel message raised when an operation times out
// and no alert pipeline is wired: loud, at top level, pointing at the
// operation.
func RenderAlert(op domainjoin.Operation, summary string) slackapi.Message {
	text := ":rotating_light: *tokken alert* — " + mrkdwn.Escape(mrkdwn.Truncate(summary, maxReason)) +
		"\nOperation `" + mrkdwn.Escape(op.ID) + "` requested by " + person(op.Requester) +
		". Check the instance's transcript (docs/windows.md, Troubleshooting)."
	return slackapi.Message{Text: text}
}

// DenyModal asks the denier of operation opID for the reason the requester
// will see. The operation id travels in private_metadata.
func DenyModal(opID string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(slack.NewTextBlockObject(slack.PlainTextType, "Why is it denied?", false, false), actionReason)
	input.Multiline = true
	input.MaxLength = maxReason
	block := slack.NewInputBlock(blockReason, slack.NewTextBlockObject(slack.PlainTextType, "Reason (the requester sees it)", false, false), nil, input)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackDeny,
		PrivateMetadata: opID,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, "Deny domain operation", false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false),
		Close:           slack.NewTextBlockObject(slack.PlainTextType, "Back", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section("Deny operation `" + mrkdwn.Escape(opID) + "`. The instance is not touched."),
			block,
		}},
	}
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// instanceLabel is "`name` (i-…)" with the name escaped.
func instanceLabel(op domainjoin.Operation) string {
	id := "`" + mrkdwn.Escape(op.InstanceID) + "`"
	if op.InstanceName == "" {
		return id
	}
	return mrkdwn.Escape(mrkdwn.Truncate(op.InstanceName, maxName)) + " (" + id + ")"
}

// fallback is the notification text: plain, short, escaped.
func fallback(op domainjoin.Operation) string {
	name := op.InstanceID
	if op.InstanceName != "" {
		name = mrkdwn.Truncate(op.InstanceName, maxName) + " (" + op.InstanceID + ")"
	}
	return mrkdwn.Escape(fmt.Sprintf("Domain %s of %s: %s", op.Action, name, strings.ReplaceAll(string(op.State), "_", " ")))
}

// person renders a Slack user id as a mention, tokken's own actor as
// "tokken", anything else as escaped text.
func person(id string) string {
	if m := mrkdwn.Mention(id); m != "" && (strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W")) {
		return m
	}
	return mrkdwn.Escape(id)
}

// when renders t with Slack's date formatting, so each reader sees their
// own time zone; the fallback is UTC.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func stateEmoji(s domainjoin.State) string {
	switch s {
	case domainjoin.StatePendingApproval:
		return ":hourglass_flowing_sand:"
	case domainjoin.StateTagging, domainjoin.StateRebooting, domainjoin.StateWaiting:
		return ":gear:"
	case domainjoin.StateJoined, domainjoin.StateUnjoined:
		return ":white_check_mark:"
	case domainjoin.StateTimedOut:
		return ":rotating_light:"
	case domainjoin.StateFailed:
		return ":x:"
	default: // denied, cancelled
		return ":no_entry_sign:"
	}
}

// stateText says where op stands in words.
func stateText(op domainjoin.Operation) string {
	switch op.State {
	case domainjoin.StatePendingApproval:
		return "waiting for approval"
	case domainjoin.StateTagging:
		return "setting the request tags"
	case domainjoin.StateRebooting:
		return "rebooting the instance"
	case domainjoin.StateWaiting:
		return "waiting for the instance to report"
	case domainjoin.StateJoined:
		return "*joined* the domain"
	case domainjoin.StateUnjoined:
		return "*left* the domain"
	case domainjoin.StateFailed:
		return "*failed*"
	case domainjoin.StateTimedOut:
		return "*timed out*"
	case domainjoin.StateDenied:
		return "*denied* by " + person(op.DecidedBy)
	case domainjoin.StateCancelled:
		return "*cancelled* by " + person(op.DecidedBy)
	}
	return mrkdwn.Escape(string(op.State))
}

func approvalText(op domainjoin.Operation) string {
	switch {
	case op.State == domainjoin.StatePendingApproval:
		s := "required by policy; anyone allowed to approve except the requester"
		if !op.ApprovalDeadline.IsZero() {
			s += ", until " + when(op.ApprovalDeadline)
		}
		return s
	case op.State == domainjoin.StateDenied:
		return "denied by " + person(op.DecidedBy)
	case op.DecidedBy != "" && op.State != domainjoin.StateCancelled:
		return "approved by " + person(op.DecidedBy)
	}
	return "required by policy; not given"
}

// outcomeReason is the reason worth showing on the message: why it
// failed, timed out, was denied or cancelled.
func outcomeReason(op domainjoin.Operation) string {
	switch op.State {
	case domainjoin.StateDenied:
		return op.DecisionReason
	case domainjoin.StateFailed, domainjoin.StateTimedOut, domainjoin.StateCancelled:
		return op.Reason
	}
	return ""
}

// progressLines are the latest tag values seen, oldest first.
func progressLines(op domainjoin.Operation) []string {
	seen := op.Seen
	var out []string
	if len(seen) > maxSeen {
		out = append(out, fmt.Sprintf("… %d earlier updates in the thread", len(seen)-maxSeen))
		seen = seen[len(seen)-maxSeen:]
	}
	for _, p := range seen {
		out = append(out, fmt.Sprintf("%s `%s` = %s", when(p.At),
			mrkdwn.Escape(mrkdwn.Truncate(p.Key, maxValue)), mrkdwn.Escape(mrkdwn.Truncate(p.Value, maxValue))))
	}
	return out
}

func buttons(op domainjoin.Operation) []slack.BlockElement {
	var out []slack.BlockElement
	if op.State == domainjoin.StatePendingApproval {
		approve := slack.NewButtonBlockElement(ActionApprove, op.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
		approve.Style = slack.StylePrimary
		deny := slack.NewButtonBlockElement(ActionDeny, op.ID, slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false))
		deny.Style = slack.StyleDanger
		out = append(out, approve, deny)
	}
	if !op.State.Terminal() {
		cancel := slack.NewButtonBlockElement(ActionCancel, op.ID, slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
		cancel.Confirm = slack.NewConfirmationBlockObject(
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel this operation?", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Tags already set on the instance stay; it may still complete the change.", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel it", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Keep it", false, false))
		out = append(out, cancel)
	}
	return out
}
