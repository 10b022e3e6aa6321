package e2e

// Crash scenarios: the tokken binary is killed with SIGKILL between request
// and expiry and restarted over the same store. After each restart no
// approval is lost, no grant is issued twice, and no grant outlives its
// window: the expiry still happens at the recorded end, live sessions are
// terminated and the approver message ends expired or revoked.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

const waitCrash = 45 * time.Second // the race-built binary on a shared 2-core machine

// crashWorld is `tokken serve` with the access feature against the fakes,
// restartable over its store directory.
type crashWorld struct {
	t     *testing.T
	slack *slackfake.Fake
	aws   *awsfake.Fake
	dir   string
	env   []string
	srv   *server
}

// newCrashWorld starts tokken with the policy set in policies (the shipped
// one, or a copy) in the production account of the shipped profiles.
func newCrashWorld(t *testing.T, policies string) *crashWorld {
	t.Helper()
	w := &crashWorld{t: t, slack: slackfake.New(t), aws: awsfake.New(t), dir: t.TempDir()}
	for id, name := range map[string]string{approverChannel: "prod-approvals", auditChannel: "audit", accessOps: "ops"} {
		w.slack.AddChannel(id, name)
	}
	for _, u := range []string{requester, approver1, approver2} {
		w.slack.AddUser(slackfake.User{ID: u, Name: strings.ToLower(u)})
	}
	w.slack.AddUserGroup(sreGroup, approver1, approver2)
	w.aws.EC2().AddInstance(awsfake.Instance{ID: prodWeb, Name: "web-01", Tags: map[string]string{"Env": "prod"}})
	for _, role := range []string{"tokken-prod-readonly", "tokken-prod-ssm"} {
		w.aws.IAM().AddGrantableRole("arn:aws:iam::111111111111:role/" + role)
	}
	w.aws.STS().AddCaller(prodWorkerKey, "arn:aws:sts::111111111111:assumed-role/tokken-worker/tokken-worker")
	w.env = tokkenEnv(w.slack, w.dir, "TOKKEN_POLICY_DIR="+policies, "TOKKEN_AUDIT_CHANNEL="+auditChannel,
		"TOKKEN_OPS_CHANNEL="+accessOps, "TOKKEN_FEDERATION_URL="+w.aws.FederationURL())
	for k, v := range w.aws.Env() {
		w.env = append(w.env, k+"="+v)
	}
	w.env = append(w.env, "AWS_ACCESS_KEY_ID="+prodWorkerKey)
	w.srv = startServeIn(t, w.dir, w.env)
	return w
}

// crash kills tokken with SIGKILL (no shutdown, no drain) and starts it
// again over the same store.
func (w *crashWorld) crash() {
	w.t.Helper()
	if err := w.srv.cmd.Process.Kill(); err != nil {
		w.t.Fatal(err)
	}
	<-w.srv.done
	w.srv = startServeIn(w.t, w.dir, w.env)
}

// command runs /access text as user and returns the late answer.
func (w *crashWorld) command(user, text string) string {
	w.t.Helper()
	req, cmd := w.slack.SlashCommand(w.t, w.srv.base+"/slack/commands", slack.SlashCommand{Command: "/access", Text: text, UserID: user, ChannelID: "C0RANDOM01"})
	if status, body := do(w.t, req); status != 200 || !strings.Contains(body, "Checking your request") {
		w.t.Fatalf("/access %s: %d %q", text, status, body)
	}
	rid := cmd.ResponseURL[strings.LastIndex(cmd.ResponseURL, "/")+1:]
	w.slack.WaitFor(w.t, waitCrash, func(f *slackfake.Fake) bool { return len(f.ResponsePosts(rid)) > 0 })
	return w.slack.ResponsePosts(rid)[0].Text
}

// message is the approver message of request id as Slack shows it.
func (w *crashWorld) message(id string) (slackfake.Message, bool) {
	for _, m := range w.slack.Messages(approverChannel) {
		if strings.Contains(m.Text, id) {
			return m, true
		}
	}
	return slackfake.Message{}, false
}

