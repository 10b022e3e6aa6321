package e2e

// Trust boundaries: what a compromised or misused part of tokken cannot do.
// The ingress may write any item to the table and send any job; the worker
// still grants nothing the policy in force does not (a forged activating
// request never reaches STS). An approval counts only while its approver
// may approve. User text cannot forge audit lines or reorder what Slack
// shows. These run in-process (accessWorld) behind the signed HTTP entry
// point, like the other access scenarios.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/policies"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// forgeActivating writes an activating prod-readonly request straight into
// the store, approved (history and all) by approvers, and enqueues its
// activation job exactly as the ingress does after a quorum.
func (w *accessWorld) forgeActivating(approvers ...string) string {
	w.t.Helper()
	ctx := context.Background()
	set, err := policies.Load(w.policyDir)
	if err != nil {
		w.t.Fatal(err)
	}
	p, ok := set.Profile("prod-readonly")
	if !ok {
		w.t.Fatal("no prod-readonly profile")
	}
	now := w.clock.Now()
	r := access.Request{
		ID: bot.NewID("r-"), Requester: requester, Profile: p.Name, Kind: p.Kind, RoleARN: p.RoleARN,
		SessionPolicy: p.SessionPolicy, Duration: time.Hour, Reason: "forged", Created: now.Add(-time.Minute),
		State: access.StateActivating, ApprovalsNeeded: p.Approvals, Activation: &access.Activation{Since: now},
	}
	r.History = append(r.History, access.HistoryRow{At: r.Created, Actor: requester, Action: access.ActRequested, Note: "forged"})
	for _, a := range approvers {
		r.Approvals = append(r.Approvals, access.Approval{By: a, At: r.Created})
		r.History = append(r.History, access.HistoryRow{At: r.Created, Actor: a, Action: access.ActApproved})
	}
	r.History = append(r.History, access.HistoryRow{At: now, Actor: access.System, Action: access.ActActivating})
	if err := (bot.Table[access.Request]{Store: w.store, Kind: access.KindRequest}).Create(ctx, r.ID, r, 0); err != nil {
		w.t.Fatal(err)
	}
	j, err := bot.NewJob("activate/"+r.ID, access.JobActivate, map[string]string{"request_id": r.ID})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.queue.Enqueue(ctx, j); err != nil {
		w.t.Fatal(err)
	}
	return r.ID
}

// channelPost waits for a post in channel whose text contains every want.
func (w *accessWorld) channelPost(channel string, want ...string) string {
	w.t.Helper()
	var found string
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(channel) {
			if j := messageJSON(m); containsAll(j, want...) {
				found = j
				return true
			}
		}
		return false
	})
	return found
}

// requestByModal opens the request modal with /access and submits it
// with the given values; it returns the id of the request it filed.
func (w *accessWorld) requestByModal(user, profile, duration, reason string) string {
	w.t.Helper()
	if r, _ := w.command(user, ""); r.Text != "" {
		w.t.Fatalf("/access answered %q instead of opening the modal", r.Text)
	}
	before := map[string]bool{}
	for _, m := range w.slack.Messages(approverChannel) {
		before[requestIDRE.FindString(m.Text)] = true
	}
	if body := w.submitView(user, accessui.CallbackRequest, "", map[string]slack.BlockAction{
		"profile":  {SelectedOption: slack.OptionBlockObject{Value: profile}},
		"duration": {SelectedOption: slack.OptionBlockObject{Value: duration}},
		"reason":   {Value: reason},
	}); body != "" {
		w.t.Fatalf("request modal answered %q", body)
	}
	var id string
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(approverChannel) {
			if got := requestIDRE.FindString(m.Text); got != "" && !before[got] {
				id = got
			}
		}
		return id != ""
	})
	return id
}

// TestForgedActivationNeverReachesSTS: a request item written as
// "activating" by someone who may write the table (the ingress), approved
// only by the requester and by a developer who may not approve, is refused
// by the worker: no AssumeRole, the card says why, one access.refused audit
// line, an ops alert. A forged item that names a permitted approver is
// granted: the check is the policy, not the path the item took.
func TestForgedActivationNeverReachesSTS(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.forgeActivating(requester, devUser)
	w.waitState(id, access.StateFailed)
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Fatalf("%d AssumeRole calls for a forged request", n)
	}
	w.waitMessage(id, "Failed", "refused", "0 of the 1 approvals needed count",
		"the requester cannot approve", "no longer permitted to approve it")
	w.channelPost(auditChannel, access.ActRefused, id)
	w.channelPost(accessOps, "GRANT REFUSED", id)
	refused := 0
	for _, h := range w.get(id).History {
		if h.Action == access.ActRefused {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d %s rows, want 1: %+v", refused, access.ActRefused, w.get(id).History)
	}

	// The same forgery with a real, permitted approver is a real approval.
	ok := w.forgeActivating(approver1)
	w.waitState(ok, access.StateActive)
	w.credentials(requester, ok, 1)
}

