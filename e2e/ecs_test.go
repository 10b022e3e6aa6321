package e2e

// ecs-exec grants end to end: a shell in an ECS task, asked for by service
// or by task id with the one-line /access command, checked against ECS
// before anyone approves, granted with a session policy that allows
// ecs:ExecuteCommand on the approved tasks only, and ended (exec sessions
// terminated) at expiry and on revoke. ECS and SSM are awsfake through the
// real SDK clients; Slack is slackfake with signed requests.

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/infra/ecsfleet"
	"github.com/tokken/tokken/infra/ecsindex"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	execRole     = "arn:aws:iam::111111111111:role/tokken-staging-exec"
	webTask      = "0123456789abcdef0123456789abcdef" // web, RUNNING, exec on
	webTask2     = "1123456789abcdef0123456789abcdef" // web, started by a deployment during the window
	stoppedTask  = "2123456789abcdef0123456789abcdef" // web, STOPPED
	legacyTask   = "3123456789abcdef0123456789abcdef" // legacy: ECS Exec off
	batchTask    = "4123456789abcdef0123456789abcdef" // batch: not in the profile
	webRuntimeID = "0123456789abcdef0123456789abcdef-1111111111"
)

// ecsExecProfile is the profile the scenarios add to the shipped set.
const ecsExecProfile = `
  staging-exec:
    description: A shell in the staging web and worker containers (ECS Exec).
    kind: ecs-exec
    env: staging
    role_arn: ` + execRole + `
    ecs:
      cluster: staging
      services: [web, worker, legacy]
      tags: {Env: staging}
      containers: [app]
    default_duration: 30m
    max_duration: 2h
    approvals: 1
    approver_channel: ` + stagingChannel + `
`

// ecsWorld is the access world with an ecs-exec profile and a staging
// cluster: service web (exec on, managed tags), worker (exec on, no managed
// tags), legacy (exec off) and batch (outside the profile).
func ecsWorld(t *testing.T) *accessWorld {
	t.Helper()
	dir := policyCopy(t, 1, true)
	f, err := os.OpenFile(filepath.Join(dir, "profiles.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(ecsExecProfile); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	w := newAccessWorld(t, dir)
	w.aws.IAM().AddGrantableRole(execRole)
	e := w.aws.ECS()
	e.PutService(awsfake.ECSSvc{Cluster: "staging", Name: "web", EnableExecuteCommand: true, ManagedTags: true})
	e.PutService(awsfake.ECSSvc{Cluster: "staging", Name: "worker", EnableExecuteCommand: true})
	e.PutService(awsfake.ECSSvc{Cluster: "staging", Name: "legacy"})
	e.PutService(awsfake.ECSSvc{Cluster: "staging", Name: "batch", EnableExecuteCommand: true, ManagedTags: true})
	staging := map[string]string{"Env": "staging"}
	app := func(runtime string) []awsfake.ECSContainerDef {
		return []awsfake.ECSContainerDef{
			{Name: "app", RuntimeID: runtime, ExecAgent: "RUNNING"},
			{Name: "envoy", RuntimeID: runtime[:32] + "-2222222222", ExecAgent: "RUNNING"},
		}
	}
	e.PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: webTask, Service: "web", Family: "web", LastStatus: "RUNNING",
		EnableExecuteCommand: true, Containers: app(webRuntimeID), Tags: staging})
	e.PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: stoppedTask, Service: "web", Family: "web", LastStatus: "STOPPED",
		EnableExecuteCommand: true, Containers: app(stoppedTask + "-1111111111"), Tags: staging})
	e.PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: legacyTask, Service: "legacy", Family: "legacy", LastStatus: "RUNNING",
		Containers: app(legacyTask + "-1111111111"), Tags: staging})
	e.PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: batchTask, Service: "batch", Family: "batch", LastStatus: "RUNNING",
		EnableExecuteCommand: true, Containers: app(batchTask + "-1111111111"), Tags: staging})
	return w
}

// execAs runs ecs:ExecuteCommand with the issued credentials, as
// `aws ecs execute-command` does, and returns the SSM session id.
func (w *accessWorld) execAs(issued awsfake.AssumedRole, task, container string) string {
	w.t.Helper()
	ctx := context.Background()
	c := ecs.NewFromConfig(w.aws.ConfigFor(ctx, issued.AccessKeyID, issued.SecretAccessKey, issued.SessionToken))
	out, err := c.ExecuteCommand(ctx, &ecs.ExecuteCommandInput{
		Cluster: aws.String("staging"), Task: aws.String(task), Container: aws.String(container),
		Command: aws.String("/bin/sh"), Interactive: true,
	})
	if err != nil {
		w.t.Fatalf("execute-command on %s/%s: %v", task, container, err)
	}
	return aws.ToString(out.Session.SessionId)
}

