package e2e

// The /access story end to end. Most scenarios run tokken's access wiring
// in-process (accessui.New with the same store, queue, timers, router,
// Slack client, awsgrant and ec2fleet that feature_access.go builds),
// behind the real HTTP entry point (httpapi + slacksig), so that time can
// be driven: a virtual clock starts on a Tuesday at 10:00 UTC (inside the
// shipped working-hours rule) and jumps forward to expire grants, with
// localtimer firing on it. Slack is slackfake (signed commands and clicks in,
// Web API calls recorded); AWS is awsfake through the real SDK clients; the
// policy set is the one shipped in policies/ (one scenario raises
// prod-readonly's approvals to 2 in a copy, for the 2-of-3 quorum). One
// scenario runs the built `tokken serve` binary, to prove feature_access.go
// wires the same thing, and `tokken audit` reads its trail back.
//
// Who is who in policies/groups.yaml: U0SRE00001 and the members of Slack
// user group S0SREGRP01 are SRE (request anything, approve, revoke,
// review); members of S0ONCALL01 are on call (break-glass only);
// U0DEV00001 is a devUser (staging-admin only).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/ec2fleet"
	"github.com/tokken/tokken/infra/ecsfleet"
	"github.com/tokken/tokken/infra/ecsindex"
	"github.com/tokken/tokken/infra/identitycenter"
	"github.com/tokken/tokken/infra/localqueue"
	"github.com/tokken/tokken/infra/localtimer"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/policies"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	approverChannel = "C0PRODAPPR" // prod-readonly and prod-ssm
	stagingChannel  = "C0STAGING1"
	auditChannel    = "C0AUDIT001"
	accessOps       = "C0OPS00001"
	sreGroup        = "S0SREGRP01"
	oncallGroup     = "S0ONCALL01"
	requester       = "U0SRE00001" // SRE by id
	approver1       = "U0SRE00002" // SRE through the Slack user group
	approver2       = "U0SRE00003"
	approver3       = "U0SRE00004"
	oncall          = "U0ONCALL01"
	devUser         = "U0DEV00001"          // developer: staging-admin only
	prodWeb         = "i-0abc123def4567890" // Env=prod
	prodDB          = "i-0abc123def4567891" // Env=prod
	stagingBox      = "i-0fedcba987654321f" // Env=staging
	waitAccess      = 20 * time.Second
	prodWorkerKey   = "ASIAFAKEPRODWORKER01"
	stageWorkerKey  = "ASIAFAKESTAGEWORKER1"
)

var requestIDRE = regexp.MustCompile(`r-[0-9a-z]{12}`)

// vclock is the virtual clock: real time plus an offset that Advance moves.
// It implements localtimer.Clock; After wakes early when the clock jumps.
type vclock struct {
	mu     sync.Mutex
	offset time.Duration
	moved  chan struct{}
	stop   chan struct{}
}

