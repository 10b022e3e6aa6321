package e2e

// identity-center grants end to end: a permission set on an account,
// assigned through IAM Identity Center for the window (or the group form:
// membership of a group), asked for with the signed /access command,
// approved with a click, assigned (IN_PROGRESS, then SUCCEEDED) and removed
// at the end. IAM Identity Center is awsfake (SSO Admin and Identity Store)
// through the real SDK clients and infra/identitycenter; Slack is slackfake.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	idcAccountA    = "111111111111"
	idcAccountB    = "222222222222"
	idcGroupAcct   = "333333333333"
	requesterEmail = "sre1@example.com"
)

// idcProfileYAML is what the scenarios add to the shipped profiles: a
// per-user assignment on one of two accounts (one approval), and the group
// form (no approval).
const idcProfileYAML = `
  prod-idc:
    description: Administrator in a production account, through IAM Identity Center.
    kind: identity-center
    env: prod
    accounts: [` + idcAccountA + `, ` + idcAccountB + `]
    permission_set: AdministratorAccess
    default_duration: 1h
    max_duration: 2h
    approvals: 1
    approver_channel: ` + approverChannel + `
  dev-idc-group:
    description: Power user in the sandbox, by membership of Dev Admins.
    kind: identity-center
    accounts: [` + idcGroupAcct + `]
    permission_set: PowerUserAccess
    group: Dev Admins
    default_duration: 30m
    max_duration: 2h
    approvals: 0
    approver_channel: ` + stagingChannel + `
`

// idcWorld is the access world with identity-center profiles, and in the
// Identity Center fake: the requester as a user (by their Slack e-mail),
// the two permission sets and the group.
type idcWorld struct {
	*accessWorld
	ic        *awsfake.IdentityCenter
	userID    string
	adminPS   string // AdministratorAccess, 8 h sessions
	groupID   string
	groupPS   string
	policyDir string
}

func newIDCWorld(t *testing.T) *idcWorld {
	t.Helper()
	dir := policyCopy(t, 1, true)
	appendProfiles(t, dir, idcProfileYAML)
	w := &idcWorld{accessWorld: newAccessWorld(t, dir), policyDir: dir}
	w.ic = w.aws.IdentityCenter()
	w.userID = w.ic.AddUser(awsfake.IDCUser{UserName: "sre1", Email: requesterEmail})
	w.adminPS = w.ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "AdministratorAccess", SessionDuration: "PT8H"})
	w.groupPS = w.ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "PowerUserAccess"})
	w.groupID = w.ic.AddGroup(awsfake.IDCGroup{DisplayName: "Dev Admins"})
	w.slack.AddUser(slackfake.User{ID: requester, Name: strings.ToLower(requester), Email: requesterEmail, TZ: "Asia/Tokyo"})
	return w
}

// appendProfiles adds profiles (YAML under the profiles key) to dir's
// profiles.yaml.
func appendProfiles(t *testing.T, dir, profiles string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "profiles.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(profiles); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func (w *idcWorld) adminOn(account string) awsfake.IDCAssignment {
	return awsfake.IDCAssignment{Account: account, PermissionSetARN: w.adminPS, PrincipalType: "USER", PrincipalID: w.userID}
}

// auditActions lists the audit events recorded about request id.
func (w *accessWorld) auditActions(id string) []string {
	w.t.Helper()
	events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Action)
	}
	return out
}

// wantAudited waits until request id's audit trail has want, in order
// (the last events are recorded just after the state they follow).
func (w *accessWorld) wantAudited(id string, want ...string) {
	w.t.Helper()
	inOrder := func(got []string) bool {
		i := 0
		for _, g := range got {
			if i < len(want) && g == want[i] {
				i++
			}
		}
		return i == len(want)
	}
	var got []string
	if !w.slack.Until(waitAccess, func(*slackfake.Fake) bool {
		got = w.auditActions(id)
		return inOrder(got)
	}) {
		w.t.Errorf("audit trail %v lacks, in order, %v", got, want)
	}
}