// liveExecSessions lists the active SSM sessions of the grant's role
// session through the SSM API, as tokken sees them.
func (w *accessWorld) liveExecSessions(owner string) []ssmtypes.Session {
	w.t.Helper()
	ctx := context.Background()
	out, err := ssm.NewFromConfig(w.aws.Config(ctx)).DescribeSessions(ctx, &ssm.DescribeSessionsInput{
		State:   ssmtypes.SessionStateActive,
		Filters: []ssmtypes.SessionFilter{{Key: ssmtypes.SessionFilterKeyOwner, Value: aws.String(owner)}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Sessions
}

// endedSessionsAudited returns, for request id, what its session_ended
// audit events name (session id → target) once the audit channel carries
// a line naming each of want's sessions and targets.
func (w *accessWorld) endedSessionsAudited(id string, want map[string]string) map[string]string {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		n := 0
		for _, m := range f.Messages(auditChannel) {
			for s, target := range want {
				if strings.Contains(m.Text, "*"+access.ActSessionEnded+"*") && strings.Contains(m.Text, id) &&
					strings.Contains(m.Text, "session "+s+" on "+target) {
					n++
				}
			}
		}
		return n == len(want)
	})
	events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
	if err != nil {
		w.t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range events {
		if e.Action == access.ActSessionEnded {
			got[e.Detail["session"]] = e.Detail["target"]
		}
	}
	return got
}

// policyStatements decodes a session policy into its statements by Sid.
func policyStatements(t *testing.T, doc string) map[string]map[string]any {
	t.Helper()
	var p struct{ Statement []map[string]any }
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("session policy %q: %v", doc, err)
	}
	out := map[string]map[string]any{}
	for _, s := range p.Statement {
		sid, _ := s["Sid"].(string)
		out[sid] = s
	}
	return out
}

func TestECSExecByServiceExpires(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	id := w.request(requester, "staging-exec 30m web investigating 502s <!here>")
	r := w.get(id)
	if r.ECS == nil || r.ECS.Service != "web" || r.ECS.ByTask || r.ECS.Task != webTask || r.ECS.Container != "app" ||
		r.Reason != "investigating 502s <!here>" {
		t.Fatalf("request target %+v, reason %q", r.ECS, r.Reason)
	}
	msg := w.waitMessage(id, "Waiting for approval", "0 of 1", "*ECS service* `web` in cluster `staging` (all its tasks), containers `app`")
	if strings.Contains(msg, "<!here>") {
		t.Errorf("the reason is not escaped in the approver message: %s", msg)
	}
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	issued, link := w.credentials(requester, id, 1)
	if link != "" {
		t.Errorf("an ecs-exec grant got a console link: %s", link)
	}
	if issued.RoleARN != execRole {
		t.Errorf("assumed %s, want %s", issued.RoleARN, execRole)
	}

	// The session policy: ExecuteCommand on the cluster and on the web
	// service's tasks (by the managed tag), only in container app, only
	// on tasks tagged Env=staging; read-only calls; the window-end Deny.
	st := policyStatements(t, issued.Policy)
	cluster := "arn:aws:ecs:us-east-1:" + awsfake.AccountID + ":cluster/staging"
	if s := st["ExecCluster"]; s == nil || s["Action"] != "ecs:ExecuteCommand" || s["Resource"] != cluster {
		t.Errorf("ExecCluster = %v", s)
	}
	task := st["ExecTask0"]
	cond, _ := json.Marshal(task["Condition"])
	if task == nil || task["Action"] != "ecs:ExecuteCommand" || task["Resource"] != "arn:aws:ecs:us-east-1:"+awsfake.AccountID+":task/staging/*" ||
		!containsAll(string(cond), `"aws:ResourceTag/aws:ecs:serviceName":"web"`, `"ecs:container-name":"app"`, `"aws:ResourceTag/Env":"staging"`) {
		t.Errorf("ExecTask0 = %v", task)
	}
	if s := st["Read"]; s == nil || !strings.Contains(issued.Policy, "ecs:DescribeTasks") || strings.Contains(issued.Policy, `"Action":"*","Resource":"*"}`) {
		t.Errorf("Read = %v in %s", s, issued.Policy)
	}
	if s := st["WindowEnd"]; s == nil || s["Effect"] != "Deny" || !strings.Contains(issued.Policy, "aws:CurrentTime") {
		t.Errorf("no window-end Deny: %s", issued.Policy)
	}
	if strings.Contains(issued.Policy, "ssm:StartSession") {
		t.Errorf("an exec grant may start SSM sessions directly: %s", issued.Policy)
	}

	// The DM: the exact command, the exports, how to find replaced tasks.
	dm := w.dmWith(requester, "aws ecs execute-command")
	if !containsAll(dm, `aws ecs execute-command --cluster staging --task `+webTask+` --container app --interactive --command \"/bin/sh\"`,
		"export AWS_REGION=us-east-1", "aws ecs list-tasks --cluster staging --service-name web --desired-status RUNNING") ||
		strings.Contains(dm, "sign-in link") {
		t.Errorf("credentials DM: %s", dm)
	}

	// Two shells: one in the task the DM names, one in a task a deployment
	// started during the window.
	w.aws.ECS().PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: webTask2, Service: "web", Family: "web", LastStatus: "RUNNING",
		EnableExecuteCommand: true, Containers: []awsfake.ECSContainerDef{{Name: "app", RuntimeID: webTask2 + "-3333333333", ExecAgent: "RUNNING"}},
		Tags: map[string]string{"Env": "staging"}})
	s1 := w.execAs(issued, webTask, "app")
	s2 := w.execAs(issued, webTask2, "app")
	live := w.liveExecSessions(issued.AssumedRoleARN)
	var targets []string
	for _, s := range live {
		targets = append(targets, aws.ToString(s.Target))
	}
	if len(live) != 2 || !strings.Contains(strings.Join(targets, " "), "ecs:staging_"+webTask+"_"+webRuntimeID) {
		t.Fatalf("live exec sessions %v", targets)
	}

	// The window ends: both sessions are terminated and counted.
	w.clock.Advance(31 * time.Minute)
	r = w.waitState(id, access.StateExpired)
	if n := len(w.liveExecSessions(issued.AssumedRoleARN)); n != 0 || r.End.Sessions != 2 {
		t.Fatalf("%d exec sessions still active, %d terminated, after expiry", n, r.End.Sessions)
	}
	w.waitMessage(id, "Expired", "2 SSM sessions terminated")
	events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	want := []string{access.ActRequested, access.ActApproved, access.ActActivating, access.ActActive, access.ActEnding,
		access.ActSessionEnded, access.ActSessionEnded, access.ActExpired}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit trail %v, want %v", actions, want)
	}
	// Each terminated shell is its own record naming the session and the
	// task and container it was in, stored and posted to the audit channel.
	wantEnded := map[string]string{
		s1: "ecs:staging_" + webTask + "_" + webRuntimeID,
		s2: "ecs:staging_" + webTask2 + "_" + webTask2 + "-3333333333",
	}
	if got := w.endedSessionsAudited(id, wantEnded); !maps.Equal(got, wantEnded) {
		t.Errorf("session_ended records %v, want %v", got, wantEnded)
	}
	w.checkNoLeaks(requester)
}