func newClock(t *testing.T, start time.Time) *vclock {
	c := &vclock{offset: time.Until(start), moved: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(func() { close(c.stop) })
	return c
}

func (c *vclock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *vclock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	close(c.moved)
	c.moved = make(chan struct{})
}

func (c *vclock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	deadline := c.Now().Add(d)
	go func() {
		for {
			c.mu.Lock()
			moved, now := c.moved, time.Now().Add(c.offset)
			c.mu.Unlock()
			if !now.Before(deadline) {
				ch <- now
				return
			}
			t := time.NewTimer(deadline.Sub(now))
			select {
			case <-t.C:
			case <-moved:
				t.Stop()
			case <-c.stop:
				t.Stop()
				return
			}
		}
	}()
	return ch
}

// nextTuesday10 is the coming Tuesday at 10:00 UTC: inside the shipped
// working-hours rule whenever the suite runs.
func nextTuesday10() time.Time {
	now := time.Now().UTC()
	d := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC)
	for d.Weekday() != time.Tuesday || !d.After(now) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// accessWorld is tokken's access feature serving over HTTP against the fakes.
type accessWorld struct {
	t         *testing.T
	slack     *slackfake.Fake
	aws       *awsfake.Fake
	clock     *vclock
	policyDir string
	dbPath    string
	logs      *logbuf.Buffer

	store   *boltstore.Store
	queue   *localqueue.Queue
	timers  *localtimer.Service
	router  *router.Router
	srv     *httptest.Server
	feature *accessui.Feature
	// idc is the IAM Identity Center instance identity-center profiles are
	// granted on (awsfake), with its access portal at idcPortal.
	idc awsfake.IDCInstance
}

// idcPortal is the AWS access portal the worlds configure.
const idcPortal = "https://d-1234567890.awsapps.com/start"

func newAccessWorld(t *testing.T, policyDir string) *accessWorld {
	t.Helper()
	w := &accessWorld{
		t: t, slack: slackfake.New(t), aws: awsfake.New(t), clock: newClock(t, nextTuesday10()),
		policyDir: policyDir, dbPath: filepath.Join(t.TempDir(), "tokken.db"), logs: &logbuf.Buffer{},
	}
	w.aws.SetNow(w.clock.Now)
	for id, name := range map[string]string{approverChannel: "prod-approvals", stagingChannel: "staging", auditChannel: "audit", accessOps: "ops"} {
		w.slack.AddChannel(id, name)
	}
	sre := []string{approver1, approver2, approver3}
	for i := range 50 {
		sre = append(sre, fmt.Sprintf("U0SREX%04d", i))
	}
	for _, u := range append([]string{requester, oncall, devUser}, sre...) {
		w.slack.AddUser(slackfake.User{ID: u, Name: strings.ToLower(u), TZ: "Asia/Tokyo"})
	}
	w.slack.AddUserGroup(sreGroup, sre...)
	w.slack.AddUserGroup(oncallGroup, oncall)
	w.aws.EC2().AddInstance(awsfake.Instance{ID: prodWeb, Name: "web-01", Tags: map[string]string{"Env": "prod"}})
	w.aws.EC2().AddInstance(awsfake.Instance{ID: prodDB, Name: "db-01", Tags: map[string]string{"Env": "prod"}})
	w.aws.EC2().AddInstance(awsfake.Instance{ID: stagingBox, Name: "stage-01", Tags: map[string]string{"Env": "staging"}})
	for _, role := range []string{"tokken-prod-readonly", "tokken-prod-ssm"} {
		w.aws.IAM().AddGrantableRole("arn:aws:iam::111111111111:role/" + role)
	}
	w.aws.IAM().AddGrantableRole("arn:aws:iam::222222222222:role/tokken-staging-admin")
	w.idc = w.aws.IdentityCenter().AddInstance(awsfake.IDCInstance{})
	w.open()
	t.Cleanup(func() {
		w.close()
		if t.Failed() {
			t.Logf("logs:\n%s\nslack:\n%s", w.logs.String(), w.slack.Dump(40))
		}
	})
	return w
}

// open builds the process: what `tokken serve` builds for the access
// feature, over the world's store file.
func (w *accessWorld) open() {
	t := w.t
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := boltstore.Open(w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load(w.policyDir)
	if err != nil {
		t.Fatal(err)
	}
	mux := bot.NewJobMux()
	queue, err := localqueue.New(store, mux.HandleJob, localqueue.Options{Log: log, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	timers, err := localtimer.New(store, queue, localtimer.Options{Clock: w.clock, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(router.Deps{Store: store, Queue: queue, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	sc := slackapi.New(w.slack.Token(), slackapi.Options{APIURL: w.slack.APIURL(), Logger: log})
	mux.Handle(router.JobRespond, router.RespondJob(sc))
	// tokken runs in the production account of the shipped profiles
	// (111111111111), where it may write the roles' revocation policies.
	w.aws.STS().AddCaller(prodWorkerKey, "arn:aws:sts::111111111111:assumed-role/tokken-worker/tokken-worker")
	awsCfg := w.aws.ConfigFor(ctx, prodWorkerKey, "fake-secret", "")
	fleet := ec2fleet.New(awsCfg)
	f, err := accessui.New(accessui.Deps{
		Store: store, Queue: queue, Timers: timers, Authorizer: set, Catalogue: set, SlackGroups: set.SlackUserGroups(),
		Granter: awsgrant.New(awsCfg, awsgrant.Options{
			FederationURL: w.aws.FederationURL(), Now: w.clock.Now, Logger: log, ConfirmWait: 2 * time.Second,
		}),
		Inventory: fleet, Search: fleet, Slack: sc, ECS: ecsfleet.New(ecs.NewFromConfig(awsCfg)), ECSSearch: ecsindex.Index{Store: store},
		IdentityCenter: identitycenter.NewFromConfig(awsCfg, identitycenter.Options{
			InstanceARN: w.idc.ARN, IdentityStoreID: w.idc.IdentityStoreID, PollInterval: 20 * time.Millisecond,
		}),
		PortalURL: idcPortal, IdentityUsers: set,
		Auditor:      auditlog.New(store, auditlog.Options{Channel: auditChannel, Poster: sc, Logger: log}),
		AuditChannel: auditChannel, OpsChannel: accessOps, Location: time.UTC, Region: awsCfg.Region,
		Clock: w.clock.Now, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Register(rt, mux)
	// The reconcile sweep arrives as template.yaml's SweepSchedule sends it
	// and runs the access sweeper, as the app's sweep job does.
	mux.Handle(sweepKind, func(ctx context.Context, _ bot.Job) error { return f.Service().Sweep(ctx) })
	queue.Start()
	w.store, w.queue, w.timers, w.router, w.feature = store, queue, timers, rt, f
	w.srv = httptest.NewServer(httpapi.New(httpapi.Deps{Router: rt, Verifier: slacksig.Verifier{Secret: []byte(w.slack.SigningSecret())}, Log: log}))
}

// close shuts the process down the way `tokken serve` does.
func (w *accessWorld) close() {
	if w.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w.srv.Close()
	_ = w.router.Wait(ctx)
	_ = w.timers.Close()
	_ = w.queue.Close(ctx)
	_ = w.store.Close()
	w.srv = nil
}

func (w *accessWorld) restart() {
	w.t.Helper()
	w.close()
	w.open()
}

// reply is a synchronous answer to a command.
type reply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

// command runs a slash command and returns the immediate answer and the
// id of its response_url (where late answers go).
func (w *accessWorld) command(user, text string) (reply, string) {
	w.t.Helper()
	rid := fmt.Sprintf("R%d", time.Now().UnixNano())
	req, _ := w.slack.SlashCommand(w.t, w.srv.URL+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: text, UserID: user, ChannelID: "C0RANDOM01", ResponseURL: w.slack.ResponseURL(rid),
	})
	status, body := do(w.t, req)
	var r reply
	if status != http.StatusOK || (body != "" && json.Unmarshal([]byte(body), &r) != nil) {
		w.t.Fatalf("/access %s: %d %q", text, status, body)
	}
	return r, rid
}

// lateAnswer waits for the first post to response_url rid.
func (w *accessWorld) lateAnswer(rid string) string {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool { return len(f.ResponsePosts(rid)) > 0 })
	return w.slack.ResponsePosts(rid)[0].Text
}

// request files a one-line request and returns its id once it is posted.
func (w *accessWorld) request(user, text string) string {
	w.t.Helper()
	r, rid := w.command(user, text)
	if !strings.Contains(r.Text, "Checking your request") {
		w.t.Fatalf("/access %s answered %q", text, r.Text)
	}
	answer := w.lateAnswer(rid)
	id := requestIDRE.FindString(answer)
	if id == "" {
		w.t.Fatalf("/access %s: late answer %q names no request", text, answer)
	}
	w.waitFor(id, func(r access.Request) bool { return !r.Message.IsZero() })
	return id
}

func (w *accessWorld) get(id string) access.Request {
	w.t.Helper()
	r, err := w.feature.Service().Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// waitFor blocks until request id satisfies cond, re-checking after every
// Slack call (every transition re-renders its message).
func (w *accessWorld) waitFor(id string, cond func(access.Request) bool) access.Request {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitAccess, func(*slackfake.Fake) bool {
		r, err := w.feature.Service().Get(context.Background(), id)
		return err == nil && cond(r)
	})
	return w.get(id)
}

func (w *accessWorld) waitState(id string, s access.State) access.Request {
	w.t.Helper()
	return w.waitFor(id, func(r access.Request) bool { return r.State == s })
}

// click sends a button click on the message at channel/ts.
func (w *accessWorld) click(user, actionID, value, channel, ts string) {
	w.t.Helper()
	req, _ := w.clickRequest(user, actionID, value, channel, ts)
	if status, body := do(w.t, req); status != http.StatusOK {
		w.t.Fatalf("click %s by %s: %d %q", actionID, user, status, body)
	}
}

func (w *accessWorld) clickRequest(user, actionID, value, channel, ts string) (*http.Request, slack.InteractionCallback) {
	return w.slack.Interaction(w.t, w.srv.URL+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		Container:      slack.Container{Type: "message", ChannelID: channel, MessageTs: ts},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: actionID, Value: value}}},
	})
}

// clickOn clicks a button on request id's approver message.
func (w *accessWorld) clickOn(user, actionID, id string) {
	w.t.Helper()
	m := w.get(id).Message
	w.click(user, actionID, id, m.Channel, m.TS)
}

// submitView submits a modal with the given values; it returns the
// response body ("" when the modal closes).
func (w *accessWorld) submitView(user, callbackID, meta string, values map[string]slack.BlockAction) string {
	w.t.Helper()
	state := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{}}
	for block, v := range values {
		state.Values[block] = map[string]slack.BlockAction{accessui.Namespace + ":" + block: v}
	}
	req, _ := w.slack.Interaction(w.t, w.srv.URL+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: user},
		View: slack.View{ID: fmt.Sprintf("V%d", time.Now().UnixNano()), Hash: "h1", CallbackID: callbackID, PrivateMetadata: meta, State: state},
	})
	status, body := do(w.t, req)
	if status != http.StatusOK {
		w.t.Fatalf("submit %s: %d %q", callbackID, status, body)
	}
	return body
}

// messageJSON renders m as JSON without HTML escaping, so mrkdwn reads as
// Slack receives it.
func messageJSON(m slackfake.Message) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Text        string
		Blocks      slack.Blocks
		Attachments []slack.Attachment
	}{m.Text, m.Blocks, m.Attachments})
	// slack-go's own MarshalJSON methods escape HTML regardless.
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(b.String())
}

