package accessui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/slackapi"
)

// Buttons of the confirmation a one-line break-glass request asks for
// (`/access --break-glass …`); their value is the draft's id.
const (
	ActionConfirmBreakGlass = "access:confirm_break_glass"
	ActionCancelBreakGlass  = "access:cancel_break_glass"
)

// KindBreakGlassDraft holds a one-line break-glass request until its
// requester confirms or cancels it, for at most BreakGlassConfirmTTL.
const KindBreakGlassDraft = "access.break_glass_draft"

// BreakGlassConfirmTTL is how long a break-glass confirmation can be
// clicked.
const BreakGlassConfirmTTL = 10 * time.Minute

// breakGlassDraft is a one-line break-glass request awaiting confirmation.
type breakGlassDraft struct {
	Input access.SubmitInput `json:"input"`
	// ResponseURL is the command's, for the answer once submitted.
	ResponseURL string `json:"response_url,omitempty"`
}

func (f *Feature) drafts() bot.Table[breakGlassDraft] {
	return bot.Table[breakGlassDraft]{Store: f.store, Kind: KindBreakGlassDraft}
}

// breakGlassRefusal asks the policy whether who may file a break-glass
// request on p for d: request and break_glass, with context break_glass.
// It returns nil when both are permitted. Targets are checked when the
// request is submitted.
func (f *Feature) breakGlassRefusal(ctx context.Context, who bot.Principal, p access.Profile, d time.Duration) (*access.ErrNotAllowed, error) {
	for _, a := range []bot.Action{bot.ActionRequest, bot.ActionBreakGlass} {
		dec, err := f.authz.Authorize(ctx, bot.AuthzQuery{
			Principal: who, Action: a, Profile: p.Name, Duration: d, Now: f.now(),
			Context: map[string]string{"requester": who.ID, "break_glass": "true"},
		})
		if err != nil {
			return nil, fmt.Errorf("authorize break-glass on %s: %w", p.Name, err)
		}
		if !dec.Allow {
			return &access.ErrNotAllowed{Action: a, Reasons: dec.Reasons}, nil
		}
	}
	return nil, nil
}

// confirmBreakGlass answers `/access --break-glass …`: after the checks
// that need no AWS (the profile allows break-glass, the policy lets the
// user), it keeps the request as a draft and asks the user to confirm,
// since a break-glass request approves itself and is announced. The
// confirmed request is submitted like any other, with every check.
func (f *Feature) confirmBreakGlass(ctx context.Context, cmd slack.SlashCommand, in access.SubmitInput) (*slack.Msg, error) {
	p, ok := f.cat.Profile(in.Profile)
	if !ok {
		choices, err := f.choices(ctx, in.Requester)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(choices))
		for _, c := range choices {
			names = append(names, c.Profile.Name)
		}
		return explain(&access.ErrUnknownProfile{Name: in.Profile, Allowed: names})
	}
	if !p.BreakGlass {
		return explain(&access.ErrBreakGlassDisabled{Profile: p.Name})
	}
	who, err := f.listing.Lookup(ctx, in.Requester)
	if err != nil {
		return nil, err
	}
	refusal, err := f.breakGlassRefusal(ctx, who, p, in.Duration)
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return explain(refusal)
	}
	id := bot.NewID("b-")
	if err := f.drafts().Create(ctx, id, breakGlassDraft{Input: in, ResponseURL: cmd.ResponseURL}, BreakGlassConfirmTTL); err != nil {
		return nil, fmt.Errorf("keep the break-glass request of %s: %w", in.Requester, err)
	}
	return BreakGlassConfirmation(id, in), nil
}