// waitMessage waits until request id's approver message contains all of want.
func (w *crashWorld) waitMessage(id string, want ...string) string {
	w.t.Helper()
	var last string
	w.slack.WaitFor(w.t, waitCrash, func(*slackfake.Fake) bool {
		m, ok := w.message(id)
		if !ok {
			return false
		}
		last = messageJSON(m)
		return containsAll(last, want...)
	})
	return last
}

func (w *crashWorld) click(user, action, id string) {
	w.t.Helper()
	m, ok := w.message(id)
	if !ok {
		w.t.Fatalf("no message for %s", id)
	}
	req, _ := w.slack.Interaction(w.t, w.srv.base+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		Container:      slack.Container{Type: "message", ChannelID: m.Channel, MessageTs: m.TS},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: action, Value: id}}},
	})
	if status, body := do(w.t, req); status != 200 {
		w.t.Fatalf("%s by %s: %d %q", action, user, status, body)
	}
}

// credentialDMs counts the DMs to the requester that carry credentials.
func (w *crashWorld) credentialDMs(id string) int {
	n := 0
	for _, m := range w.slack.DMs(requester) {
		if j := messageJSON(m); strings.Contains(j, "export AWS_SECRET_ACCESS_KEY") && strings.Contains(j, id) {
			n++
		}
	}
	return n
}

