package e2e

// The /domain story end to end: the tokken binary (`tokken serve`, `tokken
// invoke`) with an embedded store, Slack played by slackfake (signed slash
// commands and clicks in, Web API calls recorded), EC2 played by awsfake
// through tokken's real SDK clients, and a Windows instance played by a
// goroutine that answers the bot's tags the way infra/windows/userdata.ps1
// does. The example policy set shipped in policies/ decides: U0WIN00001 is a
// Windows admin (Env=prod needs one approval), U0SRE00001 is an SRE (may
// approve), U0DEV00001 is neither.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	domainChannel = "C0DOMAIN01"
	opsChannel    = "C0TOKKENOPS" // where the shipped routes.yaml sends tokken's own alerts
	winAdmin      = "U0WIN00001"
	sre           = "U0SRE00001"
	developer     = "U0DEV00001"
	waitLong      = 45 * time.Second // the race-built binary on a shared 2-core machine
)

// domainWorld is one tokken serving /domain against the fakes.
type domainWorld struct {
	t     *testing.T
	slack *slackfake.Fake
	aws   *awsfake.Fake
	srv   *server
	dir   string
	env   []string
}

// newDomainWorld starts the fakes and `tokken serve`; extra adds variables
// (e.g. a short TOKKEN_DOMAIN_TIMEOUT).
func newDomainWorld(t *testing.T, extra ...string) *domainWorld {
	t.Helper()
	w := &domainWorld{t: t, slack: slackfake.New(t), aws: awsfake.New(t), dir: t.TempDir()}
	w.slack.AddChannel(domainChannel, "domain-ops")
	w.slack.AddChannel(opsChannel, "tokken-ops")
	for _, u := range []string{winAdmin, sre, developer} {
		w.slack.AddUser(slackfake.User{ID: u, Name: strings.ToLower(u)})
	}
	w.env = tokkenEnv(w.slack, w.dir, "TOKKEN_DOMAIN_CHANNEL="+domainChannel, "TOKKEN_DOMAIN_CHECK_EVERY=300ms")
	for k, v := range w.aws.Env() {
		w.env = append(w.env, k+"="+v)
	}
	w.env = append(w.env, extra...)
	w.srv = startServeIn(t, w.dir, w.env)
	return w
}

// addWindows adds a running Windows instance.
func (w *domainWorld) addWindows(id, name string, tags map[string]string) {
	w.aws.EC2().AddInstance(awsfake.Instance{ID: id, Name: name, Platform: "windows", Tags: tags})
}

// command runs /domain text as user; it returns the immediate answer and
// the id of the command's response_url, where late answers arrive.
func (w *domainWorld) command(user, text string) (ack, responseID string) {
	w.t.Helper()
	req, cmd := w.slack.SlashCommand(w.t, w.srv.base+"/slack/commands",
		slack.SlashCommand{Command: "/domain", Text: text, UserID: user, ChannelID: domainChannel})
	status, body := do(w.t, req)
	var reply struct{ Text string }
	if status != 200 || json.Unmarshal([]byte(body), &reply) != nil {
		w.t.Fatalf("/domain %s: %d %q", text, status, body)
	}
	return reply.Text, cmd.ResponseURL[strings.LastIndex(cmd.ResponseURL, "/")+1:]
}

// lateReply waits for a post to the response_url that contains want.
func (w *domainWorld) lateReply(responseID, want string) string {
	w.t.Helper()
	var got string
	w.slack.WaitFor(w.t, waitLong, func(f *slackfake.Fake) bool {
		for _, c := range f.ResponsePosts(responseID) {
			if strings.Contains(c.Text, want) {
				got = c.Text
				return true
			}
		}
		return false
	})
	return got
}

// opMessage waits for the operation message about instance id and returns
// its ts.
func (w *domainWorld) opMessage(id string) string {
	w.t.Helper()
	var ts string
	w.slack.WaitFor(w.t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(domainChannel) {
			if m.ThreadTS == "" && strings.Contains(m.Text, id) && strings.HasPrefix(m.Text, "Domain ") {
				ts = m.TS
				return true
			}
		}
		return false
	})
	return ts
}

// waitThread waits until the thread under ts has a reply containing want.
func (w *domainWorld) waitThread(ts, want string) {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.Thread(domainChannel, ts) {
			if strings.Contains(m.Text, want) {
				return true
			}
		}
		return false
	})
}