// containsAll reports whether s contains every one of want.
func containsAll(s string, want ...string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// waitMessage waits until request id's message contains all of want.
func (w *accessWorld) waitMessage(id string, want ...string) string {
	w.t.Helper()
	var last string
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		r, err := w.feature.Service().Get(context.Background(), id)
		if err != nil || r.Message.IsZero() {
			return false
		}
		m, ok := f.Message(r.Message.Channel, r.Message.TS)
		if !ok {
			return false
		}
		last = messageJSON(m)
		return containsAll(last, want...)
	})
	return last
}

// ephemeralTo waits for an ephemeral message to user containing want.
func (w *accessWorld) ephemeralTo(user, want string) {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Ephemerals(user) {
			if strings.Contains(m.Text, want) {
				return true
			}
		}
		return false
	})
}

// dmWith waits for a DM to user whose JSON contains want and returns it.
func (w *accessWorld) dmWith(user, want string) string {
	w.t.Helper()
	var found string
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.DMs(user) {
			if j := messageJSON(m); strings.Contains(j, want) {
				found = j
				return true
			}
		}
		return false
	})
	return found
}

var (
	exportRE  = regexp.MustCompile(`export AWS_ACCESS_KEY_ID=(\S+)\\nexport AWS_SECRET_ACCESS_KEY=(\S+)\\nexport AWS_SESSION_TOKEN=(\S+?)\\n`)
	consoleRE = regexp.MustCompile(`<(http[^|]+)\|open the AWS console>`)
)

