package accessui

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// Block ids of the modals' inputs; their action ids are "access:<block>".
const (
	blockProfile    = "profile"
	blockTargets    = "targets"
	blockDuration   = "duration"
	blockReason     = "reason"
	blockTicket     = "ticket"
	blockBreakGlass = "break_glass"
)

// MaxTicketChars bounds the optional ticket id or link, in characters
// (runes) as the modal's max_length counts them.
const MaxTicketChars = 300

// Choice is a profile offered in the request modal. BreakGlassOnly marks a
// profile the user may only request as break-glass (e.g. production at
// night for on-call).
type Choice struct {
	Profile        access.Profile
	BreakGlassOnly bool
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func option(value, text string) *slack.OptionBlockObject {
	// Option text can be an instance's Name tag or what the user typed.
	return slack.NewOptionBlockObject(value, plain(mrkdwn.PlainText(mrkdwn.Truncate(text, 75))), nil)
}

func actionID(block string) string { return Namespace + ":" + block }

// RequestModal is the /access form: profile, instances (external select,
// searched as the user types), duration (the profiles' presets), reason,
// ticket, and break-glass.
func RequestModal(choices []Choice) slack.ModalViewRequest {
	var profiles []*slack.OptionBlockObject
	var durations []time.Duration
	breakGlass := false
	for _, c := range choices {
		p := c.Profile
		label := p.Name
		if c.BreakGlassOnly {
			label += " (break-glass only)"
		}
		if p.Description != "" {
			label += " — " + p.Description
		}
		profiles = append(profiles, option(p.Name, label))
		for _, d := range append(slices.Clone(p.Presets), p.DefaultDuration) {
			if d > 0 && d <= p.MaxDuration && !slices.Contains(durations, d) {
				durations = append(durations, d)
			}
		}
		breakGlass = breakGlass || p.BreakGlass
	}
	slices.Sort(durations)
	var durOpts []*slack.OptionBlockObject
	for _, d := range durations {
		durOpts = append(durOpts, option(access.FormatDuration(d), access.FormatDuration(d)))
	}

	profileSel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose a profile"), actionID(blockProfile), profiles...)
	minQuery := 0
	targetSel := &slack.MultiSelectBlockElement{
		Type: slack.MultiOptTypeExternal, Placeholder: plain("Search by Name tag or instance id"),
		ActionID: actionID(blockTargets), MinQueryLength: &minQuery,
	}
	maxTargets := access.MaxInstances
	targetSel.MaxSelectedItems = &maxTargets
	durSel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("How long"), actionID(blockDuration), durOpts...)
	reason := slack.NewPlainTextInputBlockElement(plain("What will you do, and why now?"), actionID(blockReason))
	reason.Multiline, reason.MaxLength = true, access.MaxReasonChars
	ticket := slack.NewPlainTextInputBlockElement(plain("INC-1234 or https://…"), actionID(blockTicket))
	ticket.MaxLength = MaxTicketChars

	targetsBlock := slack.NewInputBlock(blockTargets, plain("Instances"), plain("Needed for ssm profiles, not allowed for the others."), targetSel)
	targetsBlock.Optional = true
	ticketBlock := slack.NewInputBlock(blockTicket, plain("Ticket or link"), nil, ticket)
	ticketBlock.Optional = true
	blocks := []slack.Block{
		slack.NewInputBlock(blockProfile, plain("Profile"), nil, profileSel),
		targetsBlock,
		slack.NewInputBlock(blockDuration, plain("Duration"), plain("Counts from approval. Each profile has a maximum."), durSel),
		slack.NewInputBlock(blockReason, plain("Reason"), nil, reason),
		ticketBlock,
	}
	if slices.ContainsFunc(choices, func(c Choice) bool { return c.Profile.Kind == access.KindIdentityCenter }) {
		blocks = slices.Insert(blocks, 2, accountBlock(choices))
	}
	if slices.ContainsFunc(choices, func(c Choice) bool { return c.Profile.Kind == access.KindECSExec }) {
		blocks = slices.Insert(blocks, 2, ecsBlocks(choices)...)
	}
	if breakGlass {
		cb := slack.NewCheckboxGroupsBlockElement(actionID(blockBreakGlass),
			slack.NewOptionBlockObject("yes", plain("Break glass: approve it myself now"),
				plain("Emergencies only. Announced in the audit channel and reviewed afterwards.")))
		bg := slack.NewInputBlock(blockBreakGlass, plain("Emergency"), nil, cb)
		bg.Optional = true
		blocks = append(blocks, bg)
	}
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: CallbackRequest, Title: plain("Request access"),
		Submit: plain("Request"), Close: plain("Cancel"), Blocks: slack.Blocks{BlockSet: blocks},
	}
}

// requestForm is a submitted request modal.
type requestForm struct {
	Profile    string
	Instances  []string
	Duration   time.Duration
	Reason     string
	Ticket     string
	BreakGlass bool
	ECSTarget  string // ecs-exec: the task id if one is picked, else the service name
	ECSService string // ecs-exec: the service picked, if any
	Account    string // identity-center: the AWS account picked, if any
}

func stateValue(st *slack.ViewState, block string) slack.BlockAction {
	if st == nil {
		return slack.BlockAction{}
	}
	return st.Values[block][actionID(block)]
}

