package alertui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/handlers/router"
)

// action handles a click on an alert message's buttons. The button value
// is the alert key; everything else comes from the store. Refusals and
// failures are shown to the clicker only, and change nothing.
func (u *UI) action(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	if len(ic.ActionCallback.BlockActions) == 0 {
		return nil, nil
	}
	act := ic.ActionCallback.BlockActions[0]
	user := ic.User.ID
	channel := ic.Channel.ID
	if channel == "" {
		channel = ic.Container.ChannelID
	}
	// Answers to the clicker go out after the click is acknowledged
	// (router.AfterAck): the Web API round trip stays out of the ack.
	say := func(text string) (any, error) {
		router.AfterAck(ctx, func(ctx context.Context) {
			if err := u.ephemeral(ctx, channel, user, text); err != nil {
				u.d.Log.ErrorContext(ctx, "could not answer the clicker", "user", user, "err", err)
			}
		})
		return nil, nil
	}

	rec, err := u.d.Service.Get(ctx, act.Value)
	if errors.Is(err, bot.ErrNotFound) {
		return say(":warning: tokken no longer knows this alert (it may have expired); nothing was changed.")
	}
	if err != nil {
		return nil, err
	}
	// Every button, Request access included, is for those the alert rules
	// (alert_act) let act on this alert.
	ok, why, err := u.authorize(ctx, user, &rec.Alert, alert.Scope{})
	if err != nil {
		return nil, err
	}
	if !ok {
		if act.ActionID == ActionRequestAccess {
			why += " Request access on an alert is for those who may act on it; `/access` stays open to you under the access rules."
		}
		return say(why)
	}
	if act.ActionID == ActionRequestAccess {
		return u.requestAccess(ctx, ic, rec, say)
	}
	now := u.d.Now()
	switch act.ActionID {
	case ActionAck:
		_, err := u.d.Service.Ack(ctx, rec.Alert.Key, user)
		if errors.Is(err, alert.ErrAlreadyAcked) || errors.Is(err, alert.ErrClosedAlert) {
			return say(":information_source: " + capitalize(err.Error()) + "; nothing was changed.")
		}
		return nil, err
	case ActionSilence1h, ActionSilence4h, ActionSilenceTomorrow:
		until := now.Add(time.Hour)
		switch act.ActionID {
		case ActionSilence4h:
			until = now.Add(4 * time.Hour)
		case ActionSilenceTomorrow:
			until = alert.TomorrowAt(now, 9, loc(u.d.View))
		}
		sil, err := u.d.Service.SilenceAlert(ctx, rec.Alert.Key, user, until, "")
		if errors.Is(err, alert.ErrClosedAlert) {
			return say(":information_source: This alert is already closed; nothing was silenced.")
		}
		if err != nil {
			return nil, err
		}
		note := ""
		if rec.Alert.Source == alert.SourceMackerel {
			note = u.downtime(ctx, sil)
		}
		return say(fmt.Sprintf(":no_bell: Silenced %s until %s (`%s`); `/alerts unsilence %s` ends it early.%s",
			mrkdwn.Escape(sil.Scope.String()), until.In(loc(u.d.View)).Format("01/02 15:04 MST"), sil.ID, sil.ID, note))
	case ActionClose:
		return u.closeAlert(ctx, rec, user, say)
	}
	return say(":warning: tokken does not know this button; nothing was changed.")
}

func (u *UI) closeAlert(ctx context.Context, rec alert.Record, user string, say func(string) (any, error)) (any, error) {
	switch {
	case rec.Alert.Source != alert.SourceMackerel || rec.Alert.Kind != alert.KindAlert:
		return say(":information_source: Only Mackerel alerts can be closed from Slack.")
	case !rec.Alert.Open:
		return say(":information_source: This alert is already closed.")
	case u.d.Closer == nil:
		return say(":information_source: Closing needs MACKEREL_API_KEY, which this tokken does not have. Close it in Mackerel: " + mrkdwn.Escape(rec.Alert.URL))
	}
	reason := "Closed from Slack by " + user + " via tokken"
	if err := u.d.Closer.Close(ctx, rec.Alert.ID, reason); err != nil {
		u.d.Log.WarnContext(ctx, "mackerel close failed", "alert", rec.Alert.Key, "err", err)
		return say(":warning: Mackerel did not close the alert: " + mrkdwn.Escape(mrkdwn.Truncate(err.Error(), 300)))
	}
	if err := u.d.Service.Note(ctx, rec.Alert.Key, alert.Line{Kind: alert.LineCloseReq, Actor: user}); err != nil {
		return nil, err
	}
	return say(":white_check_mark: Mackerel closed the alert; the message turns green when Mackerel's notification arrives.")
}

// requestAccess opens the access modal pre-filled, or explains the
// command to run when no access UI is wired. The clicker may act on the
// alert (checked by action); the access request itself is authorized by
// the access policies when it is submitted.
func (u *UI) requestAccess(ctx context.Context, ic slack.InteractionCallback, rec alert.Record, say func(string) (any, error)) (any, error) {
	a := rec.Alert
	p := AccessPrefill{InstanceID: a.InstanceID(), AlertKey: a.Key, Reason: accessReason(a)}
	if a.Host != nil {
		p.HostName = a.Host.Name
	}
	if p.InstanceID == "" && p.HostName == "" {
		return say(":information_source: This alert names no host to request access to.")
	}
	if u.d.Access != nil {
		if err := u.d.Access.Open(ctx, ic.TriggerID, ic.User.ID, p); err != nil {
			u.d.Log.WarnContext(ctx, "access modal did not open", "alert", a.Key, "err", err)
		} else {
			return nil, nil
		}
	}
	target := p.InstanceID
	if target == "" {
		target = p.HostName
	}
	return say(fmt.Sprintf(":key: Request access with:\n`/access &lt;profile&gt; 1h %s %s`\n(`/access help` lists the profiles.)",
		mrkdwn.Escape(target), mrkdwn.Escape(p.Reason)))
}

// accessReason quotes the alert in a request's reason.
func accessReason(a alert.Alert) string {
	r := "investigating alert: " + Title(a)
	if a.URL != "" {
		r += " " + a.URL
	}
	return mrkdwn.Truncate(strings.ReplaceAll(r, "\n", " "), 280)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