// TestIDCGrantApproveExpire: a signed one-line request for one of the
// profile's accounts, an approval click, the assignment created in
// Identity Center (the card says it is being assigned while the creation
// is IN_PROGRESS), the DM with the access portal link and the bound
// Identity Center cannot enforce; at the window end the assignment is
// deleted (IN_PROGRESS, then SUCCEEDED) and the trail has every step.
func TestIDCGrantApproveExpire(t *testing.T) {
	t.Parallel()
	w := newIDCWorld(t)
	id := w.request(requester, "prod-idc 1h "+idcAccountB+" rotate the KMS key <!here>")
	msg := w.waitMessage(id, "Waiting for approval", "*Identity Center* permission set `AdministratorAccess` on account `"+idcAccountB+"`")
	if strings.Contains(msg, "<!here>") || !strings.Contains(msg, "rotate the KMS key &lt;!here&gt;") {
		t.Errorf("the reason is not escaped on the card: %s", msg)
	}
	if r := w.get(id); r.IDC == nil || r.IDC.Account != idcAccountB || r.Reason != "rotate the KMS key <!here>" {
		t.Fatalf("request %+v, IDC %+v", r, r.IDC)
	}

	// Identity Center keeps the creation IN_PROGRESS until it settles.
	w.ic.SetPending(1 << 20)
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitMessage(id, "Granting access", "IAM Identity Center is assigning it")
	ctx, cancel := context.WithTimeout(context.Background(), waitAccess)
	defer cancel()
	if err := w.aws.WaitFor(ctx, func() bool {
		return len(w.aws.Calls(awsfake.SSOAdminService, "DescribeAccountAssignmentCreationStatus")) >= 2
	}); err != nil {
		t.Fatalf("the creation's status was not asked for twice: %v", err)
	}
	if r := w.get(id); r.State != access.StateActivating || w.ic.HasAssignment(w.adminOn(idcAccountB)) {
		t.Fatalf("while IN_PROGRESS: %s, assigned %v", r.State, w.ic.HasAssignment(w.adminOn(idcAccountB)))
	}
	w.ic.SetPending(2)
	w.ic.Settle()
	r := w.waitState(id, access.StateActive)
	if !w.ic.HasAssignment(w.adminOn(idcAccountB)) || w.ic.HasAssignment(w.adminOn(idcAccountA)) {
		t.Fatalf("assignments %+v", w.ic.Assignments())
	}
	if r.IDC.Identifier != requesterEmail || r.IDC.Preexisting || !r.IDC.Granted {
		t.Errorf("IDC %+v", r.IDC)
	}
	dm := w.dmWith(requester, "is active until")
	link := "<" + idcPortal + "/#/console?account_id=" + idcAccountB + "&amp;role_name=AdministratorAccess|open account " + idcAccountB + " as AdministratorAccess in the AWS access portal>"
	for _, want := range []string{link, "Identity Center cannot end portal sessions", "up to 8h after it", accessui.ActionDone} {
		if !strings.Contains(dm, want) {
			t.Errorf("DM lacks %q:\n%s", want, dm)
		}
	}
	w.waitMessage(id, "Active", "up to 8h after it")
	if n := len(w.aws.Calls(awsfake.STSService, "AssumeRole")); n != 0 {
		t.Errorf("STS was asked for %d role sessions for an Identity Center grant", n)
	}

	// The window ends: the deletion is followed until it SUCCEEDED.
	deletes := len(w.aws.Calls(awsfake.SSOAdminService, "DescribeAccountAssignmentDeletionStatus"))
	w.clock.Advance(61 * time.Minute)
	w.waitState(id, access.StateExpired)
	if w.ic.HasAssignment(w.adminOn(idcAccountB)) {
		t.Fatal("the assignment outlived the window")
	}
	if n := len(w.aws.Calls(awsfake.SSOAdminService, "DescribeAccountAssignmentDeletionStatus")) - deletes; n < 3 {
		t.Errorf("the deletion's status was asked %d times; IN_PROGRESS twice then SUCCEEDED takes 3", n)
	}
	w.waitMessage(id, "Expired", "up to 8h after it")
	w.dmWith(requester, "expired")
	w.wantAudited(id, access.ActRequested, access.ActApproved, access.ActActivating,
		access.ActIDCAssigning, access.ActIDCAssigned, access.ActActive, access.ActEnding, access.ActIDCUnassigned, access.ActExpired)
}