// BreakGlassConfirmation is the ephemeral that asks the requester to
// confirm a one-line break-glass request kept as draft id.
func BreakGlassConfirmation(id string, in access.SubmitInput) *slack.Msg {
	var b strings.Builder
	fmt.Fprintf(&b, ":rotating_light: *Break glass on %s for %s?*\n", mrkdwn.Escape(in.Profile), access.FormatDuration(in.Duration))
	if len(in.Instances) > 0 {
		fmt.Fprintf(&b, "*Instances* `%s`\n", strings.Join(in.Instances, "`, `"))
	}
	b.WriteString(mrkdwn.Quote(in.Reason) + "\n")
	b.WriteString("You approve it yourself and access is granted at once. It is announced in the audit channel " +
		"and must be reviewed afterwards by someone else. Emergencies only.")
	text := b.String()
	confirmBtn := button(ActionConfirmBreakGlass, "Break glass now", id, slack.StyleDanger)
	cancel := button(ActionCancelBreakGlass, "Cancel", id, slack.StyleDefault)
	return &slack.Msg{
		ResponseType: slack.ResponseTypeEphemeral,
		Text:         "Break glass on " + mrkdwn.Escape(in.Profile) + "? Confirm or cancel.",
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(text),
			slack.NewActionBlock("access_break_glass", confirmBtn, cancel),
			contextBlock(fmt.Sprintf("Nothing is requested until you confirm. This expires in %s.", access.FormatDuration(BreakGlassConfirmTTL))),
		}},
	}
}

// breakGlassClicked handles Confirm and Cancel on a break-glass
// confirmation. Confirm submits the draft once (a second click, or a
// redelivery, finds it gone or its submit job already run); the
// confirmation is replaced by what happened.
func (f *Feature) breakGlassClicked(ctx context.Context, ic slack.InteractionCallback, a *slack.BlockAction) error {
	id := strings.TrimSpace(a.Value)
	d, err := f.drafts().Get(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		f.replaceConfirmation(ctx, ic, "This confirmation has expired or was already used: nothing more was requested. "+
			"`/access list` shows your requests; type the command again to break glass.")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read break-glass draft %s: %w", id, err)
	}
	in := d.Value.Input
	if in.Requester != ic.User.ID {
		msg, _ := access.Explain(access.ErrNotRequester)
		f.tellPrivately(ctx, ic, escapeText(msg))
		return nil
	}
	if a.ActionID == ActionCancelBreakGlass {
		if err := f.store.Delete(ctx, KindBreakGlassDraft, id, 0); err != nil {
			return fmt.Errorf("drop break-glass draft %s: %w", id, err)
		}
		f.replaceConfirmation(ctx, ic, "Cancelled: nothing was requested.")
		return nil
	}
	in.BreakGlass = true
	if err := f.enqueueSubmit(ctx, "break-glass/"+id, submitJob{Input: in, ResponseURL: d.Value.ResponseURL}); err != nil {
		return err
	}
	if err := f.store.Delete(ctx, KindBreakGlassDraft, id, 0); err != nil {
		// The submit job is keyed by the draft: a second click cannot file
		// a second request, it only finds the job already run.
		f.log.WarnContext(ctx, "dropping a confirmed break-glass draft", "draft", id, "err", err)
	}
	f.replaceConfirmation(ctx, ic, fmt.Sprintf(":rotating_light: Breaking glass on *%s* for %s: checking your request…",
		mrkdwn.Escape(in.Profile), access.FormatDuration(in.Duration)))
	return nil
}

// replaceConfirmation replaces the confirmation the user clicked on with
// text (through the click's response_url), or tells them privately.
func (f *Feature) replaceConfirmation(ctx context.Context, ic slack.InteractionCallback, text string) {
	router.AfterAck(ctx, func(ctx context.Context) {
		if ic.ResponseURL != "" {
			err := f.slack.PostToResponseURL(ctx, ic.ResponseURL, slackapi.Response{Text: text, ReplaceOriginal: true})
			if err == nil {
				return
			}
			f.log.WarnContext(ctx, "replacing the break-glass confirmation failed; answering privately", "user", ic.User.ID, "err", err)
		}
		f.tellPrivatelyNow(ctx, ic, text)
	})
}