// waitMessage waits until the message at ts has fallback text containing want.
func (w *domainWorld) waitMessage(ts, want string) slackfake.Message {
	w.t.Helper()
	var msg slackfake.Message
	w.slack.WaitFor(w.t, waitLong, func(f *slackfake.Fake) bool {
		m, ok := f.Message(domainChannel, ts)
		msg = m
		return ok && strings.Contains(m.Text, want)
	})
	return msg
}

// waitEphemeral waits for an ephemeral message to user containing want.
func (w *domainWorld) waitEphemeral(user, want string) {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.Ephemerals(user) {
			if strings.Contains(m.Text, want) {
				return true
			}
		}
		return false
	})
}

// click presses a button of the operation message at ts as user.
func (w *domainWorld) click(user, ts, actionID string) {
	w.t.Helper()
	msg, ok := w.slack.Message(domainChannel, ts)
	if !ok {
		w.t.Fatalf("no message %s", ts)
	}
	value := ""
	for _, b := range msg.Blocks.BlockSet {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == actionID {
					value = btn.Value
				}
			}
		}
	}
	if value == "" {
		w.t.Fatalf("message %s has no %s button", ts, actionID)
	}
	var ic slack.InteractionCallback
	ic.Type = slack.InteractionTypeBlockActions
	ic.User.ID = user
	ic.Channel.ID = domainChannel
	ic.Container = slack.Container{Type: "message", ChannelID: domainChannel, MessageTs: ts}
	ic.Message.Timestamp = ts
	ic.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionID, BlockID: "actions", Value: value}}
	req, _ := w.slack.Interaction(w.t, w.srv.base+"/slack/interactions", ic)
	if status, body := do(w.t, req); status != 200 {
		w.t.Fatalf("click %s: %d %q", actionID, status, body)
	}
}

// instance plays a Windows instance running infra/windows/userdata.ps1: on
// every reboot it reads the request tags, acknowledges the request, reports
// progress, and after a short while reports the outcome answer gives for
// the requested action ("join" or "unjoin"): a domain-status value and,
// for "failed", a reason. A nil answer means the instance never answers.
func (w *domainWorld) instance(id string, answer func(control string) (status, reason string)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	w.t.Cleanup(func() { cancel(); wg.Wait() })
	ec2 := w.aws.EC2()
	go func() {
		defer wg.Done()
		for boots := 0; ; boots++ {
			if err := w.aws.WaitFor(ctx, func() bool { return ec2.RebootCount(id) > boots }); err != nil {
				return // the test is over
			}
			tags := ec2.Tags(id)
			ec2.SetTag(id, "domain-ack", tags["domain-request"])
			ec2.SetTag(id, "domain-status", "pending")
			reads := w.tagReads(id)
			ec2.SetTag(id, "domain-progress", tags["domain"]+"ing")
			if answer == nil {
				continue
			}
			// The instance works at least until tokken has read its progress
			// once, so that "joining" is reported however late a loaded
			// machine runs tokken's check.
			if err := w.aws.WaitFor(ctx, func() bool { return w.tagReads(id) > reads }); err != nil {
				return
			}
			select { // the instance working, not synchronisation
			case <-time.After(300 * time.Millisecond):
			case <-ctx.Done():
				return
			}
			status, reason := answer(tags["domain"])
			if reason != "" {
				ec2.SetTag(id, "domain-reason", reason)
			}
			ec2.SetTag(id, "domain-progress", "done")
			ec2.SetTag(id, "domain-status", status)
		}
	}()
}

// tagReads counts tokken's DescribeInstances calls naming instance id (a
// domain check reads the instance's tags so; the fleet sweep lists with
// filters instead).
func (w *domainWorld) tagReads(id string) int {
	n := 0
	for _, c := range w.aws.Calls(awsfake.EC2Service, "DescribeInstances") {
		if c.Param("InstanceId.1") == id {
			n++
		}
	}
	return n
}

// succeeds is an instance whose join and leave work.
func succeeds(control string) (string, string) {
	if control == "unjoin" {
		return "unjoined", ""
	}
	return "joined", ""
}