// TestIDCPreexistingAssignmentLeftAlone: access the requester already had
// before tokken is reported, never granted and never removed.
func TestIDCPreexistingAssignmentLeftAlone(t *testing.T) {
	t.Parallel()
	w := newIDCWorld(t)
	w.ic.PutAssignment(w.adminOn(idcAccountA))
	id := w.request(requester, "prod-idc 1h "+idcAccountA+" check the billing alarms")
	w.clickOn(approver1, accessui.ActionApprove, id)
	r := w.waitState(id, access.StateActive)
	if !r.IDC.Preexisting || r.IDC.Granted {
		t.Fatalf("IDC %+v: want pre-existing, nothing granted", r.IDC)
	}
	w.waitMessage(id, "already has this assignment permanently", "will not remove it")
	w.dmWith(requester, "you already have this access permanently")
	dmCh, _ := w.slack.DMChannel(requester)
	w.click(requester, accessui.ActionDone, id, dmCh, "1.1")
	w.waitState(id, access.StateRevoked)
	if !w.ic.HasAssignment(w.adminOn(idcAccountA)) {
		t.Error("the permanent assignment was removed")
	}
	for _, op := range []string{"CreateAccountAssignment", "DeleteAccountAssignment"} {
		if n := len(w.aws.Calls(awsfake.SSOAdminService, op)); n != 0 {
			t.Errorf("%s called %d times for access that existed before tokken", op, n)
		}
	}
	w.wantAudited(id, access.ActIDCPreexisting, access.ActActive, access.ActRevoked)
}

// TestIDCRevokeFailedThenRetried: the deletion fails in Identity Center on
// every end attempt; the request becomes REVOKE FAILED (card, ops alert,
// DM), and the retry that follows removes the assignment.
func TestIDCRevokeFailedThenRetried(t *testing.T) {
	t.Parallel()
	w := newIDCWorld(t)
	id := w.request(requester, "prod-idc 1h "+idcAccountA+" fix the pipeline")
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	w.ic.FailNext("DeleteAccountAssignment", access.MaxEndAttempts, "Internal failure while deleting the role")
	w.clickOn(approver1, accessui.ActionRevoke, id)
	w.waitState(id, access.StateRevokeFailed)
	w.waitMessage(id, accessui.RevokeFailedText, "remove the account assignment (or group membership) in IAM Identity Center by hand",
		"Internal failure while deleting the role")
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		return slices.ContainsFunc(f.Messages(accessOps), func(m slackfake.Message) bool {
			j := messageJSON(m)
			return strings.Contains(j, accessui.RevokeFailedText) && strings.Contains(j, id)
		})
	})
	w.dmWith(requester, "could not yet confirm")
	if !w.ic.HasAssignment(w.adminOn(idcAccountA)) {
		t.Fatal("the assignment is gone although every deletion failed")
	}
	// The failures are used up: the retry removes it.
	r := w.waitState(id, access.StateRevoked)
	if w.ic.HasAssignment(w.adminOn(idcAccountA)) || r.End.By != approver1 {
		t.Fatalf("after the retry: assigned %v, end %+v", w.ic.HasAssignment(w.adminOn(idcAccountA)), r.End)
	}
	w.wantAudited(id, access.ActIDCAssigned, access.ActEnding, access.ActRevokeFailed, access.ActIDCUnassigned, access.ActRevoked)
}