// credentials waits for the n-th credentials DM of user and checks that
// STS really issued them for request id; it returns the assumed role.
func (w *accessWorld) credentials(user, id string, n int) (awsfake.AssumedRole, string) {
	w.t.Helper()
	var dms []string
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		dms = dms[:0]
		for _, m := range f.DMs(user) {
			if j := messageJSON(m); strings.Contains(j, "export AWS_SECRET_ACCESS_KEY") && strings.Contains(j, id) {
				dms = append(dms, j)
			}
		}
		return len(dms) >= n
	})
	dm := dms[n-1]
	m := exportRE.FindStringSubmatch(dm)
	if m == nil {
		w.t.Fatalf("credentials DM without exports: %s", dm)
	}
	issued, ok := w.aws.STS().Issued(m[1], m[2], m[3])
	if !ok {
		w.t.Fatalf("the DM's credentials were not issued by STS: %s", dm)
	}
	if issued.RoleSessionName != id || issued.SourceIdentity != user || !strings.Contains(issued.Policy, "aws:CurrentTime") {
		w.t.Fatalf("issued %+v for %s", issued, id)
	}
	link := ""
	if c := consoleRE.FindStringSubmatch(dm); c != nil {
		link = strings.ReplaceAll(c[1], "&amp;", "&")
	}
	return issued, link
}

// signIn follows a console link and checks the federation endpoint logged
// the issued credentials in.
func (w *accessWorld) signIn(link string, issued awsfake.AssumedRole) {
	w.t.Helper()
	if link == "" {
		w.t.Fatal("no console link in the DM")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(link)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		w.t.Fatalf("console link answered %d", resp.StatusCode)
	}
	for _, l := range w.aws.Federation().Logins() {
		if l.AccessKeyID == issued.AccessKeyID {
			return
		}
	}
	w.t.Fatalf("console link did not sign in as %s", issued.AssumedRoleARN)
}

// approve files a request as requester and has approver1 approve it; it
// returns the request once active and the issued role.
func (w *accessWorld) approvedRequest(text string) (string, awsfake.AssumedRole) {
	w.t.Helper()
	id := w.request(requester, text)
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	issued, _ := w.credentials(requester, id, 1)
	return id, issued
}

// checkNoLeaks scans the logs, the store file and every Slack call that is
// not a DM to the requester for any credential STS issued.
func (w *accessWorld) checkNoLeaks(dmUsers ...string) {
	w.t.Helper()
	var secrets []string
	for _, a := range w.aws.STS().AssumedRoles() {
		secrets = append(secrets, a.AccessKeyID, a.SecretAccessKey, a.SessionToken)
	}
	if len(secrets) == 0 {
		w.t.Fatal("no credentials were issued: nothing to scan for")
	}
	w.close()
	db, err := os.ReadFile(w.dbPath)
	if err != nil {
		w.t.Fatal(err)
	}
	dms := map[string]bool{}
	for _, u := range dmUsers {
		if ch, ok := w.slack.DMChannel(u); ok {
			dms[ch] = true
		}
	}
	var slackText strings.Builder
	for _, c := range w.slack.Calls("") {
		if dms[c.Channel] && c.Method == "chat.postMessage" {
			continue
		}
		fmt.Fprintf(&slackText, "%s %v\n", c.Method, c.Fields)
	}
	for _, s := range secrets {
		for where, text := range map[string]string{"log": w.logs.String(), "store": string(db), "slack": slackText.String()} {
			if strings.Contains(text, s) {
				w.t.Errorf("a credential (%.8s…) leaked into the %s", s, where)
			}
		}
	}
}

func TestAccessApproveExpire(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-ssm 30m "+prodWeb+" investigating 5xx on web-01 <!channel>")
	msg := w.waitMessage(id, "Waiting for approval", "0 of 1", accessui.ActionApprove, accessui.ActionDeny)
	if strings.Contains(msg, "<!channel>") || !strings.Contains(msg, "&lt;!channel&gt;") {
		t.Errorf("the reason is not escaped in the approver message: %s", msg)
	}

	// The requester cannot approve their own request; a devUser may not approve.
	w.clickOn(requester, accessui.ActionApprove, id)
	w.ephemeralTo(requester, "You cannot approve, deny or review your own request")
	w.clickOn(devUser, accessui.ActionApprove, id)
	w.ephemeralTo(devUser, "You are not allowed to approve here")
	if r := w.get(id); r.State != access.StatePending || len(r.Approvals) != 0 {
		t.Fatalf("refused clicks changed the request: %s %v", r.State, r.Approvers())
	}

	w.clickOn(approver1, accessui.ActionApprove, id)
	r := w.waitState(id, access.StateActive)
	if want := r.Window.ActivatedAt.Add(30 * time.Minute); !r.Window.ExpiresAt.Equal(want) {
		t.Errorf("window %+v: not 30 minutes from activation", r.Window)
	}
	issued, link := w.credentials(requester, id, 1)
	w.signIn(link, issued)
	if !strings.Contains(issued.Policy, prodWeb) || !strings.Contains(issued.Policy, "ssm:StartSession") {
		t.Errorf("ssm session policy does not name the approved instance: %s", issued.Policy)
	}
	dm := w.dmWith(requester, "aws ssm start-session --target "+prodWeb)
	if !strings.Contains(dm, "AWS-StartPortForwardingSession") {
		t.Errorf("no port-forwarding example: %s", dm)
	}
	w.dmWith(requester, accessui.ActionDone)
	w.waitMessage(id, "Active", "until", "<@"+approver1+">", accessui.ActionRevoke)

	// A live session opened with the grant, then the window ends.
	sid := w.aws.SSM().OpenSession(prodWeb, issued.AssumedRoleARN)
	w.clock.Advance(31 * time.Minute)
	r = w.waitState(id, access.StateExpired)
	if n := len(w.aws.SSM().ActiveSessions()); n != 0 || r.End.Sessions != 1 {
		t.Fatalf("%d sessions still active, %d terminated, after expiry", n, r.End.Sessions)
	}
	w.waitMessage(id, "Expired", "1 SSM session terminated")
	w.dmWith(requester, "expired")

	events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	want := []string{access.ActRequested, access.ActApproved, access.ActActivating, access.ActActive, access.ActEnding,
		access.ActSessionEnded, access.ActExpired}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("audit trail %v, want %v", actions, want)
	}
	if got := w.endedSessionsAudited(id, map[string]string{sid: prodWeb}); got[sid] != prodWeb || len(got) != 1 {
		t.Errorf("session_ended records %v, want %s on %s", got, sid, prodWeb)
	}
	if len(w.slack.Messages(auditChannel)) < len(want) {
		t.Errorf("%d lines in the audit channel, want at least %d", len(w.slack.Messages(auditChannel)), len(want))
	}
	if n := len(w.aws.STS().AssumedRoles()); n != 1 {
		t.Errorf("%d AssumeRole calls, want 1", n)
	}
	w.checkNoLeaks(requester)
}