func TestECSExecByTaskRevoked(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	id := w.request(requester, "staging-exec 1h "+webTask+" heap dump")
	if r := w.get(id); r.ECS == nil || !r.ECS.ByTask || r.ECS.Task != webTask || r.ECS.Service != "web" {
		t.Fatalf("request target %+v", r.ECS)
	}
	w.waitMessage(id, "*ECS task* `"+webTask+"` in cluster `staging` (service `web`)")
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	issued, _ := w.credentials(requester, id, 1)
	if s := policyStatements(t, issued.Policy)["ExecTask0"]; s == nil ||
		s["Resource"] != "arn:aws:ecs:us-east-1:"+awsfake.AccountID+":task/staging/"+webTask ||
		strings.Contains(issued.Policy, "aws:ecs:serviceName") {
		t.Errorf("a task grant must name the task alone: %s", issued.Policy)
	}
	w.dmWith(requester, "--task "+webTask+" --container app")
	sid := w.execAs(issued, webTask, "app")
	if n := len(w.liveExecSessions(issued.AssumedRoleARN)); n != 1 {
		t.Fatalf("%d live exec sessions, want 1", n)
	}

	// An approver revokes with the one-line command.
	reply, _ := w.command(approver1, "revoke "+id+" done debugging")
	if !strings.Contains(reply.Text, "Ending access") {
		t.Fatalf("revoke answered %q", reply.Text)
	}
	r := w.waitState(id, access.StateRevoked)
	if n := len(w.liveExecSessions(issued.AssumedRoleARN)); n != 0 || r.End.Sessions != 1 || r.End.By != approver1 {
		t.Fatalf("after revoke: %d live sessions, end %+v", n, r.End)
	}
	w.waitMessage(id, "Revoked", "1 SSM session terminated")
	if got, want := w.endedSessionsAudited(id, map[string]string{sid: "ecs:staging_" + webTask + "_" + webRuntimeID}),
		map[string]string{sid: "ecs:staging_" + webTask + "_" + webRuntimeID}; !maps.Equal(got, want) {
		t.Errorf("session_ended records %v, want %v", got, want)
	}
	if doc, ok := w.aws.IAM().RolePolicy("tokken-staging-exec", "tokken-revoked"); !ok || !strings.Contains(doc, id) {
		t.Errorf("credentials not revoked in IAM: %q", doc)
	}
	w.checkNoLeaks(requester)
}