// TestIDCUnknownEmailRefused: a requester whose Slack e-mail is no
// Identity Store user's is refused before anyone approves, with the
// address named; nothing is posted or assigned.
func TestIDCUnknownEmailRefused(t *testing.T) {
	t.Parallel()
	w := newIDCWorld(t)
	w.slack.AddUser(slackfake.User{ID: approver2, Name: "sre3", Email: "nobody@example.com", TZ: "Asia/Tokyo"})
	r, rid := w.command(approver2, "prod-idc 30m "+idcAccountA+" look at the logs")
	if !strings.Contains(r.Text, "Checking your request") {
		t.Fatalf("answered %q", r.Text)
	}
	answer := w.lateAnswer(rid)
	if !strings.Contains(answer, "no user with the e-mail nobody@example.com") {
		t.Fatalf("late answer %q does not name the e-mail looked for", answer)
	}
	if len(w.slack.Messages(approverChannel)) != 0 || len(w.ic.Assignments()) != 0 {
		t.Errorf("a refused request was posted or assigned: %d messages, %+v", len(w.slack.Messages(approverChannel)), w.ic.Assignments())
	}
	// Several accounts and none named: the answer lists them.
	_, rid = w.command(requester, "prod-idc 30m look at the logs")
	if answer := w.lateAnswer(rid); !strings.Contains(answer, "name the account before the reason, one of "+idcAccountA+", "+idcAccountB) {
		t.Errorf("late answer %q", answer)
	}
}