// audit reads request id's trail with `tokken audit` over the store (the
// server must be stopped: the embedded store has one owner).
func (w *crashWorld) audit(id string) []bot.AuditEvent {
	w.t.Helper()
	cmd := exec.Command(binary, "audit", "--since", "24h", "--request", id)
	cmd.Dir, cmd.Env = w.dir, w.env
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("tokken audit: %v", err)
	}
	var events []bot.AuditEvent
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e bot.AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			w.t.Fatalf("audit line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

// policyCopy copies the shipped policy set with prod-readonly needing
// approvals approvers. Without hours it leaves hours.cedar out: the
// binary runs on the wall clock, which may be outside working hours.
func policyCopy(t *testing.T, approvals int, hours bool) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(policyDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || (!hours && e.Name() == "hours.cedar") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(policyDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "profiles.yaml" {
			i := bytes.Index(b, []byte("prod-readonly:"))
			j := bytes.Index(b[i:], []byte("approvals: 1"))
			if i < 0 || j < 0 {
				t.Fatal("profiles.yaml changed shape: prod-readonly approvals not found")
			}
			b = bytes.Join([][]byte{b[:i+j], []byte("approvals: " + strconv.Itoa(approvals)), b[i+j+len("approvals: 1"):]}, nil)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCrashBeforeActivation kills tokken after the request is filed and
// again after the first of two approvals: the request and the approval
// survive, the second approval activates it once, and it ends revoked.
func TestCrashBeforeActivation(t *testing.T) {
	t.Parallel()
	w := newCrashWorld(t, policyCopy(t, 2, false))
	id := requestIDRE.FindString(w.command(requester, "prod-readonly 1h crash while pending"))
	w.waitMessage(id, "0 of 2")
	w.crash()

	w.click(approver1, accessui.ActionApprove, id)
	w.waitMessage(id, "1 of 2", "<@"+approver1+">")
	w.crash()

	w.click(approver1, accessui.ActionApprove, id) // the approval is remembered
	w.slack.WaitFor(t, waitCrash, func(f *slackfake.Fake) bool {
		for _, e := range f.Ephemerals(approver1) {
			if strings.Contains(e.Text, "You have already approved this") {
				return true
			}
		}
		return false
	})
	w.click(approver2, accessui.ActionApprove, id)
	w.waitMessage(id, "Active", "<@"+approver1+">, <@"+approver2+">")
	w.slack.WaitFor(t, waitCrash, func(*slackfake.Fake) bool { return w.credentialDMs(id) == 1 })
	w.click(approver1, accessui.ActionRevoke, id)
	w.waitMessage(id, "Revoked")
	w.srv.stop()
	if n := len(w.aws.STS().AssumedRoles()); n != 1 || w.credentialDMs(id) != 1 {
		t.Errorf("%d AssumeRole calls and %d credential DMs, want 1 and 1", n, w.credentialDMs(id))
	}
	approvals := 0
	for _, e := range w.audit(id) {
		if e.Action == access.ActApproved {
			approvals++
		}
	}
	if approvals != 2 {
		t.Errorf("%d approvals in the audit trail, want 2", approvals)
	}
}

// policyEnd is the instant the session policy of an issued grant denies
// everything after.
var policyEnd = regexp.MustCompile(`"aws:CurrentTime":"([^"]+)"`)

// TestCrashAfterDeliveryAndDuringExpiry kills tokken once the credentials
// are delivered, then again while expiry is terminating the grant's SSM
// session (TerminateSession slowed so the kill lands mid-call). The
// persistent expiry timer still fires at the recorded end, the restart
// finishes the termination, the grant is issued once, and its session
// policy ends at the window end the store recorded.
func TestCrashAfterDeliveryAndDuringExpiry(t *testing.T) {
	t.Parallel()
	w := newCrashWorld(t, policyCopy(t, 1, false))
	id := requestIDRE.FindString(w.command(requester, "prod-ssm 1m "+prodWeb+" crash during expiry"))
	w.waitMessage(id, "Waiting for approval")
	w.click(approver1, accessui.ActionApprove, id)
	w.slack.WaitFor(t, waitCrash, func(*slackfake.Fake) bool { return w.credentialDMs(id) == 1 })
	w.waitMessage(id, "Active")
	issued := w.aws.STS().AssumedRoles()
	if len(issued) != 1 {
		t.Fatalf("%d grants issued", len(issued))
	}
	w.aws.SSM().OpenSession(prodWeb, issued[0].AssumedRoleARN)
	w.crash()

	// Expiry starts on the timer stored before the crash; kill it while
	// it terminates the session.
	w.aws.SetLatency(awsfake.SSMService, "TerminateSession", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.aws.WaitFor(ctx, func() bool { return len(w.aws.Calls(awsfake.SSMService, "DescribeSessions")) > 0 }); err != nil {
		t.Fatalf("expiry never looked for sessions: %v", err)
	}
	w.waitMessage(id, "Ending")
	w.aws.SetLatency(awsfake.SSMService, "TerminateSession", 0)
	w.crash()

	// Whether the killed run's TerminateSession reached SSM before the
	// kill is a race, so the restarted run terminates one session or finds
	// none left; what must hold is below: expired, and no live session.
	w.waitMessage(id, "Expired")
	w.srv.stop()
	if n := len(w.aws.SSM().ActiveSessions()); n != 0 {
		t.Errorf("%d SSM sessions outlived the grant", n)
	}
	if n := len(w.aws.STS().AssumedRoles()); n != 1 || w.credentialDMs(id) != 1 {
		t.Errorf("%d AssumeRole calls and %d credential DMs, want 1 and 1", n, w.credentialDMs(id))
	}
	var window time.Time
	var actions []string
	ended := 0
	for _, e := range w.audit(id) {
		if e.Action == access.ActSessionEnded {
			// One record per session the grant's end terminated; an attempt
			// cut short by the crash may have ended it without recording.
			ended++
			continue
		}
		actions = append(actions, e.Action)
		if e.Action == access.ActActive {
			window = e.WindowEnd
		}
	}
	if ended > 1 {
		t.Errorf("%d %s records for one session", ended, access.ActSessionEnded)
	}
	if want := []string{access.ActRequested, access.ActApproved, access.ActActivating, access.ActActive, access.ActEnding, access.ActExpired}; strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit trail %v, want %v", actions, want)
	}
	m := policyEnd.FindStringSubmatch(issued[0].Policy)
	if m == nil {
		t.Fatalf("session policy has no end: %s", issued[0].Policy)
	}
	end, err := time.Parse(time.RFC3339, m[1])
	if err != nil || window.IsZero() || !end.Equal(window.Truncate(time.Second)) && !end.Equal(window) {
		t.Errorf("session policy ends %s (%v), the recorded window %s", m[1], err, window)
	}
}

// TestCrashDuringAssumeRole kills tokken while the activation job is inside
// STS AssumeRole (slowed so the kill lands mid-call) and restarts it over
// the same store. The dead run's claim is a lease it can no longer renew,
// so the restarted queue's retry takes over within seconds rather than
// minutes: the grant becomes active, issued at most twice with the second
// recorded as a re-issue, both credential sets end at the window end fixed
// by the first claim, and the grant expires at that end.
func TestCrashDuringAssumeRole(t *testing.T) {
	t.Parallel()
	w := newCrashWorld(t, policyCopy(t, 1, false))
	id := requestIDRE.FindString(w.command(requester, "prod-ssm 1m "+prodWeb+" crash during AssumeRole"))
	w.waitMessage(id, "Waiting for approval")
	w.aws.SetLatency(awsfake.STSService, "AssumeRole", time.Minute)
	w.click(approver1, accessui.ActionApprove, id)
	// The claim is renewed while the job works: a renewal means the job
	// has been inside AssumeRole for a few seconds.
	waitLog(t, w.srv, "access: claim renewed")
	if n := len(w.aws.Calls(awsfake.STSService, "AssumeRole")); n != 0 {
		t.Fatalf("%d AssumeRole calls answered before the kill; the latency did not hold the call", n)
	}
	if err := w.srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-w.srv.done
	killed := time.Now()
	// The fake answers the call it was holding once the client is gone:
	// proof that the kill landed mid-call.
	ctx, cancel := context.WithTimeout(context.Background(), waitCrash)
	defer cancel()
	if err := w.aws.WaitFor(ctx, func() bool { return len(w.aws.Calls(awsfake.STSService, "AssumeRole")) == 1 }); err != nil {
		t.Fatalf("the killed AssumeRole call was never recorded: %v", err)
	}
	w.aws.SetLatency(awsfake.STSService, "AssumeRole", 0)
	w.srv = startServeIn(t, w.dir, w.env)

	w.waitMessage(id, "Active")
	took := time.Since(killed)
	if took > 30*time.Second {
		t.Errorf("active %s after the crash, want within 30s", took.Round(time.Second))
	}
	t.Logf("active %s after the kill", took.Round(100*time.Millisecond))
	w.slack.WaitFor(t, waitCrash, func(*slackfake.Fake) bool { return w.credentialDMs(id) == 1 })
	w.waitMessage(id, "Expired")
	w.srv.stop()

	issued := w.aws.STS().AssumedRoles()
	if len(issued) != 2 || w.credentialDMs(id) != 1 {
		t.Errorf("%d AssumeRole calls and %d credential DMs, want 2 (one killed) and 1", len(issued), w.credentialDMs(id))
	}
	var window time.Time
	var actions []string
	var ending, reissued bot.AuditEvent
	for _, e := range w.audit(id) {
		actions = append(actions, e.Action)
		switch e.Action {
		case access.ActActive:
			window = e.WindowEnd
		case access.ActReissued:
			reissued = e
		case access.ActEnding:
			ending = e
		}
	}
	want := []string{access.ActRequested, access.ActApproved, access.ActActivating, access.ActReissued,
		access.ActActive, access.ActEnding, access.ActExpired}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit trail %v, want %v", actions, want)
	}
	if reissued.Reason != access.NoteReissuedInterrupted || !reissued.WindowEnd.Equal(window) {
		t.Errorf("re-issue event %+v, want %q for the window ending %s", reissued, access.NoteReissuedInterrupted, window)
	}
	if window.IsZero() || ending.At.Before(window) {
		t.Errorf("ending began %s, before the window end %s", ending.At, window)
	}
	for i, a := range issued {
		m := policyEnd.FindStringSubmatch(a.Policy)
		if m == nil {
			t.Fatalf("session policy %d has no end: %s", i, a.Policy)
		}
		end, err := time.Parse(time.RFC3339, m[1])
		if err != nil || !end.Equal(window.Truncate(time.Second)) && !end.Equal(window) {
			t.Errorf("credentials %d end %s (%v), the recorded window %s", i, m[1], err, window)
		}
	}
}