// TestECSExecRefusals: targets that cannot be reached are refused before
// anyone is asked to approve, naming the fix.
func TestECSExecRefusals(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	for _, tc := range []struct{ text, want string }{
		{"staging-exec 30m " + stoppedTask + " look at it", "is stopped, not RUNNING"},
		{"staging-exec 30m legacy look at it", "ECS Exec turned off (enableExecuteCommand is false)"},
		{"staging-exec 30m " + legacyTask + " look at it", "ssmmessages:CreateControlChannel"},
		{"staging-exec 30m worker look at it", "--enable-ecs-managed-tags"},
		{"staging-exec 30m batch look at it", "service batch is not in this profile"},
		{"staging-exec 30m " + batchTask + " look at it", "is not in this profile (needs cluster staging and services web, worker, legacy and tags Env=staging)"},
		{"staging-exec 30m nosuch look at it", "service nosuch is not in this profile"},
		{"staging-exec 30m web,api look at it", "is neither a service name nor a task id"},
		{"staging-exec 30m 9999999999abcdef0123456789abcdef look at it", "there is no task 9999999999abcdef0123456789abcdef"},
		{"staging-exec 30m web", "A reason is required"},
	} {
		_, rid := w.command(requester, tc.text)
		if got := w.lateAnswer(rid); !strings.Contains(got, tc.want) {
			t.Errorf("/access %s answered %q, want %q", tc.text, got, tc.want)
		}
	}
	if n := len(w.slack.Messages(stagingChannel)); n != 0 {
		t.Errorf("%d refused requests reached the approvers", n)
	}
}