func TestAccessDenyWithReason(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-readonly 1h look at the billing console")
	w.clickOn(approver1, accessui.ActionDeny, id)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool { return len(f.Views()) == 1 })
	v := w.slack.Views()[0]
	if v.Request.CallbackID != accessui.CallbackDeny || v.Request.PrivateMetadata != id {
		t.Fatalf("deny modal %+v", v.Request)
	}
	if body := w.submitView(approver1, accessui.CallbackDeny, id, map[string]slack.BlockAction{"reason": {Value: "  "}}); !strings.Contains(body, `"response_action":"errors"`) {
		t.Fatalf("blank reason accepted: %q", body)
	}
	if body := w.submitView(approver1, accessui.CallbackDeny, id, map[string]slack.BlockAction{"reason": {Value: "use the read-only dashboard <!here>"}}); body != "" {
		t.Fatalf("deny submission answered %q", body)
	}
	r := w.waitState(id, access.StateDenied)
	if r.Denial.By != approver1 {
		t.Errorf("denial %+v", r.Denial)
	}
	msg := w.waitMessage(id, "Denied", "<@"+approver1+">", "use the read-only dashboard &lt;!here&gt;")
	if strings.Contains(msg, accessui.ActionApprove) {
		t.Error("a denied request still shows Approve")
	}
	w.dmWith(requester, "was denied by")

	// A late approval is told who decided.
	w.clickOn(approver2, accessui.ActionApprove, id)
	w.ephemeralTo(approver2, "Too late: this is already denied by <@"+approver1+">")
	if n := len(w.aws.STS().AssumedRoles()); n != 0 {
		t.Errorf("%d AssumeRole calls for a denied request", n)
	}
}

func TestAccessQuorumAndDuplicateDeliveries(t *testing.T) {
	t.Parallel()
	// The shipped set with prod-readonly needing two approvers.
	dir := policyCopy(t, 2, true)
	w := newAccessWorld(t, dir)
	id := w.request(requester, "prod-readonly 1h quarterly access review")
	w.waitMessage(id, "0 of 2")

	// One click delivered three times (a retry, a double submit) counts once.
	m := w.get(id).Message
	req, cb := w.clickRequest(approver1, accessui.ActionApprove, id, m.Channel, m.TS)
	for i := range 3 {
		if i > 0 {
			req, _ = w.slack.Interaction(t, w.srv.URL+"/slack/interactions", cb)
		}
		if status, body := do(t, req); status != http.StatusOK {
			t.Fatalf("delivery %d: %d %q", i, status, body)
		}
	}
	w.waitMessage(id, "1 of 2", "<@"+approver1+">")
	if r := w.get(id); len(r.Approvals) != 1 || r.State != access.StatePending {
		t.Fatalf("after a triple delivery: %s, approvals %v", r.State, r.Approvers())
	}
	// A second, new click by the same approver is refused.
	w.clickOn(approver1, accessui.ActionApprove, id)
	w.ephemeralTo(approver1, "You have already approved this")

	w.clickOn(approver2, accessui.ActionApprove, id)
	w.waitState(id, access.StateActive)
	w.waitMessage(id, "Active", "<@"+approver1+">, <@"+approver2+">")
	w.credentials(requester, id, 1)
	w.clickOn(approver3, accessui.ActionApprove, id)
	w.ephemeralTo(approver3, "Too late")
	if n := len(w.aws.STS().AssumedRoles()); n != 1 {
		t.Errorf("%d AssumeRole calls, want 1", n)
	}
}

func TestAccessConcurrentApprovals(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id := w.request(requester, "prod-ssm 30m "+prodWeb+" sev2 on web-01")
	m := w.get(id).Message
	const n = 50
	reqs := make([]*http.Request, n)
	for i := range n {
		reqs[i], _ = w.clickRequest(fmt.Sprintf("U0SREX%04d", i), accessui.ActionApprove, id, m.Channel, m.TS)
	}
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.DefaultClient.Do(reqs[i])
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("click %d: status %d", i, s)
		}
	}
	r := w.waitState(id, access.StateActive)
	if len(r.Approvals) != 1 {
		t.Fatalf("%d approvals recorded, want 1", len(r.Approvals))
	}
	winner := r.Approvals[0].By
	w.credentials(requester, id, 1)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		told := 0
		for i := range n {
			u := fmt.Sprintf("U0SREX%04d", i)
			for _, e := range f.Ephemerals(u) {
				if strings.Contains(e.Text, "Too late") && strings.Contains(e.Text, "<@"+winner+">") {
					told++
					break
				}
			}
		}
		return told == n-1
	})
	if got := len(w.aws.STS().AssumedRoles()); got != 1 {
		t.Fatalf("%d AssumeRole calls for 50 concurrent approvals, want exactly 1", got)
	}
}