// parseRequestForm reads the modal's values; field errors are keyed by
// block id, as response_action "errors" wants them.
func parseRequestForm(st *slack.ViewState) (requestForm, map[string]string) {
	errs := map[string]string{}
	var f requestForm
	f.Profile = stateValue(st, blockProfile).SelectedOption.Value
	if f.Profile == "" {
		errs[blockProfile] = "Choose a profile."
	}
	for _, o := range stateValue(st, blockTargets).SelectedOptions {
		if !bot.IsInstanceID(o.Value) {
			errs[blockTargets] = fmt.Sprintf("%q is not an instance id.", mrkdwn.Truncate(o.Value, 40))
			break
		}
		f.Instances = append(f.Instances, o.Value)
	}
	if d := stateValue(st, blockDuration).SelectedOption.Value; d == "" {
		errs[blockDuration] = "Choose how long."
	} else if dur, err := access.ParseDuration(d); err != nil {
		errs[blockDuration] = err.Error()
	} else {
		f.Duration = dur
	}
	f.Reason = strings.TrimSpace(stateValue(st, blockReason).Value)
	switch {
	case f.Reason == "":
		errs[blockReason] = "Say what you will do and why: approvers decide on it."
	case access.ReasonTooLong(f.Reason) != "":
		errs[blockReason] = access.ReasonTooLong(f.Reason)
	}
	f.Ticket = strings.TrimSpace(stateValue(st, blockTicket).Value)
	if n := utf8.RuneCountInString(f.Ticket); n > MaxTicketChars {
		errs[blockTicket] = fmt.Sprintf("The ticket is %d characters; it may have at most %d.", n, MaxTicketChars)
	}
	f.BreakGlass = len(stateValue(st, blockBreakGlass).SelectedOptions) > 0
	parseECSTarget(st, &f, errs)
	if a := stateValue(st, blockAccount).SelectedOption.Value; a != "" {
		if access.ValidAccountID(a) {
			f.Account = a
		} else {
			errs[blockAccount] = fmt.Sprintf("%q is not an AWS account id.", mrkdwn.Truncate(a, 40))
		}
	}
	return f, errs
}

// checkForm checks f against the profile the user chose, the way Submit
// will, so mistakes show on the field at once.
func checkForm(f requestForm, choices []Choice, errs map[string]string) {
	i := slices.IndexFunc(choices, func(c Choice) bool { return c.Profile.Name == f.Profile })
	if i < 0 {
		if f.Profile != "" {
			errs[blockProfile] = "You may not request this profile any more."
		}
		return
	}
	c := choices[i]
	p := c.Profile
	if f.Duration > p.MaxDuration {
		errs[blockDuration] = fmt.Sprintf("%s allows at most %s.", p.Name, access.FormatDuration(p.MaxDuration))
	}
	switch {
	case p.Kind == access.KindSSM && len(f.Instances) == 0:
		errs[blockTargets] = "Pick the instances you need a session on."
	case p.Kind != access.KindSSM && len(f.Instances) > 0:
		errs[blockTargets] = p.Name + " grants a role, not instances: clear this field."
	}
	checkECSTarget(f, p, errs)
	checkAccount(f, p, errs)
	switch {
	case f.BreakGlass && !p.BreakGlass:
		errs[blockBreakGlass] = p.Name + " does not allow break-glass: wait for an approver."
	case c.BreakGlassOnly && !f.BreakGlass:
		errs[blockProfile] = "Right now you may only request " + p.Name + " as break-glass (tick Emergency below)."
	}
}

// ReasonModal asks for the reason of a denial. meta is the request id, or
// "<request id>/<extension id>" for an extension.
func ReasonModal(callbackID, title, meta, prompt string) slack.ModalViewRequest {
	in := slack.NewPlainTextInputBlockElement(plain("The requester sees this."), actionID(blockReason))
	in.Multiline, in.MaxLength = true, access.MaxReasonChars
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackID, Title: plain(title), PrivateMetadata: meta,
		Submit: plain("Deny"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(mrkdwn.Escape(prompt)),
			slack.NewInputBlock(blockReason, plain("Reason"), nil, in),
		}},
	}
}

// ExtendModal asks how much longer and why. Durations are the profile's
// presets (at most its maximum).
func ExtendModal(r access.Request, p access.Profile) slack.ModalViewRequest {
	var opts []*slack.OptionBlockObject
	for _, d := range append(slices.Clone(p.Presets), p.DefaultDuration) {
		v := access.FormatDuration(d)
		if d > 0 && d <= p.MaxDuration && !slices.ContainsFunc(opts, func(o *slack.OptionBlockObject) bool { return o.Value == v }) {
			opts = append(opts, option(v, "+"+v))
		}
	}
	durSel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("How much longer"), actionID(blockDuration), opts...)
	reason := slack.NewPlainTextInputBlockElement(plain("Why do you need more time?"), actionID(blockReason))
	reason.Multiline, reason.MaxLength = true, access.MaxReasonChars
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: CallbackExtend, Title: plain("Extend access"), PrivateMetadata: r.ID,
		Submit: plain("Ask"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(fmt.Sprintf("Extend `%s` (*%s*). It goes through approval like the request did.", r.ID, mrkdwn.Escape(r.Profile))),
			slack.NewInputBlock(blockDuration, plain("More time"), nil, durSel),
			slack.NewInputBlock(blockReason, plain("Reason"), nil, reason),
		}},
	}
}