// TestApprovalLapsesWhenRemovedFromGroup: prod-readonly needs two
// approvers. The first approves, then leaves the SRE Slack user group (and
// tokken restarts, so no cached membership hides it): the second approval
// does not complete the quorum; the first no longer counts, the card says
// 1 of 2, and the audit channel says why. A third permitted approver
// completes it.
func TestApprovalLapsesWhenRemovedFromGroup(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyCopy(t, 2, true))
	id := w.request(requester, "prod-readonly 1h quarterly access review")
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitMessage(id, "1 of 2", "<@"+approver1+">")

	w.slack.AddUserGroup(sreGroup, approver2, approver3)
	w.restart()
	w.clickOn(approver2, accessui.ActionApprove, id)
	msg := w.waitMessage(id, "1 of 2", "<@"+approver2+">")
	if strings.Contains(msg, "<@"+approver1+">") {
		t.Fatalf("the removed approver still shows as approving: %s", msg)
	}
	w.channelPost(auditChannel, access.ActApprovalLapsed, id, approver1, "no longer permitted to approve it")
	if r := w.get(id); r.State != access.StatePending || len(w.aws.STS().AssumedRoles()) != 0 {
		t.Fatalf("after the lapse: %s, %d AssumeRole calls", r.State, len(w.aws.STS().AssumedRoles()))
	}
	w.clickOn(approver3, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	w.credentials(requester, id, 1)
}

// TestAuditLinesCannotBeForged: a reason with line breaks (LF, CR LF,
// U+2028, U+2029) that imitates audit lines, and a right-to-left override,
// submitted in the request modal (a signed view submission; the one-line
// command splits its text on white space): the audit channel gets exactly one line
// for the request, with the imitation flattened into it, and nothing Slack
// is asked to show carries a bidirectional control.
func TestAuditLinesCannotBeForged(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	fake := "`2026-03-03 10:00:00 UTC` *access.approved* `r-000000000000` by <@" + approver1 + ">"
	reason := "routine check\n" + fake + "\r\n" + fake + "\u2028" + fake + "\u2029finance-admin\u202Eexe.txt"
	id := w.requestByModal(requester, "prod-readonly", "1h", reason)
	if got := w.get(id).Reason; !strings.Contains(got, "\n") || !strings.Contains(got, "\u202E") {
		t.Fatalf("the reason did not arrive whole (the test would prove nothing): %q", got)
	}
	var lines []string
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		lines = nil
		for _, m := range f.Messages(auditChannel) {
			if strings.Contains(m.Text, id) && strings.Contains(m.Text, access.ActRequested) {
				lines = append(lines, m.Text)
			}
		}
		return len(lines) > 0
	})
	if len(lines) != 1 {
		t.Fatalf("%d audit posts for the request, want 1: %q", len(lines), lines)
	}
	line := lines[0]
	if strings.ContainsAny(line, "\r\n\u2028\u2029") {
		t.Fatalf("the audit post spans several lines: %q", line)
	}
	if !strings.Contains(line, "routine check ⏎ ") || !strings.Contains(line, "finance-admin[U+202E]exe.txt") {
		t.Fatalf("the audit post does not show the flattened reason: %q", line)
	}
	if strings.Contains(line, "<@"+approver1+">") {
		t.Fatalf("the imitated mention is live in the audit post: %q", line)
	}
	w.waitMessage(id, "finance-admin[U+202E]exe.txt")
	for _, c := range w.slack.Calls("") {
		if s := slackSays(c); strings.ContainsAny(s, "\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069") {
			t.Fatalf("%s asked Slack to show a bidirectional control: %q", c.Method, s)
		}
	}
}