func TestAccessBreakGlassFromModal(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	// On call may only break glass: the modal offers prod-ssm as such.
	r, _ := w.command(oncall, "")
	if r.Text != "" {
		t.Fatalf("/access answered %q instead of opening the modal", r.Text)
	}
	views := w.slack.Views()
	if len(views) != 1 || views[0].Request.CallbackID != accessui.CallbackRequest {
		t.Fatalf("views opened: %+v", views)
	}
	modal, _ := json.Marshal(views[0].Request)
	if !strings.Contains(string(modal), "prod-ssm (break-glass only)") || strings.Contains(string(modal), `"prod-readonly"`) {
		t.Fatalf("modal profiles: %s", modal)
	}

	// The instance select searches EC2, narrowed to what prod-ssm allows.
	profileChosen := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
		"profile": {"access:profile": {SelectedOption: slack.OptionBlockObject{Value: "prod-ssm"}}},
	}}
	req, _ := w.slack.Interaction(t, w.srv.URL+"/slack/options", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockSuggestion, User: slack.User{ID: oncall}, ActionID: "access:targets", BlockID: "targets",
		Value: "", View: slack.View{ID: "V1", CallbackID: accessui.CallbackRequest, State: profileChosen},
	})
	status, body := do(t, req)
	if status != 200 || !strings.Contains(body, prodWeb) || !strings.Contains(body, "web-01") || strings.Contains(body, stagingBox) {
		t.Fatalf("options: %d %s", status, body)
	}

	values := map[string]slack.BlockAction{
		"profile":  {SelectedOption: slack.OptionBlockObject{Value: "prod-ssm"}},
		"targets":  {SelectedOptions: []slack.OptionBlockObject{{Value: prodWeb}}},
		"duration": {SelectedOption: slack.OptionBlockObject{Value: "30m"}},
		"reason":   {Value: "sev1: checkout down, nobody answers the phone"},
	}
	if body := w.submitView(oncall, accessui.CallbackRequest, "", values); !strings.Contains(body, "break-glass") {
		t.Fatalf("a break-glass-only profile without break-glass was accepted: %q", body)
	}
	values["break_glass"] = slack.BlockAction{SelectedOptions: []slack.OptionBlockObject{{Value: "yes"}}}
	if body := w.submitView(oncall, accessui.CallbackRequest, "", values); body != "" {
		t.Fatalf("submission answered %q", body)
	}
	dm := w.dmWith(oncall, "is being granted")
	id := requestIDRE.FindString(dm)
	req2 := w.waitState(id, access.StateActive)
	if !req2.BreakGlass.NeedsReview() {
		t.Fatal("break-glass use does not await review")
	}
	w.credentials(oncall, id, 1)
	w.waitMessage(id, "Break-glass", accessui.NeedsReviewText, accessui.ActionReview)

	// Announced loudly in the audit channel, with a Reviewed button.
	var announcement slackfake.Message
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(auditChannel) {
			if strings.Contains(messageJSON(m), "BREAK-GLASS") {
				announcement = m
				return true
			}
		}
		return false
	})
	if j := messageJSON(announcement); !strings.Contains(j, accessui.ColorDanger) || !strings.Contains(j, accessui.ActionReview) {
		t.Errorf("announcement is not loud or has no Reviewed button: %s", j)
	}
	w.click(oncall, accessui.ActionReview, id, auditChannel, announcement.TS)
	w.ephemeralTo(oncall, "You cannot approve, deny or review your own request")
	w.click(approver1, accessui.ActionReview, id, auditChannel, announcement.TS)
	w.waitFor(id, func(r access.Request) bool { return !r.BreakGlass.NeedsReview() })
	w.waitMessage(id, "reviewed by <@"+approver1+">")
	w.checkNoLeaks(oncall)
}

func TestAccessRevokeFailureAndRecovery(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id, issued := w.approvedRequest("prod-ssm 1h " + prodWeb + " deploy hotfix")
	w.aws.SSM().OpenSession(prodWeb, issued.AssumedRoleARN)
	// TerminateSession fails every attempt of the first three end attempts
	// (each makes awsconfig.DefaultMaxAttempts SDK attempts).
	w.aws.Fail(awsfake.SSMService, "TerminateSession", access.MaxEndAttempts*6, awsfake.Internal)
	w.clickOn(approver1, accessui.ActionRevoke, id)
	w.waitState(id, access.StateRevokeFailed)
	w.waitMessage(id, accessui.RevokeFailedText, accessui.ColorDanger)
	w.slack.WaitFor(t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(accessOps) {
			if strings.Contains(messageJSON(m), accessui.RevokeFailedText) && strings.Contains(messageJSON(m), id) {
				return true
			}
		}
		return false
	})
	w.dmWith(requester, "could not yet confirm")
	// The faults are used up: the retry ends access.
	r := w.waitState(id, access.StateRevoked)
	if n := len(w.aws.SSM().ActiveSessions()); n != 0 || r.End.By != approver1 {
		t.Fatalf("after recovery: %d sessions active, end %+v", n, r.End)
	}
	w.waitMessage(id, "Revoked", "<@"+approver1+">")
	if doc, ok := w.aws.IAM().RolePolicy("tokken-prod-ssm", awsgrant.RevokedPolicyName); !ok || !strings.Contains(doc, id) {
		t.Errorf("credentials not revoked in IAM: %q", doc)
	}
	w.checkNoLeaks(requester)
}

