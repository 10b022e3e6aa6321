package accessui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// Prefill is what another feature knows when it sends someone to the
// request modal, e.g. the alert behind "Request access to this host".
type Prefill struct {
	// InstanceID is the instance, if known; otherwise HostName is looked up
	// as an exact (case-insensitive) Name tag in the instance index.
	InstanceID string
	HostName   string
	Reason     string
	Ticket     string
}

// OpenPrefilled opens the request modal for user with p filled in. Like
// every modal it must run inside the acknowledging request (trigger_id
// lives three seconds). An instance that cannot be resolved is left for the
// user to pick; the profile is pre-chosen when exactly one ssm profile the
// user may request can target the instance. Nothing is requested until the
// user submits, and the submission is checked like any other.
func (f *Feature) OpenPrefilled(ctx context.Context, triggerID, user string, p Prefill) error {
	choices, err := f.choices(ctx, user)
	if err != nil {
		return fmt.Errorf("open a prefilled request modal: %w", err)
	}
	if len(choices) == 0 {
		return errors.New("open a prefilled request modal: there is no profile the user may request")
	}
	v := RequestModal(choices)
	target, ok := f.resolveInstance(ctx, p)
	prefillModal(&v, choices, target, ok, p)
	if _, err := f.slack.OpenView(ctx, triggerID, v); err != nil {
		return fmt.Errorf("open a prefilled request modal: %w", err)
	}
	return nil
}

// resolveInstance finds p's instance in the instance index (with its tags,
// so profile selectors can match). A valid id the index does not know yet
// is still offered, without tags; a host name must match one instance.
func (f *Feature) resolveInstance(ctx context.Context, p Prefill) (bot.Target, bool) {
	query, byID := p.InstanceID, true
	if query == "" {
		query, byID = p.HostName, false
	}
	if query == "" || f.search == nil {
		return bot.Target{}, false
	}
	found, err := f.search.Search(ctx, query, MaxOptions)
	if err != nil {
		f.log.WarnContext(ctx, "prefill: instance search failed", "err", err)
	}
	var match []bot.Target
	for _, t := range found {
		if (byID && t.ID == query) || (!byID && strings.EqualFold(t.Tags["Name"], query)) {
			match = append(match, t)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], true
	case byID && bot.IsInstanceID(query):
		return bot.Target{ID: query}, true
	}
	return bot.Target{}, false
}

// prefillModal sets the initial values of a RequestModal.
func prefillModal(v *slack.ModalViewRequest, choices []Choice, target bot.Target, haveTarget bool, p Prefill) {
	var profile string
	if haveTarget {
		for _, c := range choices {
			if c.Profile.Kind == access.KindSSM && c.Profile.Instances.Selects(target) {
				if profile != "" {
					profile = "" // more than one fits: let the user choose
					break
				}
				profile = c.Profile.Name
			}
		}
	}
	for _, b := range v.Blocks.BlockSet {
		in, ok := b.(*slack.InputBlock)
		if !ok {
			continue
		}
		switch el := in.Element.(type) {
		case *slack.SelectBlockElement:
			if in.BlockID == blockProfile && profile != "" {
				for _, o := range el.Options {
					if o.Value == profile {
						el.InitialOption = o
					}
				}
			}
		case *slack.MultiSelectBlockElement:
			if in.BlockID == blockTargets && haveTarget {
				el.InitialOptions = []*slack.OptionBlockObject{targetOption(target)}
			}
		case *slack.PlainTextInputBlockElement:
			switch in.BlockID {
			case blockReason:
				el.InitialValue = mrkdwn.Truncate(p.Reason, access.MaxReasonChars)
			case blockTicket:
				el.InitialValue = mrkdwn.Truncate(p.Ticket, MaxTicketChars)
			}
		}
	}
}

// targetOption is the select option for an instance: its id, labelled with
// its Name tag when it has one.
func targetOption(t bot.Target) *slack.OptionBlockObject {
	label := t.ID
	if n := t.Tags["Name"]; n != "" {
		label += " " + n
	}
	return option(t.ID, label)
}