func TestDomainJoinThenLeave(t *testing.T) {
	w := newDomainWorld(t)
	const id = "i-0a1b2c3d4e5f60718"
	w.addWindows(id, "win-app-01", map[string]string{"Env": "staging"})
	w.instance(id, succeeds)

	ack, resp := w.command(winAdmin, "join win-app-01")
	if !strings.Contains(ack, "Checking win-app-01") {
		t.Fatalf("ack %q", ack)
	}
	w.lateReply(resp, "Started d-")
	ts := w.opMessage(id)
	w.waitThread(ts, "win-app-01 ("+id+") is joined.")
	msg := w.waitMessage(ts, "joined")
	if strings.Contains(blocksJSON(t, msg), "domain:cancel") {
		t.Error("a finished operation still offers Cancel")
	}
	tags := w.aws.EC2().Tags(id)
	if tags["domain"] != "join" || !strings.HasPrefix(tags["domain-request"], "d-") || w.aws.EC2().RebootCount(id) != 1 {
		t.Fatalf("tags %v, reboots %d", tags, w.aws.EC2().RebootCount(id))
	}
	for _, want := range []string{"Tagged domain=join", "Reboot requested", "domain-progress: joining", "domain-status: joined"} {
		w.waitThread(ts, want)
	}
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { // the requester is told the outcome
		for _, m := range f.DMs(winAdmin) {
			if strings.Contains(m.Text, "is joined") {
				return true
			}
		}
		return false
	})

	// Already joined: refused unless forced.
	_, resp = w.command(winAdmin, "join "+id)
	w.lateReply(resp, "already joined (tag domain-status=joined). Add --force")

	// Status says where it stands.
	_, resp = w.command(developer, "status win-app-01")
	w.lateReply(resp, "domain-status=joined (for request d-")

	// Leave.
	_, resp = w.command(winAdmin, "leave win-app-01")
	w.lateReply(resp, "Started d-")
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(domainChannel) {
			if m.ThreadTS == "" && strings.HasPrefix(m.Text, "Domain leave") && strings.Contains(m.Text, "unjoined") {
				return true
			}
		}
		return false
	})
	if got := w.aws.EC2().Tags(id)["domain"]; got != "unjoin" || w.aws.EC2().RebootCount(id) != 2 {
		t.Errorf("after leave: domain=%q, reboots %d", got, w.aws.EC2().RebootCount(id))
	}
	w.srv.stop()
	if !strings.Contains(w.srv.Logs(), `"audit_action":"domain.joined"`) || !strings.Contains(w.srv.Logs(), `"audit_action":"domain.unjoined"`) {
		t.Error("join and leave not audited")
	}
}

func blocksJSON(t *testing.T, m slackfake.Message) string {
	t.Helper()
	b, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDomainFailureAndTimeout(t *testing.T) {
	w := newDomainWorld(t, "TOKKEN_DOMAIN_TIMEOUT=4s")
	const failing, silent = "i-0f00000000000001a", "i-0f00000000000002b"
	w.addWindows(failing, "win-bad-01", nil)
	w.addWindows(silent, "win-mute-01", nil)
	w.instance(failing, func(string) (string, string) { return "failed", "Add-Computer: the user name or password is incorrect" })
	w.instance(silent, nil)

	w.command(winAdmin, "join win-bad-01")
	ts := w.opMessage(failing)
	w.waitThread(ts, "Failed: Add-Computer: the user name or password is incorrect")
	msg := w.waitMessage(ts, "failed")
	if !strings.Contains(blocksJSON(t, msg), "the user name or password is incorrect") {
		t.Errorf("the failed message does not show the reason: %s", blocksJSON(t, msg))
	}

	w.command(winAdmin, "join win-mute-01")
	ts = w.opMessage(silent)
	w.waitThread(ts, "domain-progress: joining") // the instance started, then went quiet
	w.waitThread(ts, "Timed out: no answer within 4s (last progress: joining)")
	w.waitMessage(ts, "timed out")
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { // a tokken alert, through the alert pipeline
		for _, c := range f.Calls("chat.postMessage") {
			if c.OK() && c.Channel == opsChannel && c.ThreadTS == "" && strings.Contains(c.Text, "domain_timeout") &&
				strings.Contains(c.Fields.Get("attachments"), "win-mute-01") {
				return true
			}
		}
		return false
	})
	// The instance is free again.
	_, resp := w.command(winAdmin, "status win-mute-01")
	if got := w.lateReply(resp, "domain-status=pending"); strings.Contains(got, "In progress") {
		t.Errorf("a timed-out operation still holds the instance: %q", got)
	}
}