func TestAccessRestartBetweenApprovalAndExpiry(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id, issued := w.approvedRequest("prod-ssm 15m " + prodDB + " vacuum the db")
	w.aws.SSM().OpenSession(prodDB, issued.AssumedRoleARN)
	w.close()
	w.clock.Advance(20 * time.Minute) // the window ends while tokken is down
	w.open()
	w.waitState(id, access.StateExpired)
	if n := len(w.aws.SSM().ActiveSessions()); n != 0 {
		t.Fatalf("%d sessions outlived the restart", n)
	}
	w.waitMessage(id, "Expired")
}

func TestAccessExtendThenDone(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	id, _ := w.approvedRequest("prod-readonly 30m audit the bucket policies")
	end := w.get(id).Window.ExpiresAt
	dmCh, _ := w.slack.DMChannel(requester)

	// Only the requester may extend; the extend modal asks for time and why.
	w.click(approver1, accessui.ActionExtend, id, dmCh, "1.1")
	w.ephemeralTo(approver1, "Only the requester can do this")
	w.askExtension(id, dmCh, "1h", "the audit needs another hour")
	w.waitMessage(id, "Extension asked", accessui.ActionApproveExtension)
	w.clickOn(requester, accessui.ActionApproveExtension, id)
	w.ephemeralTo(requester, "You cannot approve")
	w.clickOn(approver2, accessui.ActionApproveExtension, id)
	r := w.waitFor(id, func(r access.Request) bool { return r.Window.ExpiresAt.Equal(end.Add(time.Hour)) })
	if x := r.Extensions[0]; x.State != access.ExtensionApplied {
		t.Fatalf("extension %+v", x)
	}
	w.credentials(requester, id, 2) // fresh credentials for the longer window
	w.dmWith(requester, "is extended until")

	// "I'm done" ends it early: revoked by the requester.
	w.click(requester, accessui.ActionDone, id, dmCh, "1.1")
	r = w.waitState(id, access.StateRevoked)
	if r.End.Cause != access.CauseDone {
		t.Fatalf("end %+v", r.End)
	}
	w.waitMessage(id, "I'm done")
	if doc, ok := w.aws.IAM().RolePolicy("tokken-prod-readonly", awsgrant.RevokedPolicyName); !ok || !strings.Contains(doc, id) {
		t.Errorf("credentials not revoked in IAM after I'm done: %q", doc)
	}
	w.checkNoLeaks(requester)
}

func TestAccessOneLinerErrors(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	tests := []struct {
		user, text string
		late       bool // answered through the response_url by the worker
		want       string
	}{
		{requester, "help", false, "/access &lt;profile&gt; &lt;duration&gt;"},
		{requester, "list", false, "no pending or active requests"},
		{requester, "list all", false, "`/access list` takes no arguments"},
		{requester, "revoke", false, "Which request?"},
		{requester, "revoke xyz", false, `"xyz" is not a request id`},
		{requester, "revoke r-000000000000", false, "There is no request r-000000000000"},
		{requester, "prod-ssm", false, "How long?"},
		{requester, "prod-ssm 10x fix", false, `"10x" is not a duration`},
		{requester, "prod-ssm 0m fix", false, "is no time at all"},
		{requester, "prod-ssm 25h fix", false, "longer than 24h"},
		{requester, "prod-ssm 30m i-xyz fix", false, `"i-xyz" is not an instance id`},
		{requester, "prod-ssm 30m " + prodWeb, false, "A reason is required"},
		{requester, "prod/ssm 30m fix", false, "is not a profile name"},
		{requester, "nosuch 30m fix", true, `There is no profile "nosuch" you may request. You may request: prod-readonly, prod-ssm, staging-admin.`},
		{devUser, "nosuch 30m fix", true, "You may request: staging-admin."},
		{requester, "prod-ssm 5h fix", true, "5h is longer than prod-ssm allows: at most 4h."},
		{requester, "prod-ssm 30m fix", true, "Profile prod-ssm: name the instances you need"},
		{requester, "prod-ssm 30m " + stagingBox + " fix", true, "does not cover " + stagingBox + ": the profile allows only instances tagged Env=prod"},
		{requester, "prod-ssm 30m i-0000000000000000a fix", true, "no such instance"},
		{requester, "prod-readonly 30m " + prodWeb + " fix", true, "grants a role, not instances"},
		{devUser, "prod-readonly 30m fix", true, "You are not allowed to request here"},
	}
	for _, tt := range tests {
		r, rid := w.command(tt.user, tt.text)
		if r.ResponseType != "ephemeral" {
			t.Errorf("/access %s: answer not ephemeral: %+v", tt.text, r)
		}
		got := r.Text
		if tt.late {
			if !strings.Contains(got, "Checking your request") {
				t.Errorf("/access %s: immediate answer %q", tt.text, got)
				continue
			}
			got = w.lateAnswer(rid)
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("/access %s (%s):\n got %q\nwant %q", tt.text, tt.user, got, tt.want)
		}
	}
	// Outside working hours a production request names the rule that forbids it.
	w.clock.Advance(12 * time.Hour)
	r, rid := w.command(requester, "prod-readonly 1h late fix")
	if !strings.Contains(r.Text, "Checking") {
		t.Fatalf("answer %q", r.Text)
	}
	if got := w.lateAnswer(rid); !strings.Contains(got, "production access outside working hours") {
		t.Errorf("night request: %q", got)
	}
	if n := len(w.slack.Messages(approverChannel)); n != 0 {
		t.Errorf("%d requests posted by mistakes", n)
	}
}