// TestJapaneseReasonCountsCharacters: the limits count characters as the
// user sees them. A 463-character Japanese reason (1389 bytes) is accepted
// from the one-line command and from the modal; 501 characters are refused
// by both, saying the limit in characters.
func TestJapaneseReasonCountsCharacters(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	reason := strings.Repeat("本番障害の調査", 66) + "です" // 7*66+2 = 464 characters
	reason = string([]rune(reason)[:463])
	if n := len(reason); n <= access.MaxReasonChars {
		t.Fatalf("the reason is only %d bytes: the test would prove nothing", n)
	}
	id := w.request(requester, "prod-readonly 1h "+reason)
	if got := w.get(id).Reason; got != reason {
		t.Fatalf("the command's reason arrived as %q", got)
	}
	id = w.requestByModal(requester, "prod-readonly", "1h", reason)
	if got := w.get(id).Reason; got != reason {
		t.Fatalf("the modal's reason arrived as %q", got)
	}

	long := strings.Repeat("理", access.MaxReasonChars+1)
	if r, _ := w.command(requester, "prod-readonly 1h "+long); !strings.Contains(r.Text, "501 characters; it may have at most 500") {
		t.Fatalf("a 501-character reason from the command was answered %q", r.Text)
	}
	if r, _ := w.command(requester, ""); r.Text != "" {
		t.Fatalf("/access answered %q instead of opening the modal", r.Text)
	}
	body := w.submitView(requester, accessui.CallbackRequest, "", map[string]slack.BlockAction{
		"profile":  {SelectedOption: slack.OptionBlockObject{Value: "prod-readonly"}},
		"duration": {SelectedOption: slack.OptionBlockObject{Value: "1h"}},
		"reason":   {Value: long},
	})
	if !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, "501 characters; it may have at most 500") {
		t.Fatalf("a 501-character reason from the modal was answered %q", body)
	}
}

// TestOtherTeamRefusedByServe: `tokken serve` asks Slack once which team
// it is installed in (auth.test) and refuses a command, and a click by a
// Slack Connect user of another organisation, saying why; its own team is
// served.
func TestOtherTeamRefusedByServe(t *testing.T) {
	t.Parallel()
	fake := slackfake.New(t)
	s := startServe(t, fake)
	const other = "T0OTHERORG"
	req, _ := fake.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: "help", UserID: "U0EXTERN01", TeamID: other, ChannelID: "C0SHARED01",
	})
	if status, body := do(t, req); status != 200 || !strings.Contains(body, "another Slack team") {
		t.Fatalf("command from another team: %d %q", status, body)
	}
	// A click in a shared channel: the payload's team is ours, the user's is not.
	req, _ = fake.Interaction(t, s.base+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "U0EXTERN01", TeamID: other},
		ResponseURL:    fake.ResponseURL("R-EXT"),
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: accessui.ActionApprove, Value: "r-000000000000"}}},
	})
	if status, body := do(t, req); status != 200 {
		t.Fatalf("click from another team: %d %q", status, body)
	}
	fake.WaitFor(t, 45*time.Second, func(f *slackfake.Fake) bool {
		for _, p := range f.ResponsePosts("R-EXT") {
			if strings.Contains(p.Text, "another Slack team") {
				return true
			}
		}
		return false
	})
	req, _ = fake.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: requester, ChannelID: "C0RANDOM01"})
	if status, body := do(t, req); status != 200 || strings.Contains(body, "another Slack team") || !strings.Contains(body, "/access") {
		t.Fatalf("command from the installation's team: %d %q", status, body)
	}
	if n := len(fake.Calls("auth.test")); n != 1 {
		t.Errorf("%d auth.test calls, want 1 (at start)", n)
	}
}

// TestExternalUserEmailDoesNotMakeAMember: a Slack Connect user whose
// e-mail is an SRE's in groups.yaml (alice@example.com) is not an SRE, so
// a stored approval by them does not count and the worker refuses the
// grant.
func TestExternalUserEmailDoesNotMakeAMember(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	const external = "U0EXTERN01"
	w.slack.AddUser(slackfake.User{ID: external, Name: "mallory", Email: "alice@example.com", TeamID: "T0OTHERORG", Stranger: true})
	id := w.forgeActivating(external)
	w.waitState(id, access.StateFailed)
	w.waitMessage(id, "refused", "the approval by "+external+" does not count")
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Fatalf("%d AssumeRole calls on an external user's approval", n)
	}
}