// TestIDCMappedUser: a requester whose Slack e-mail no Identity Store user
// has is granted as the Identity Center user groups.yaml's
// identity_center_users maps them to (a policy reload away), and "I'm
// done" removes that user's assignment; a requester mapped to a user
// Identity Center lacks is refused before anyone approves, naming that
// user.
func TestIDCMappedUser(t *testing.T) {
	t.Parallel()
	w := newIDCWorld(t)
	const contractor, ghost = approver2, approver3
	w.slack.AddUser(slackfake.User{ID: contractor, Name: "jane", Email: "jane@contractor.example", TZ: "Asia/Tokyo"})
	w.slack.AddUser(slackfake.User{ID: ghost, Name: "ghost", Email: "ghost@example.com", TZ: "Asia/Tokyo"})
	jane := w.ic.AddUser(awsfake.IDCUser{UserName: "contractor.jane", Email: "jane@corp.example"})
	janeAdmin := awsfake.IDCAssignment{Account: idcAccountA, PermissionSetARN: w.adminPS, PrincipalType: "USER", PrincipalID: jane}

	// Without a mapping, her Slack e-mail is looked for, and not found.
	_, rid := w.command(contractor, "prod-idc 30m "+idcAccountA+" rotate the keys")
	if answer := w.lateAnswer(rid); !strings.Contains(answer, "no user with the e-mail jane@contractor.example") ||
		!strings.Contains(answer, "identity_center_users") {
		t.Fatalf("late answer %q", answer)
	}
	f, err := os.OpenFile(filepath.Join(w.policyDir, "groups.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nidentity_center_users:\n  " + contractor + ": contractor.jane\n  ghost@example.com: nobody.here\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	w.restart()

	id := w.request(contractor, "prod-idc 1h "+idcAccountA+" rotate the keys")
	w.clickOn(approver1, accessui.ActionApprove, id)
	r := w.waitState(id, access.StateActive)
	if !w.ic.HasAssignment(janeAdmin) || len(w.ic.Assignments()) != 1 || r.IDC.Identifier != "contractor.jane" || r.IDC.UserID != jane {
		t.Fatalf("IDC %+v, assignments %+v", r.IDC, w.ic.Assignments())
	}
	w.dmWith(contractor, "account_id="+idcAccountA+"&amp;role_name=AdministratorAccess")
	dmCh, _ := w.slack.DMChannel(contractor)
	w.click(contractor, accessui.ActionDone, id, dmCh, "1.1")
	w.waitState(id, access.StateRevoked)
	if len(w.ic.Assignments()) != 0 {
		t.Errorf("assignments after I'm done: %+v", w.ic.Assignments())
	}
	w.wantAudited(id, access.ActIDCAssigning, access.ActIDCAssigned, access.ActActive, access.ActIDCUnassigned, access.ActRevoked)

	_, rid = w.command(ghost, "prod-idc 30m "+idcAccountA+" look at the logs")
	if answer := w.lateAnswer(rid); !strings.Contains(answer, "no user nobody.here (the user identity_center_users in groups.yaml maps you to)") {
		t.Errorf("late answer %q does not name the mapped user", answer)
	}
}

// TestIDCGroupForm: the group form grants by membership of the group (no
// approval needed) and "I'm done" ends the membership.
func TestIDCGroupForm(t *testing.T) {
	t.Parallel()
	w := newIDCWorld(t)
	id := w.request(requester, "dev-idc-group 30m try the new console")
	r := w.waitState(id, access.StateActive)
	if !w.ic.IsMember(w.groupID, w.userID) || r.IDC.GroupID != w.groupID {
		t.Fatalf("membership not granted: IDC %+v", r.IDC)
	}
	w.waitMessage(id, "by membership of group `Dev Admins`")
	w.dmWith(requester, "account_id="+idcGroupAcct+"&amp;role_name=PowerUserAccess")
	dmCh, _ := w.slack.DMChannel(requester)
	w.click(requester, accessui.ActionDone, id, dmCh, "1.1")
	w.waitState(id, access.StateRevoked)
	if w.ic.IsMember(w.groupID, w.userID) {
		t.Error("the membership outlived I'm done")
	}
	if n := len(w.aws.Calls(awsfake.SSOAdminService, "CreateAccountAssignment")); n != 0 {
		t.Errorf("the group form made %d account assignments", n)
	}
	w.wantAudited(id, access.ActIDCAssigning, access.ActIDCAssigned, access.ActActive, access.ActIDCUnassigned, access.ActRevoked)
}

// TestLambdaIDCGrantExpires: the worker as Lambda runs it (SQS events,
// EventBridge Scheduler for the expiry, DynamoDB Local) grants an
// identity-center profile from the submit job the ingress enqueues, and
// at the window end, fired by the Scheduler, removes the assignment.
func TestLambdaIDCGrantExpires(t *testing.T) {
	t.Parallel()
	const (
		instance = "arn:aws:sso:::instance/ssoins-1111222233334444"
		store    = "d-1234567890"
		email    = "sre@example.com"
	)
	dir := policyCopy(t, 1, false)
	appendProfiles(t, dir, `
  sandbox-idc:
    kind: identity-center
    accounts: [`+idcGroupAcct+`]
    permission_set: ReadOnlyAccess
    max_duration: 1h
    approvals: 0
    approver_channel: `+stagingChannel+`
`)
	w := newLambdaWorld(t, lambdaOptions{env: []string{
		"TOKKEN_POLICY_DIR=" + dir, "TOKKEN_IDC_INSTANCE_ARN=" + instance, "TOKKEN_IDC_IDENTITY_STORE_ID=" + store,
		"TOKKEN_IDC_PORTAL_URL=" + idcPortal, "TOKKEN_IDC_POLL_INTERVAL=50ms",
	}})
	ic := w.aws.IdentityCenter()
	ic.AddInstance(awsfake.IDCInstance{ARN: instance, IdentityStoreID: store})
	user := ic.AddUser(awsfake.IDCUser{UserName: "sre", Email: email})
	ps := ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "ReadOnlyAccess", SessionDuration: "PT1H"})
	ic.SetPending(1)
	w.slack.AddUser(slackfake.User{ID: sre, Name: "sre", Email: email})
	want := awsfake.IDCAssignment{Account: idcGroupAcct, PermissionSetARN: ps, PrincipalType: "USER", PrincipalID: user}

	w.accessRequest(sre, "sandbox-idc", time.Minute, "check the sandbox alarms")
	w.waitSlack("portal link", func(f *slackfake.Fake) bool {
		return hasText(f.DMs(sre), "is active until", "account_id="+idcGroupAcct+"&amp;role_name=ReadOnlyAccess")
	})
	if !ic.HasAssignment(want) {
		t.Fatalf("no assignment after the DM: %+v", ic.Assignments())
	}
	// The Scheduler fires the expiry at the window end, a minute later.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.aws.WaitFor(ctx, func() bool { return !ic.HasAssignment(want) }); err != nil {
		t.Fatalf("the assignment outlived the window: %v", err)
	}
	w.slack.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { return hasText(f.DMs(sre), "expired") })
	if n := w.jobsRun(lambdaJobs, "access.expire", time.Time{}); n == 0 {
		t.Error("the assignment went without an expiry job")
	}
}