// TestECSExecFromModal: the worker indexes the profile's cluster; the
// modal shows that cluster as context and offers its services in one
// select and its running tasks (of the picked service) in another, both
// answered by the ingress from the index without ECS; the submitted pick
// is checked and filed like the one-line command.
func TestECSExecFromModal(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	ctx := context.Background()
	fleet := ecsfleet.New(ecs.NewFromConfig(w.aws.Config(ctx)))
	if n, err := ecsindex.Refresh(ctx, fleet, w.store, []string{"staging"}, w.clock.Now()); err != nil || n == 0 {
		t.Fatalf("refresh: %d, %v", n, err)
	}
	r, _ := w.command(requester, "")
	if r.Text != "" {
		t.Fatalf("/access answered %q instead of opening the modal", r.Text)
	}
	modal, _ := json.Marshal(w.slack.Views()[0].Request)
	if !containsAll(string(modal), `"action_id":"access:ecs_service"`, `"action_id":"access:ecs_task"`,
		`*staging-exec* → cluster `+"`staging`") || strings.Contains(string(modal), "access:ecs_cluster") {
		t.Fatalf("the modal lacks the cluster context or the service and task selects: %s", modal)
	}
	ecsBefore := len(w.aws.Calls(awsfake.ECSService, ""))
	options := func(actionID, profile, service, query string) string {
		t.Helper()
		st := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
			"profile": {"access:profile": {SelectedOption: slack.OptionBlockObject{Value: profile}}},
		}}
		if service != "" {
			st.Values["ecs_service"] = map[string]slack.BlockAction{"access:ecs_service": {SelectedOption: slack.OptionBlockObject{Value: service}}}
		}
		req, _ := w.slack.Interaction(t, w.srv.URL+"/slack/options", slack.InteractionCallback{
			Type: slack.InteractionTypeBlockSuggestion, User: slack.User{ID: requester}, ActionID: "access:" + actionID, BlockID: actionID,
			Value: query, View: slack.View{ID: "V1", CallbackID: accessui.CallbackRequest, State: st},
		})
		status, body := do(t, req)
		if status != 200 {
			t.Fatalf("options: %d %s", status, body)
		}
		return body
	}
	if body := options("ecs_service", "staging-exec", "", ""); !containsAll(body, `"value":"web"`, "web (all its tasks)",
		"legacy (all its tasks) — ECS Exec off") || strings.Contains(body, webTask) {
		t.Errorf("service options: %s", body)
	}
	if body := options("ecs_service", "staging-exec", "", "work"); !strings.Contains(body, `"value":"worker"`) || strings.Contains(body, `"value":"web"`) {
		t.Errorf("service options for %q: %s", "work", body)
	}
	if body := options("ecs_task", "staging-exec", "", ""); !containsAll(body, `"value":"`+webTask+`"`, webTask+" of web",
		`"value":"`+legacyTask+`"`, legacyTask+" of legacy — ECS Exec off") || strings.Contains(body, stoppedTask) {
		t.Errorf("task options without a service: %s", body)
	}
	if body := options("ecs_task", "staging-exec", "web", ""); !strings.Contains(body, `"value":"`+webTask+`"`) ||
		strings.Contains(body, legacyTask) || strings.Contains(body, batchTask) {
		t.Errorf("task options of service web: %s", body)
	}
	if body := options("ecs_service", "prod-readonly", "", ""); strings.Contains(body, "web") {
		t.Errorf("ECS options for an sts profile: %s", body)
	}
	if n := len(w.aws.Calls(awsfake.ECSService, "")); n != ecsBefore {
		t.Errorf("the options made %d ECS calls; the index answers them", n-ecsBefore)
	}

	values := func() map[string]slack.BlockAction {
		return map[string]slack.BlockAction{
			"profile":  {SelectedOption: slack.OptionBlockObject{Value: "staging-exec"}},
			"duration": {SelectedOption: slack.OptionBlockObject{Value: "30m"}},
			"reason":   {Value: "checking the new build"},
		}
	}
	v := values()
	if body := w.submitView(requester, accessui.CallbackRequest, "", v); !strings.Contains(body, "Pick the service") {
		t.Fatalf("an ecs-exec request without a target was accepted: %q", body)
	}
	// A task picked, then the service changed to one it is not of.
	v["ecs_service"] = slack.BlockAction{SelectedOption: slack.OptionBlockObject{Value: "worker"}}
	v["ecs_task"] = slack.BlockAction{SelectedOption: slack.OptionBlockObject{Value: webTask}}
	if body := w.submitView(requester, accessui.CallbackRequest, "", v); !strings.Contains(body, "is not a running task of service worker") {
		t.Fatalf("a task of another service was accepted: %q", body)
	}
	// filed waits for the n-th approver message in the staging channel
	// and returns its request.
	filed := func(n int) access.Request {
		t.Helper()
		var id string
		w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
			msgs := f.Messages(stagingChannel)
			if len(msgs) < n {
				return false
			}
			id = requestIDRE.FindString(messageJSON(msgs[n-1]))
			return id != ""
		})
		return w.get(id)
	}

	v = values()
	v["ecs_service"] = slack.BlockAction{SelectedOption: slack.OptionBlockObject{Value: "web"}}
	if body := w.submitView(requester, accessui.CallbackRequest, "", v); body != "" {
		t.Fatalf("submission answered %q", body)
	}
	if req := filed(1); req.ECS == nil || req.ECS.Service != "web" || req.ECS.ByTask || req.Reason != "checking the new build" {
		t.Fatalf("request from the modal: %+v, reason %q", req.ECS, req.Reason)
	}

	// The service and one of its tasks: a grant for that task alone.
	v["ecs_task"] = slack.BlockAction{SelectedOption: slack.OptionBlockObject{Value: webTask}}
	v["reason"] = slack.BlockAction{Value: "heap dump of one task"}
	if body := w.submitView(requester, accessui.CallbackRequest, "", v); body != "" {
		t.Fatalf("submission answered %q", body)
	}
	if req := filed(2); req.ECS == nil || !req.ECS.ByTask || req.ECS.Task != webTask || req.ECS.Service != "web" || req.Reason != "heap dump of one task" {
		t.Fatalf("task request from the modal: %+v, reason %q", req.ECS, req.Reason)
	}

	// A task outside the profile is refused like the one-line command,
	// before any approver sees it.
	v = values()
	v["ecs_task"] = slack.BlockAction{SelectedOption: slack.OptionBlockObject{Value: batchTask}}
	if body := w.submitView(requester, accessui.CallbackRequest, "", v); body != "" {
		t.Fatalf("submission answered %q", body)
	}
	w.dmWith(requester, "is not in this profile (needs cluster staging")
	if n := len(w.slack.Messages(stagingChannel)); n != 2 {
		t.Errorf("%d approver messages, want 2: the refused pick reached the approvers", n)
	}
}