func TestDomainProdNeedsApproval(t *testing.T) {
	w := newDomainWorld(t)
	const prod, prod2 = "i-0e00000000000001c", "i-0e00000000000002d"
	w.addWindows(prod, "win-prod-01", map[string]string{"Env": "prod"})
	w.addWindows(prod2, "win-prod-02", map[string]string{"Env": "prod"})
	w.instance(prod, succeeds)

	_, resp := w.command(winAdmin, "join win-prod-01")
	w.lateReply(resp, "needs approval")
	ts := w.opMessage(prod)
	msg := w.waitMessage(ts, "pending approval")
	if b := blocksJSON(t, msg); !strings.Contains(b, "domain:approve") || !strings.Contains(b, "domain:deny") {
		t.Fatalf("no Approve/Deny on the approval card: %s", b)
	}
	if w.aws.EC2().Tags(prod)["domain"] != "" || w.aws.EC2().RebootCount(prod) != 0 {
		t.Fatal("the instance was touched before approval")
	}

	w.click(winAdmin, ts, "domain:approve") // the requester
	w.waitEphemeral(winAdmin, "You cannot decide on your own request")
	w.click(developer, ts, "domain:approve") // not an approver
	w.waitEphemeral(developer, "You may not decide on")
	if w.aws.EC2().RebootCount(prod) != 0 {
		t.Fatal("a refused approval started the operation")
	}

	w.click(sre, ts, "domain:approve")
	w.waitThread(ts, "Approved by "+sre)
	w.waitThread(ts, "win-prod-01 ("+prod+") is joined.")
	msg = w.waitMessage(ts, "joined")
	if !strings.Contains(blocksJSON(t, msg), "approved by \\u003c@"+sre+"\\u003e") {
		t.Errorf("the message does not say who approved: %s", blocksJSON(t, msg))
	}

	// Deny asks for a reason in a modal; the requester sees it.
	w.command(winAdmin, "leave win-prod-02 --force")
	ts2 := w.opMessage(prod2)
	w.waitMessage(ts2, "pending approval")
	w.click(sre, ts2, "domain:deny")
	var view slackfake.View
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, v := range f.Views() {
			if v.Request.CallbackID == "domain:deny_reason" {
				view = v
				return true
			}
		}
		return false
	})
	var sub slack.InteractionCallback
	sub.Type = slack.InteractionTypeViewSubmission
	sub.User.ID = sre
	sub.View = slack.View{ID: view.ID, Hash: view.Hash, CallbackID: view.Request.CallbackID, PrivateMetadata: view.Request.PrivateMetadata,
		State: &slack.ViewState{Values: map[string]map[string]slack.BlockAction{"reason": {"reason_input": {Value: "change freeze <!channel>"}}}}}
	req, _ := w.slack.Interaction(t, w.srv.base+"/slack/interactions", sub)
	if status, body := do(t, req); status != 200 || body != "" {
		t.Fatalf("deny submission: %d %q", status, body)
	}
	msg = w.waitMessage(ts2, "denied")
	if b := blocksJSON(t, msg); !strings.Contains(b, "change freeze \\u0026lt;!channel\\u0026gt;") || strings.Contains(b, "domain:approve") {
		t.Errorf("denied message: %s", b)
	}
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		for _, m := range f.DMs(winAdmin) {
			if strings.Contains(m.Text, "was denied by "+sre+": change freeze") {
				return true
			}
		}
		return false
	})
	if w.aws.EC2().RebootCount(prod2) != 0 || w.aws.EC2().Tags(prod2)["domain"] != "" {
		t.Error("a denied operation touched the instance")
	}
}