// TestIDCServeBinary: `tokken serve` (TOKKEN_ROLE=all, one process), wired
// from the TOKKEN_IDC_* variables, grants an identity-center profile that
// needs no approval from a signed /access command, DMs the portal link,
// and removes the assignment on "I'm done".
func TestIDCServeBinary(t *testing.T) {
	t.Parallel()
	sl, fake := slackfake.New(t), awsfake.New(t)
	sl.AddChannel(stagingChannel, "staging")
	sl.AddUser(slackfake.User{ID: requester, Name: "sre1", Email: requesterEmail})
	ic := fake.IdentityCenter()
	inst := ic.AddInstance(awsfake.IDCInstance{})
	user := ic.AddUser(awsfake.IDCUser{UserName: "sre1", Email: requesterEmail})
	ps := ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "PowerUserAccess"})
	want := awsfake.IDCAssignment{Account: idcAccountA, PermissionSetARN: ps, PrincipalType: "USER", PrincipalID: user}
	policies := policyCopy(t, 1, false)
	appendProfiles(t, policies, `
  sandbox-idc:
    kind: identity-center
    accounts: [`+idcAccountA+`]
    permission_set: PowerUserAccess
    max_duration: 1h
    approvals: 0
    approver_channel: `+stagingChannel+`
`)
	dir := t.TempDir()
	env := tokkenEnv(sl, dir, "TOKKEN_POLICY_DIR="+policies, "TOKKEN_IDC_INSTANCE_ARN="+inst.ARN,
		"TOKKEN_IDC_IDENTITY_STORE_ID="+inst.IdentityStoreID, "TOKKEN_IDC_PORTAL_URL="+idcPortal, "TOKKEN_IDC_POLL_INTERVAL=50ms")
	for k, v := range fake.Env() {
		env = append(env, k+"="+v)
	}
	s := startServeIn(t, dir, env)
	req, _ := sl.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: "sandbox-idc 30m try the new dashboards", UserID: requester, ChannelID: "C0RANDOM01", ResponseURL: sl.ResponseURL("R1"),
	})
	if status, body := do(t, req); status != 200 || !strings.Contains(body, "Checking your request") {
		t.Fatalf("command: %d %q", status, body)
	}
	sl.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { return len(f.ResponsePosts("R1")) > 0 })
	id := requestIDRE.FindString(sl.ResponsePosts("R1")[0].Text)
	sl.WaitFor(t, waitLong, func(f *slackfake.Fake) bool {
		return hasText(f.DMs(requester), id, "account_id="+idcAccountA+"&amp;role_name=PowerUserAccess")
	})
	if id == "" || !ic.HasAssignment(want) {
		t.Fatalf("request %q: assignments %+v", id, ic.Assignments())
	}
	dmCh, _ := sl.DMChannel(requester)
	click, _ := sl.Interaction(t, s.base+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: requester},
		Container:      slack.Container{Type: "message", ChannelID: dmCh, MessageTs: "1.1"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: accessui.ActionDone, Value: id}}},
	})
	if status, body := do(t, click); status != 200 {
		t.Fatalf("I'm done: %d %q", status, body)
	}
	sl.WaitFor(t, waitLong, func(f *slackfake.Fake) bool { return hasText(f.Messages(stagingChannel), "Revoked", id) })
	if ic.HasAssignment(want) {
		t.Error("the assignment outlived I'm done")
	}
}
