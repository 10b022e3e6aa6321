package slackfake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/slacksig"
)

// DefaultSigningSecret is the signing secret inbound requests are signed
// with.
const DefaultSigningSecret = "tokken-test-signing-secret"

// SigningSecret is the secret inbound requests are signed with; give it to
// the app under test as SLACK_SIGNING_SECRET.
func (f *Fake) SigningSecret() string { return f.secret }

// SlashCommand builds the request Slack sends to target (the app's
// /slack/commands URL) when a user runs cmd: form-encoded, signed with the
// fake's signing secret at the fake's now. Empty TriggerID and ResponseURL
// are filled with a fresh trigger issued for cmd.UserID and a fresh
// response_url served by this fake; team and app ids are filled too. It
// returns the request and the command as sent.
func (f *Fake) SlashCommand(tb testing.TB, target string, cmd slack.SlashCommand) (*http.Request, slack.SlashCommand) {
	tb.Helper()
	if cmd.TriggerID == "" {
		cmd.TriggerID = f.TriggerID(cmd.UserID)
	}
	if cmd.ResponseURL == "" {
		cmd.ResponseURL = f.ResponseURL(f.newResponseID())
	}
	cmd.TeamID, cmd.TeamDomain, cmd.APIAppID = orDefault(cmd.TeamID, TeamID), orDefault(cmd.TeamDomain, TeamName), orDefault(cmd.APIAppID, AppID)
	form := url.Values{
		"token": {"deprecated-verification-token"}, "team_id": {cmd.TeamID}, "team_domain": {cmd.TeamDomain},
		"channel_id": {cmd.ChannelID}, "channel_name": {cmd.ChannelName}, "user_id": {cmd.UserID},
		"user_name": {cmd.UserName}, "command": {cmd.Command}, "text": {cmd.Text},
		"api_app_id": {cmd.APIAppID}, "is_enterprise_install": {"false"},
		"response_url": {cmd.ResponseURL}, "trigger_id": {cmd.TriggerID},
	}
	return f.signedForm(tb, target, form), cmd
}

// Interaction builds the request Slack sends to target (the app's
// /slack/interactions URL) for cb: a form with the JSON "payload", signed
// like SlashCommand. Empty TriggerID and ResponseURL are filled as there;
// for an action on a message (Container or Channel and Message ts set) the
// response_url is bound to that message, so replace_original rewrites it.
func (f *Fake) Interaction(tb testing.TB, target string, cb slack.InteractionCallback) (*http.Request, slack.InteractionCallback) {
	tb.Helper()
	if cb.TriggerID == "" {
		cb.TriggerID = f.TriggerID(cb.User.ID)
	}
	if cb.ResponseURL == "" && cb.Type != slack.InteractionTypeViewSubmission && cb.Type != slack.InteractionTypeViewClosed {
		ch, ts := cb.Container.ChannelID, cb.Container.MessageTs
		if ch == "" {
			ch, ts = cb.Channel.ID, cb.Message.Timestamp
		}
		cb.ResponseURL = f.ResponseURLForMessage(f.newResponseID(), ch, ts)
	}
	cb.Team.ID, cb.Team.Domain, cb.APIAppID = orDefault(cb.Team.ID, TeamID), orDefault(cb.Team.Domain, TeamName), orDefault(cb.APIAppID, AppID)
	cb.User.TeamID = orDefault(cb.User.TeamID, cb.Team.ID) // the clicking user's own team, as Slack sends it
	payload, err := json.Marshal(&cb)
	if err != nil {
		tb.Fatalf("slackfake: encode interaction: %v", err)
	}
	return f.signedForm(tb, target, url.Values{"payload": {string(payload)}}), cb
}

func (f *Fake) signedForm(tb testing.TB, target string, form url.Values) *http.Request {
	tb.Helper()
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		tb.Fatalf("slackfake: request to %q: %v", target, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	f.mu.Lock()
	now := f.now()
	f.mu.Unlock()
	slacksig.SignRequest(req, []byte(f.secret), now, []byte(body))
	return req
}

func (f *Fake) newResponseID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextID("R")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