// TestAccessBinary runs the real `tokken serve`: a devUser takes
// staging-admin (no approval needed), gets credentials STS issued, ends it
// with "I'm done", and `tokken audit` prints the trail.
func TestAccessBinary(t *testing.T) {
	t.Parallel()
	sl, aws := slackfake.New(t), awsfake.New(t)
	sl.AddChannel(stagingChannel, "staging")
	sl.AddChannel(auditChannel, "audit")
	sl.AddUser(slackfake.User{ID: devUser, Name: "dev", Email: "bob@example.com"})
	aws.IAM().AddGrantableRole("arn:aws:iam::222222222222:role/tokken-staging-admin")
	dir := t.TempDir()
	// tokken's own resources, which the grant's session policy must deny.
	const protected = "arn:aws:secretsmanager:us-east-1:222222222222:secret:SlackSecret-AbC-dEf,arn:aws:dynamodb:us-east-1:222222222222:table/tokken"
	env := tokkenEnv(sl, dir, "TOKKEN_AUDIT_CHANNEL="+auditChannel, "TOKKEN_FEDERATION_URL="+aws.FederationURL(), "TOKKEN_PROTECTED_ARNS="+protected)
	for k, v := range aws.Env() {
		env = append(env, k+"="+v)
	}
	// tokken runs in the staging account, where staging-admin lives.
	aws.STS().AddCaller(stageWorkerKey, "arn:aws:sts::222222222222:assumed-role/tokken-worker/tokken-worker")
	env = append(env, "AWS_ACCESS_KEY_ID="+stageWorkerKey)
	s := startServeIn(t, dir, env)
	req, _ := sl.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: "staging-admin 1h try the migration", UserID: devUser, ChannelID: "C0RANDOM01", ResponseURL: sl.ResponseURL("R1"),
	})
	if status, body := do(t, req); status != 200 || !strings.Contains(body, "Checking your request") {
		t.Fatalf("command: %d %q", status, body)
	}
	sl.WaitFor(t, 45*time.Second, func(f *slackfake.Fake) bool { return len(f.ResponsePosts("R1")) > 0 })
	id := requestIDRE.FindString(sl.ResponsePosts("R1")[0].Text)
	var creds string
	sl.WaitFor(t, 45*time.Second, func(f *slackfake.Fake) bool {
		for _, m := range f.DMs(devUser) {
			if j := messageJSON(m); strings.Contains(j, "export AWS_SECRET_ACCESS_KEY") {
				creds = j
			}
		}
		return creds != "" && len(f.DMs(devUser)) >= 2
	})
	m := exportRE.FindStringSubmatch(creds)
	if id == "" || m == nil {
		t.Fatalf("request %q, credentials DM %s", id, creds)
	}
	issued, ok := aws.STS().Issued(m[1], m[2], m[3])
	if !ok || issued.RoleSessionName != id || issued.SourceIdentity != devUser {
		t.Fatalf("credentials not issued for %s: %+v", id, issued)
	}
	if !strings.Contains(issued.Policy, `{"Sid":"TokkenItself","Effect":"Deny","Action":"*","Resource":["`+strings.ReplaceAll(protected, ",", `","`)+`"]}`) {
		t.Errorf("the session policy does not fence tokken's resources: %s", issued.Policy)
	}
	dmCh, _ := sl.DMChannel(devUser)
	click, _ := sl.Interaction(t, s.base+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: devUser},
		Container:      slack.Container{Type: "message", ChannelID: dmCh, MessageTs: "1.1"},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: accessui.ActionDone, Value: id}}},
	})
	if status, body := do(t, click); status != 200 {
		t.Fatalf("I'm done: %d %q", status, body)
	}
	sl.WaitFor(t, 45*time.Second, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(stagingChannel) {
			if strings.Contains(messageJSON(m), "Revoked") && strings.Contains(messageJSON(m), id) {
				return true
			}
		}
		return false
	})
	s.stop()

	cmd := exec.Command(binary, "audit", "--since", "1h", "--request", id)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tokken audit: %v", err)
	}
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e bot.AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Subject != id {
			t.Fatalf("audit line %q: %v", line, err)
		}
		actions = append(actions, e.Action)
	}
	want := []string{access.ActRequested, access.ActActivating, access.ActActive, access.ActEnding, access.ActRevoked}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("tokken audit printed %v, want %v", actions, want)
	}
	for _, sec := range []string{issued.SecretAccessKey, issued.SessionToken} {
		if strings.Contains(s.Logs(), sec) {
			t.Error("a credential leaked into the logs of tokken serve")
		}
		for _, ch := range []string{stagingChannel, auditChannel} {
			for _, m := range sl.Messages(ch) {
				if strings.Contains(messageJSON(m), sec) {
					t.Errorf("a credential leaked into channel %s", ch)
				}
			}
		}
	}
}

// askExtension clicks Extend on the requester's DM about id, waits for the
// extend modal and submits it with duration and reason.
func (w *accessWorld) askExtension(id, dmCh, duration, reason string) {
	w.t.Helper()
	w.click(requester, accessui.ActionExtend, id, dmCh, "1.1")
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		vs := f.Views()
		return len(vs) > 0 && vs[len(vs)-1].Request.CallbackID == accessui.CallbackExtend
	})
	if body := w.submitView(requester, accessui.CallbackExtend, id, map[string]slack.BlockAction{
		"duration": {SelectedOption: slack.OptionBlockObject{Value: duration}}, "reason": {Value: reason},
	}); body != "" {
		w.t.Fatalf("extend submission answered %q", body)
	}
}
