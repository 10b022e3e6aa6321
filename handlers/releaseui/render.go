package releaseui

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/slackapi"
)

// Namespace is the interaction namespace of this package's action and view
// ids (the router routes on the part before ':').
const Namespace = "release"

// Action ids of the card's buttons; their value is the approval id.
const (
	ActionApprove = Namespace + ":approve"
	ActionReject  = Namespace + ":reject"
)

// Ids of the Reject reason modal.
const (
	CallbackReject = Namespace + ":reject_reason"
	blockReason    = "reason"
	actionReason   = "reason_input"
)

// Limits keeping untrusted text inside Slack's block limits after escaping.
const (
	maxReason  = 300
	maxCustom  = 1000
	maxSummary = 200
	maxName    = 100
	maxShown   = 5 // source revisions shown
)

// Render is the approval card: pipeline, stage and action, the custom
// data, links to the change and the console review page, what started the
// execution and its source revisions, the expiry, the votes so far and the
// outcome; Approve / Reject buttons while it is pending. Every text from
// the pipeline or a user is escaped.
func Render(a release.Approval) slackapi.Message {
	lines := []string{
		fmt.Sprintf("*%s Release of %s*", emoji(a.State), code(a.Pipeline)),
		fmt.Sprintf("*Stage:* %s  *Action:* %s", code(a.Stage), code(a.Action)),
	}
	if a.Env != "" {
		lines = append(lines, "*Environment:* "+code(a.Env))
	}
	lines = append(lines, "*State:* "+stateText(a))
	if a.CustomData != "" {
		lines = append(lines, "*Note from the pipeline:*\n"+mrkdwn.Quote(mrkdwn.Truncate(a.CustomData, maxCustom)))
	}
	var links []string
	if a.ExternalLink != "" {
		links = append(links, mrkdwn.Link(a.ExternalLink, "the change"))
	}
	if a.ReviewLink != "" {
		links = append(links, mrkdwn.Link(a.ReviewLink, "review in the console"))
	} else if a.ConsoleLink != "" {
		links = append(links, mrkdwn.Link(a.ConsoleLink, "pipeline in the console"))
	}
	if len(links) > 0 {
		lines = append(lines, "*Links:* "+strings.Join(links, " · "))
	}
	if ex := a.Execution; ex != nil {
		started := "*Execution:* " + code(ex.ID)
		if ex.TriggerType != "" {
			started += ", started by " + mrkdwn.Escape(ex.TriggerType)
			if ex.TriggerDetail != "" {
				started += " (" + mrkdwn.Escape(mrkdwn.Truncate(ex.TriggerDetail, maxName)) + ")"
			}
		}
		lines = append(lines, started)
		for i, r := range ex.Revisions {
			if i == maxShown {
				lines = append(lines, fmt.Sprintf("… and %d more revisions", len(ex.Revisions)-maxShown))
				break
			}
			rev := mrkdwn.Truncate(r.ID, 12)
			if r.URL != "" {
				rev = mrkdwn.Link(r.URL, rev)
			} else {
				rev = mrkdwn.Escape(rev)
			}
			l := "• " + mrkdwn.Escape(mrkdwn.Truncate(r.Name, maxName)) + " " + rev
			if s := strings.TrimSpace(r.Summary); s != "" {
				l += ": " + mrkdwn.Escape(mrkdwn.Truncate(strings.Join(strings.Fields(s), " "), maxSummary))
			}
			lines = append(lines, l)
		}
	}
	if a.StartedBy != "" {
		lines = append(lines, "*Started in Slack by:* "+person(a.StartedBy)+" (never counts as an approver)")
	}
	if !a.Expires.IsZero() {
		lines = append(lines, "*Expires:* "+when(a.Expires))
	}
	lines = append(lines, fmt.Sprintf("*Approvals:* %d of %d distinct approvers", len(a.Approvals), a.Required))
	for _, v := range a.Approvals {
		l := "• Approved by " + person(v.By) + " " + when(v.At)
		if v.Reason != "" {
			l += ": " + mrkdwn.Escape(mrkdwn.Truncate(v.Reason, maxReason))
		}
		lines = append(lines, l)
	}
	blocks := []slack.Block{section(strings.Join(lines, "\n"))}
	if a.State == release.StatePending {
		approve := slack.NewButtonBlockElement(ActionApprove, a.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
		approve.Style = slack.StylePrimary
		reject := slack.NewButtonBlockElement(ActionReject, a.ID, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false))
		reject.Style = slack.StyleDanger
		blocks = append(blocks, slack.NewActionBlock("actions", approve, reject))
	}
	return slackapi.Message{Text: fallback(a), Blocks: blocks}
}

// stateText is the outcome line: who decided, or what happened instead.
func stateText(a release.Approval) string {
	switch a.State {
	case release.StatePending:
		return "Waiting for approval"
	case release.StateDeciding:
		return "Sending the decision to CodePipeline…"
	case release.StateApproved:
		return "Approved by " + people(a.Approvals)
	case release.StateRejected:
		s := "Rejected by " + person(a.Rejection.By)
		if a.Rejection.Reason != "" {
			s += ": " + mrkdwn.Escape(mrkdwn.Truncate(a.Rejection.Reason, maxReason))
		}
		return s
	case release.StateExpired:
		return "Expired: CodePipeline no longer accepts a decision"
	case release.StateElsewhere:
		return "Already decided in the console (or by another tool); nothing was sent"
	case release.StateInvalid:
		return "No longer current: CodePipeline does not accept this approval's token (a newer execution replaced it)"
	case release.StateFailed:
		return "Failed: " + mrkdwn.Escape(mrkdwn.Truncate(a.Failure, maxReason))
	}
	return mrkdwn.Escape(string(a.State))
}

// fallback is the notification text: plain, short, escaped.
func fallback(a release.Approval) string {
	return mrkdwn.Escape(fmt.Sprintf("Release of %s (%s): %s", mrkdwn.Truncate(a.Pipeline, maxName), mrkdwn.Truncate(a.Stage, maxName), strings.ReplaceAll(string(a.State), "_", " ")))
}

func emoji(s release.State) string {
	switch s {
	case release.StatePending, release.StateDeciding:
		return ":hourglass_flowing_sand:"
	case release.StateApproved:
		return ":white_check_mark:"
	case release.StateRejected:
		return ":no_entry:"
	}
	return ":grey_question:"
}

// RejectModal asks for the reason of a rejection. The private metadata is
// the approval id and the channel to answer in.
func RejectModal(id, channel string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(slack.NewTextBlockObject(slack.PlainTextType, "Why is the release rejected?", false, false), actionReason)
	input.Multiline = true
	input.MaxLength = maxReason
	block := slack.NewInputBlock(blockReason, slack.NewTextBlockObject(slack.PlainTextType, "Reason (sent to CodePipeline)", false, false), nil, input)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackReject,
		PrivateMetadata: id + " " + channel,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, "Reject release", false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false),
		Close:           slack.NewTextBlockObject(slack.PlainTextType, "Back", false, false),
		Blocks:          slack.Blocks{BlockSet: []slack.Block{block}},
	}
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func code(s string) string { return "`" + mrkdwn.Escape(mrkdwn.Truncate(s, maxName)) + "`" }

func person(id string) string {
	if m := mrkdwn.Mention(id); m != "" {
		return m
	}
	return mrkdwn.Escape(id)
}

func people(votes []release.Vote) string {
	out := make([]string, 0, len(votes))
	for _, v := range votes {
		out = append(out, person(v.By))
	}
	return strings.Join(out, ", ")
}

// when is a Slack date token (shown in each reader's time zone) with a
// UTC fallback.
func when(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}