func TestDomainRefusals(t *testing.T) {
	w := newDomainWorld(t)
	const busy = "i-0d00000000000001e"
	w.addWindows(busy, "win-busy-01", nil)
	w.instance(busy, nil) // acknowledges, never finishes: stays in progress
	w.addWindows("i-0d00000000000002f", "web", nil)
	w.addWindows("i-0d000000000000030", "web", nil)
	w.addWindows("i-0d000000000000041", "win-solo", nil)
	w.aws.EC2().AddInstance(awsfake.Instance{ID: "i-0d000000000000052", Name: "linux-01"})
	w.aws.EC2().AddInstance(awsfake.Instance{ID: "i-0d000000000000063", Name: "win-old", Platform: "windows", State: "terminated"})

	tests := []struct{ user, text, want string }{
		{winAdmin, "join web", "2 instances are named \"web\"; say which one by id:\n- i-0d00000000000002f (running)\n- i-0d000000000000030 (running)"},
		{winAdmin, "join no-such-host", "No instance is named \"no-such-host\""},
		{winAdmin, "join i-0d0000000000000ff", "No instance i-0d0000000000000ff in this account and region."},
		{winAdmin, "join linux-01", "is not a Windows instance"},
		{winAdmin, "join win-old", "is terminated: nothing to join"},
		{developer, "join win-solo", "You may not join win-solo (i-0d000000000000041) to the domain"},
		{winAdmin, "status win-solo", "win-solo (i-0d000000000000041): running, windows."},
	}
	for _, tt := range tests {
		_, resp := w.command(tt.user, tt.text)
		got := w.lateReply(resp, tt.want)
		if strings.Contains(got, "<") && !strings.Contains(got, "&lt;") {
			t.Errorf("%s: unescaped reply %q", tt.text, got)
		}
	}
	if n := len(w.aws.EC2().Tags("i-0d000000000000041")); n != 1 { // Name only
		t.Errorf("a refused request tagged win-solo: %v", w.aws.EC2().Tags("i-0d000000000000041"))
	}

	// Typos are answered at once, without a job.
	ack, _ := w.command(winAdmin, "jion win-solo")
	if !strings.Contains(ack, `Unknown subcommand "jion"`) || !strings.Contains(ack, "Usage:") {
		t.Errorf("typo answered %q", ack)
	}

	// One operation per instance.
	_, first := w.command(winAdmin, "join win-busy-01")
	w.lateReply(first, "Started d-")
	_, second := w.command(winAdmin, "leave win-busy-01 --force")
	w.lateReply(second, "Another domain operation on win-busy-01 ("+busy+") is in progress: d-")
	if w.aws.EC2().Tags(busy)["domain"] != "join" || w.aws.EC2().RebootCount(busy) != 1 {
		t.Errorf("the refused operation changed the instance: %v", w.aws.EC2().Tags(busy))
	}
}

// TestDomainTagEventViaInvoke follows an operation to its end through the
// EventBridge path alone: progress checks are an hour apart, so only the
// "Tag Change on Resource" event fed to `tokken invoke` can finish it.
func TestDomainTagEventViaInvoke(t *testing.T) {
	w := newDomainWorld(t, "TOKKEN_DOMAIN_CHECK_EVERY=1h")
	const id = "i-0abc123def4567890" // the sample event's instance
	w.addWindows(id, "win-app-01", nil)
	_, resp := w.command(winAdmin, "join "+id)
	w.lateReply(resp, "Started d-")
	ts := w.opMessage(id)
	w.waitThread(ts, "Reboot requested")
	opID := w.aws.EC2().Tags(id)["domain-request"]
	w.srv.stop() // release the store for `tokken invoke`

	sample, err := os.ReadFile(filepath.Join("..", "testdata", "events", "tag-change-domain-joined.json"))
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(event []byte) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "event.json")
		if err := os.WriteFile(path, event, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "invoke", path)
		cmd.Dir, cmd.Env = w.dir, w.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("tokken invoke: %v\n%s", err, stderr.String())
		}
		return stderr.String()
	}

	// As shipped, the sample names a request no one made: accepted, ignored.
	logs := invoke(sample)
	if !strings.Contains(logs, `"msg":"tag change queued"`) {
		t.Errorf("the sample event was not mapped to a job:\n%s", logs)
	}
	if n := len(w.slack.Thread(domainChannel, ts)); n == 0 || strings.Contains(w.slack.Thread(domainChannel, ts)[n-1].Text, "joined") {
		t.Fatal("a stale event finished the operation")
	}

	// The instance answers (tags in EC2 and in the event), the event says so.
	w.aws.EC2().SetTag(id, "domain-ack", opID)
	w.aws.EC2().SetTag(id, "domain-status", "joined")
	event := strings.ReplaceAll(string(sample), "d-0123456789ab", opID)
	logs = invoke([]byte(event))
	w.waitThread(ts, "win-app-01 ("+id+") is joined.")
	w.waitMessage(ts, "joined")
	if !strings.Contains(logs, `"audit_action":"domain.joined"`) {
		t.Errorf("the event-driven completion was not audited:\n%s", logs)
	}
}