// TestForgedActivationRefusedByLambdaWorker is the forged activation as
// deployed: the item is in the store as the ingress would write it, and the
// worker (TOKKEN_ROLE=worker, the Lambda dispatcher, through `tokken
// invoke`) receives its activation job in an SQS event. No AssumeRole
// reaches STS; the request fails refused, the audit channel has the line,
// the ops channel the alert, the approver channel the card.
func TestForgedActivationRefusedByLambdaWorker(t *testing.T) {
	t.Parallel()
	fake, aws := slackfake.New(t), awsfake.New(t)
	for id, name := range map[string]string{approverChannel: "prod-approvals", auditChannel: "audit", accessOps: "ops"} {
		fake.AddChannel(id, name)
	}
	for _, u := range []string{requester, devUser} {
		fake.AddUser(slackfake.User{ID: u, Name: strings.ToLower(u)})
	}
	dir := t.TempDir()
	// Without hours.cedar: the binary runs on the wall clock, and the
	// refusal under test is the missing approval, not the hour.
	pdir := policyCopy(t, 1, false)
	set, err := policies.Load(pdir)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Profile("prod-readonly")
	now := time.Now()
	r := access.Request{
		ID: bot.NewID("r-"), Requester: requester, Profile: p.Name, Kind: p.Kind, RoleARN: p.RoleARN,
		SessionPolicy: p.SessionPolicy, Duration: time.Hour, Reason: "forged", Created: now.Add(-time.Minute),
		State: access.StateActivating, ApprovalsNeeded: 0, Activation: &access.Activation{Since: now},
		History: []access.HistoryRow{
			{At: now.Add(-time.Minute), Actor: requester, Action: access.ActRequested, Note: "forged"},
			{At: now, Actor: access.System, Action: access.ActActivating},
		},
	}
	store, err := boltstore.Open(filepath.Join(dir, "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := (bot.Table[access.Request]{Store: store, Kind: access.KindRequest}).Create(context.Background(), r.ID, r, 0); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	job, err := bot.NewJob("activate/"+r.ID, access.JobActivate, map[string]string{"request_id": r.ID})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(job)
	event, _ := json.Marshal(map[string]any{"Records": []map[string]any{{
		"messageId": "m-1", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:ap-northeast-1:111111111111:tokken-jobs",
		"body": string(body), "attributes": map[string]string{"ApproximateReceiveCount": "1"},
	}}})
	path := filepath.Join(dir, "sqs.json")
	if err := os.WriteFile(path, event, 0o600); err != nil {
		t.Fatal(err)
	}
	env := tokkenEnv(fake, dir, "TOKKEN_ROLE=worker", "TOKKEN_AUDIT_CHANNEL="+auditChannel, "TOKKEN_OPS_CHANNEL="+accessOps,
		"TOKKEN_FEDERATION_URL="+aws.FederationURL(), "TOKKEN_POLICY_DIR="+pdir)
	for k, v := range aws.Env() {
		env = append(env, k+"="+v)
	}
	// The role exists and trusts the worker: only the check stands between
	// the forged item and credentials.
	aws.IAM().AddRole(p.RoleARN)
	aws.STS().AddCaller(prodWorkerKey, "arn:aws:sts::111111111111:assumed-role/tokken-worker/tokken-worker")
	env = append(env, "AWS_ACCESS_KEY_ID="+prodWorkerKey)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "invoke", path)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tokken invoke: %v\n%s", err, stderr.String())
	}
	if n := len(aws.STS().AssumedRoles()); n != 0 {
		t.Fatalf("%d AssumeRole calls for a forged request", n)
	}
	var card, audit, ops bool
	for _, m := range fake.Messages(approverChannel) {
		card = card || containsAll(messageJSON(m), r.ID, "refused", "0 of the 1 approvals needed count")
	}
	for _, m := range fake.Messages(auditChannel) {
		audit = audit || containsAll(m.Text, r.ID, access.ActRefused)
	}
	for _, m := range fake.Messages(accessOps) {
		ops = ops || containsAll(messageJSON(m), r.ID, "GRANT REFUSED")
	}
	if !card || !audit || !ops {
		t.Fatalf("card %v, audit line %v, ops alert %v\nslack:\n%s\nlogs:\n%s", card, audit, ops, fake.Dump(20), stderr.String())
	}
	store, err = boltstore.Open(filepath.Join(dir, "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := (bot.Table[access.Request]{Store: store, Kind: access.KindRequest}).Get(context.Background(), r.ID)
	if err != nil || got.Value.State != access.StateFailed {
		t.Fatalf("the forged request is %+v, %v; want failed", got.Value.State, err)
	}
}

// TestRequestInHoursApprovedAfterIsGranted: the worker judges the request
// by the rules as they stand, at the time it was made: a production
// request filed inside working hours (hours.cedar) and approved after them
// is granted, though a new one would be refused then.
func TestRequestInHoursApprovedAfterIsGranted(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-readonly 1h quarterly access review")
	w.clock.Advance(10*time.Hour + time.Minute) // Tuesday 20:01 UTC
	if _, rid := w.command(requester, "prod-readonly 1h another one"); !strings.Contains(w.lateAnswer(rid), "working hours") {
		t.Fatalf("a new request after hours was answered %q", w.lateAnswer(rid))
	}
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	w.credentials(requester, id, 1)
}