// TestECSExecExtendThenDone: an extension issues fresh credentials whose
// session policy still reaches only the approved service, to the new
// window end; "I'm done" terminates the live exec session.
func TestECSExecExtendThenDone(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	id := w.request(requester, "staging-exec 30m web tail the logs")
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	first, _ := w.credentials(requester, id, 1)
	end := w.get(id).Window.ExpiresAt
	dmCh, _ := w.slack.DMChannel(requester)

	w.askExtension(id, dmCh, "30m", "still tailing")
	w.waitMessage(id, "Extension asked", accessui.ActionApproveExtension)
	w.clickOn(approver2, accessui.ActionApproveExtension, id)
	w.waitFor(id, func(r access.Request) bool { return r.Window.ExpiresAt.Equal(end.Add(30 * time.Minute)) })
	second, _ := w.credentials(requester, id, 2)
	newEnd := end.Add(30 * time.Minute).UTC().Format(time.RFC3339)
	if !containsAll(second.Policy, `"aws:ResourceTag/aws:ecs:serviceName":"web"`, `"ecs:container-name":"app"`, newEnd) ||
		second.AccessKeyID == first.AccessKeyID {
		t.Errorf("extension credentials: %s", second.Policy)
	}
	sid := w.execAs(second, webTask, "app")

	w.click(requester, accessui.ActionDone, id, dmCh, "1.1")
	r := w.waitState(id, access.StateRevoked)
	if n := len(w.liveExecSessions(second.AssumedRoleARN)); n != 0 || r.End.Cause != access.CauseDone || r.End.Sessions != 1 {
		t.Fatalf("after I'm done: %d live sessions, end %+v", n, r.End)
	}
	want := map[string]string{sid: "ecs:staging_" + webTask + "_" + webRuntimeID}
	if got := w.endedSessionsAudited(id, want); !maps.Equal(got, want) {
		t.Errorf("session_ended records %v, want %v", got, want)
	}
	w.checkNoLeaks(requester)
}

// TestForgedECSTargetRefused: someone who may write the table (the
// ingress) rewrites a pending ecs-exec request's target to a service the
// profile does not give; the approval is genuine, but the worker re-derives
// the target from ECS and the profile and refuses: no AssumeRole.
func TestForgedECSTargetRefused(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	id := w.request(requester, "staging-exec 30m web investigating 502s")
	w.waitMessage(id, "Waiting for approval")
	if _, err := (bot.Table[access.Request]{Store: w.store, Kind: access.KindRequest}).Update(context.Background(), id,
		func(r *access.Request) error { r.ECS.Service, r.ECS.Task = "batch", batchTask; return nil }); err != nil {
		t.Fatal(err)
	}
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateFailed)
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Fatalf("%d AssumeRole calls for a request whose target was rewritten", n)
	}
	w.waitMessage(id, "Failed", "refused", "batch")
}

// TestECSTaskStoppedBeforeApprovalRefused: the worker looks the target up
// in ECS again before it calls STS, so a task that stopped while the
// request waited for approval is refused, with the reason, and no
// credentials are issued.
func TestECSTaskStoppedBeforeApprovalRefused(t *testing.T) {
	t.Parallel()
	w := ecsWorld(t)
	id := w.request(requester, "staging-exec 30m "+webTask+" heap dump")
	w.waitMessage(id, "Waiting for approval")
	w.aws.ECS().SetTaskStatus(webTask, "STOPPED")
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateFailed)
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Fatalf("%d AssumeRole calls for a task that had stopped", n)
	}
	w.waitMessage(id, "Failed", "refused", "stopped, not RUNNING")
}
