package e2e

import (
	"strings"
	"testing"

	"github.com/tokken/tokken/testkit/slackfake"
)

// A /domain operation whose message Slack refuses to post (the bot is not in
// TOKKEN_DOMAIN_CHANNEL) does not wait in silence: the job is given up at
// once, the operation fails and frees the instance, the requester is told
// by DM what to do, and the operators get a domain_failed alert naming the
// channel.
func TestDomainChannelUndeliverable(t *testing.T) {
	w := newDomainWorld(t)
	const id = "i-0f00000000000003c"
	w.addWindows(id, "win-lost-01", nil)
	w.slack.SetBotMember(domainChannel, false)

	w.command(winAdmin, "join win-lost-01")
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.DMs(winAdmin) {
			if strings.Contains(messageJSON(m), domainChannel) && strings.Contains(messageJSON(m), "/invite @tokken") {
				return true
			}
		}
		return false
	})
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, c := range f.Calls("chat.postMessage") {
			if c.OK() && c.Channel == opsChannel && strings.Contains(c.Text, "domain_failed") &&
				strings.Contains(c.Fields.Get("attachments"), domainChannel) {
				return true
			}
		}
		return false
	})
	for _, c := range w.slack.Calls("chat.postMessage") {
		if c.Channel == domainChannel && c.OK() {
			t.Errorf("a post to a channel the bot is not in succeeded: %+v", c)
		}
	}
	// The instance is free again.
	_, resp := w.command(winAdmin, "status win-lost-01")
	if got := w.lateReply(resp, "domain-status"); strings.Contains(got, "In progress") {
		t.Errorf("the failed operation still holds the instance: %q", got)
	}
}
