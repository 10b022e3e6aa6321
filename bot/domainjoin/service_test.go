package domainjoin_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/botfake"
	"github.com/tokken/tokken/testkit/fakeclock"
)

// The scenario tests run the service through its job handlers on a real
// bbolt store. The instance side is a fleet the test drives the way the
// user-data script would (tags appear after the reboot); Slack is a
// recording notifier; timers are recorded and fired by the test.

const (
	webID  = "i-0aaaaaaaaaaaaaaa1"
	prodID = "i-0bbbbbbbbbbbbbbb2"
	linID  = "i-0ccccccccccccccc3"
)

var (
	alice    = bot.Principal{ID: "U-alice"}   // may join/leave; needs approval on prod
	bob      = bot.Principal{ID: "U-bob"}     // approver
	mallory  = bot.Principal{ID: "U-mallory"} // may do nothing
	aliceTo  = domainjoin.ReplyTo{User: alice.ID, ResponseURL: "https://hooks.slack.example/r/1"}
	testTick = 30 * time.Second
)

// fleet is the EC2 side: instances, and every SetTags / Reboot call.
type fleet struct {
	mu        sync.Mutex
	instances map[string]*domainjoin.Instance
	calls     []string
	finds     int
	tagErr    error
	rebootErr error
}

func newFleet() *fleet {
	f := &fleet{instances: map[string]*domainjoin.Instance{}}
	f.add(domainjoin.Instance{ID: webID, Name: "web-01", State: "running", Platform: "windows", Tags: map[string]string{"Name": "web-01"}})
	f.add(domainjoin.Instance{ID: prodID, Name: "dc-app", State: "running", Platform: "windows", Tags: map[string]string{"Name": "dc-app", "Env": "prod"}})
	f.add(domainjoin.Instance{ID: linID, Name: "lin-01", State: "running", Tags: map[string]string{"Name": "lin-01"}})
	return f
}

func (f *fleet) add(in domainjoin.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[in.ID] = &in
}

func (f *fleet) Find(_ context.Context, ref string) ([]domainjoin.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds++
	var out []domainjoin.Instance
	for _, in := range f.instances {
		if in.ID == ref || (!bot.IsInstanceID(ref) && in.Name == ref) {
			c := *in
			c.Tags = maps.Clone(in.Tags)
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fleet) SetTags(_ context.Context, id string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tagErr != nil {
		return f.tagErr
	}
	keys := slices.Sorted(maps.Keys(tags))
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+tags[k])
		f.instances[id].Tags[k] = tags[k]
	}
	f.calls = append(f.calls, "tag "+id+" "+strings.Join(kv, ","))
	return nil
}

func (f *fleet) Reboot(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rebootErr != nil {
		return f.rebootErr
	}
	f.calls = append(f.calls, "reboot "+id)
	return nil
}

// script sets tags on an instance as the user data does.
func (f *fleet) script(id string, kv ...string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i+1 < len(kv); i += 2 {
		f.instances[id].Tags[kv[i]] = kv[i+1]
	}
	return maps.Clone(f.instances[id].Tags)
}

func (f *fleet) findCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finds
}

func (f *fleet) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// notes records what would go to Slack.
type notes struct {
	mu      sync.Mutex
	replies []string // "<user>: <text>"
	posts   []domainjoin.Operation
	updates []domainjoin.Operation
	thread  map[string][]string
	alerts  []string
	postErr error
}

func (n *notes) Reply(_ context.Context, to domainjoin.ReplyTo, text string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.replies = append(n.replies, to.User+": "+text)
	return nil
}

func (n *notes) Post(_ context.Context, op domainjoin.Operation) (domainjoin.MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.postErr != nil {
		return domainjoin.MessageRef{}, n.postErr
	}
	n.posts = append(n.posts, op)
	return domainjoin.MessageRef{Channel: "C-ops", TS: fmt.Sprintf("1700000000.%06d", len(n.posts))}, nil
}

func (n *notes) Update(_ context.Context, op domainjoin.Operation) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.updates = append(n.updates, op)
	return nil
}

func (n *notes) Thread(_ context.Context, op domainjoin.Operation, lines []string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if op.Message.IsZero() {
		return errors.New("thread without a message")
	}
	n.thread[op.ID] = append(n.thread[op.ID], lines...)
	return nil
}

func (n *notes) Alert(_ context.Context, op domainjoin.Operation, summary string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alerts = append(n.alerts, summary)
	return nil
}

func (n *notes) lastReply() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.replies) == 0 {
		return ""
	}
	return n.replies[len(n.replies)-1]
}

func (n *notes) threadOf(id string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.thread[id])
}

// policy: alice may join/leave, but prod instances only with approval; bob
// may approve; nobody else may do anything.
type policy struct {
	mu      sync.Mutex
	queries []bot.AuthzQuery
}

func (p *policy) Authorize(_ context.Context, q bot.AuthzQuery) (bot.Decision, error) {
	p.mu.Lock()
	p.queries = append(p.queries, q)
	p.mu.Unlock()
	prod := len(q.Targets) == 1 && q.Targets[0].Tags["Env"] == "prod"
	switch {
	case (q.Action == bot.ActionDomainJoin || q.Action == bot.ActionDomainLeave) && q.Principal.ID == alice.ID:
		if prod {
			return bot.Decision{Allow: true, Approvals: 1, Reasons: []string{"permit policies/domain.cedar:3 (prod needs approval)"}}, nil
		}
		return bot.Decision{Allow: true, Reasons: []string{"permit policies/domain.cedar:1"}}, nil
	case q.Action == bot.ActionApprove && q.Principal.ID == bob.ID && q.Context["requester"] != "" && len(q.Targets) == 1:
		return bot.Decision{Allow: true, Reasons: []string{"permit policies/domain.cedar:7"}}, nil
	}
	return bot.Decision{Reasons: []string{"no rule permits " + string(q.Action)}}, nil
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeclock.Clock
	fleet  *fleet
	notes  *notes
	timers *botfake.Timers
	audit  *botfake.Auditor
	svc    *domainjoin.Service
	mux    *bot.JobMux
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "tokken.db"), boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h := &harness{
		t: t, ctx: context.Background(), clock: fakeclock.New(t0), fleet: newFleet(),
		notes: &notes{thread: map[string][]string{}}, timers: &botfake.Timers{},
		audit: &botfake.Auditor{}, mux: bot.NewJobMux(),
	}
	h.svc, err = domainjoin.NewService(domainjoin.Config{Tags: scheme, CheckEvery: testTick, Now: h.clock.Now},
		domainjoin.Deps{Store: store, Instances: h.fleet, Notifier: h.notes, Authorizer: &policy{}, Timers: h.timers, Auditor: h.audit})
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Register(h.mux)
	return h
}

// command runs "/domain <text>" typed by p and returns the operation id the
// job carried.
func (h *harness) command(p bot.Principal, text string) string {
	h.t.Helper()
	c, err := domainjoin.ParseCommand(text)
	if err != nil {
		h.t.Fatalf("parse %q: %v", text, err)
	}
	job, err := domainjoin.NewCommandJob(c, p, domainjoin.ReplyTo{User: p.ID, ResponseURL: aliceTo.ResponseURL})
	if err != nil {
		h.t.Fatal(err)
	}
	h.run(job)
	var req domainjoin.CommandRequest
	if err := job.Decode(&req); err != nil {
		h.t.Fatal(err)
	}
	return req.OpID
}

func (h *harness) run(j bot.Job) {
	h.t.Helper()
	if err := h.mux.HandleJob(h.ctx, j); err != nil {
		h.t.Fatalf("job %s: %v", j.Kind, err)
	}
}

func (h *harness) job(kind string, v any) bot.Job {
	h.t.Helper()
	j, err := bot.NewJob("j-"+kind, kind, v)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// tick advances the clock to the pending check timer of op and fires it.
func (h *harness) tick(opID string) {
	h.t.Helper()
	tm, ok := h.timers.Get("domain-check/" + opID)
	if !ok {
		h.t.Fatalf("no check timer pending for %s", opID)
	}
	if d := tm.At.Sub(h.clock.Now()); d > 0 {
		h.clock.Advance(d)
	}
	h.run(tm.Job)
}

// trail is the audit trail of subject id as "action/actor", oldest first.
func (h *harness) trail(id string) []string {
	var out []string
	for _, e := range h.audit.Events() {
		if e.Subject == id {
			out = append(out, e.Action+"/"+e.Actor)
		}
	}
	return out
}

func (h *harness) op(id string) domainjoin.Operation {
	h.t.Helper()
	op, err := h.svc.Operation(h.ctx, id)
	if err != nil {
		h.t.Fatalf("operation %s: %v", id, err)
	}
	return op
}

func (h *harness) wantState(id string, want domainjoin.State) domainjoin.Operation {
	h.t.Helper()
	op := h.op(id)
	if op.State != want {
		h.t.Fatalf("%s state = %s, want %s (reason %q)", id, op.State, want, op.Reason)
	}
	return op
}

func (h *harness) wantReply(substr string) {
	h.t.Helper()
	if r := h.notes.lastReply(); !strings.Contains(r, substr) {
		h.t.Fatalf("last reply = %q, want it to contain %q", r, substr)
	}
}

func wantContains(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("%s = %q\nlacks %q", what, got, w)
		}
	}
}

func TestJoinByNameTagsRebootsAndFollowsTagsToJoined(t *testing.T) {
	h := newHarness(t)
	id := h.command(alice, "join web-01")

	op := h.wantState(id, domainjoin.StateWaiting)
	h.wantReply("Started " + id)
	if got, want := h.fleet.callLog(), []string{"tag " + webID + " domain=join,domain-request=" + id, "reboot " + webID}; !slices.Equal(got, want) {
		t.Fatalf("EC2 calls = %q, want %q", got, want)
	}
	if op.Message.IsZero() || len(h.notes.posts) != 1 || op.Deadline != t0.Add(domainjoin.DefaultTimeout) {
		t.Fatalf("message %v posts %d deadline %v", op.Message, len(h.notes.posts), op.Deadline)
	}

	h.tick(id) // nothing reported yet: still waiting, next check scheduled
	h.wantState(id, domainjoin.StateWaiting)

	h.fleet.script(webID, "domain-ack", id, "domain-status", "pending", "domain-progress", "joining")
	h.tick(id)
	h.fleet.script(webID, "domain-progress", "rebooting")
	h.tick(id)
	h.tick(id) // unchanged: no new thread lines
	h.fleet.script(webID, "domain-status", "joined", "domain-progress", "done")
	h.tick(id)

	op = h.wantState(id, domainjoin.StateJoined)
	thread := h.notes.threadOf(id)
	wantContains(t, "thread", thread, "Tagged domain=join", "Reboot requested", "domain-progress: joining", "domain-progress: rebooting", "domain-status: joined", "web-01 ("+webID+") is joined.")
	if n := len(thread); n != 8 {
		t.Errorf("thread has %d lines, want 8 (no repeats): %q", n, thread)
	}
	if len(op.Seen) != 5 {
		t.Errorf("seen = %v", op.Seen)
	}
	if _, ok := h.timers.Get("domain-check/" + id); ok {
		t.Errorf("check timer still pending after the outcome")
	}
	h.wantReply("is joined")
	got := h.trail(id)
	want := []string{"domain.requested/U-alice", "domain.rebooting/tokken", "domain.waiting/tokken", "domain.joined/tokken"}
	if !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}

	// The instance is free again, and now already joined.
	h.command(alice, "join web-01")
	h.wantReply("already joined")
	h.command(alice, "join web-01 --force")
	h.wantReply("Started")
}

func TestLeaveFollowedByTagChangeEvent(t *testing.T) {
	h := newHarness(t)
	h.fleet.script(webID, "domain-status", "joined", "domain-ack", "d-earlier")
	id := h.command(alice, "leave "+webID)
	h.wantState(id, domainjoin.StateWaiting)
	wantContains(t, "EC2 calls", h.fleet.callLog(), "domain=unjoin,domain-request="+id)

	// EventBridge reports the tag change before the next poll.
	tags := h.fleet.script(webID, "domain-ack", id, "domain-status", "unjoined", "domain-progress", "done")
	h.run(h.job(domainjoin.KindTagEvent, domainjoin.TagEvent{InstanceID: webID, Tags: tags}))
	h.wantState(id, domainjoin.StateUnjoined)

	// The poll that follows finds it finished; late events are ignored.
	h.run(h.job(domainjoin.KindCheck, domainjoin.CheckRequest{OpID: id}))
	h.run(h.job(domainjoin.KindTagEvent, domainjoin.TagEvent{InstanceID: webID, Tags: tags}))
	if n := len(h.notes.threadOf(id)); n != 5 {
		t.Errorf("thread = %q", h.notes.threadOf(id))
	}
	// Events for instances without an operation are not ours.
	h.run(h.job(domainjoin.KindTagEvent, domainjoin.TagEvent{InstanceID: linID, Tags: map[string]string{"domain-status": "failed"}}))
}

func TestFailureTagEndsWithTheScriptsReason(t *testing.T) {
	h := newHarness(t)
	// A failure left by an earlier request must not end this one.
	h.fleet.script(webID, "domain-status", "failed", "domain-ack", "d-earlier", "domain-reason", "old news")
	id := h.command(alice, "join web-01")
	h.tick(id)
	h.wantState(id, domainjoin.StateWaiting)

	h.fleet.script(webID, "domain-ack", id, "domain-status", "failed", "domain-progress", "stopped",
		"domain-reason", "Computer 'WEB-01' failed to join domain 'corp.example.com': The user name or password is incorrect.")
	h.tick(id)
	op := h.wantState(id, domainjoin.StateFailed)
	if !strings.Contains(op.Reason, "user name or password is incorrect") {
		t.Errorf("reason = %q", op.Reason)
	}
	wantContains(t, "thread", h.notes.threadOf(id), "Failed: Computer 'WEB-01' failed")
	h.wantReply("failed: Computer 'WEB-01'")
	wantContains(t, "audit", h.trail(id), "domain.failed/tokken")
	if len(h.notes.alerts) != 0 {
		t.Errorf("a reported failure is not an alert: %q", h.notes.alerts)
	}
}

func TestTimeoutRaisesAnAlertAndFreesTheInstance(t *testing.T) {
	h := newHarness(t)
	id := h.command(alice, "join web-01")
	h.fleet.script(webID, "domain-ack", id, "domain-progress", "joining")
	for i := 0; i < 60 && !h.op(id).State.Terminal(); i++ {
		h.tick(id)
	}
	op := h.wantState(id, domainjoin.StateTimedOut)
	if got := h.clock.Now().Sub(t0); got != domainjoin.DefaultTimeout {
		t.Errorf("timed out after %s, want exactly the deadline", got)
	}
	if len(h.notes.alerts) != 1 || !strings.Contains(h.notes.alerts[0], "timed out") || !strings.Contains(op.Reason, "last progress: joining") {
		t.Errorf("alerts = %q, reason = %q", h.notes.alerts, op.Reason)
	}
	h.command(alice, "leave web-01")
	h.wantReply("Started")
}

func TestConcurrentOperationsOnOneInstance(t *testing.T) {
	h := newHarness(t)
	first := h.command(alice, "join web-01")
	h.command(alice, "leave "+webID)
	h.wantReply("Another domain operation on web-01 (" + webID + ") is in progress: " + first)

	// Many requests at once on a free instance: exactly one starts.
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		c, _ := domainjoin.ParseCommand("join " + prodID)
		c.Force = true
		job, err := domainjoin.NewCommandJob(c, alice, aliceTo)
		if err != nil {
			t.Fatal(err)
		}
		var req domainjoin.CommandRequest
		_ = job.Decode(&req)
		ids[i] = req.OpID
		wg.Go(func() {
			if err := h.mux.HandleJob(h.ctx, job); err != nil {
				t.Errorf("job: %v", err)
			}
		})
	}
	wg.Wait()
	started := 0
	for _, id := range ids {
		if _, err := h.svc.Operation(h.ctx, id); err == nil {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d operations started on one instance, want 1", started)
	}
}

func TestNameResolutionAndRefusals(t *testing.T) {
	h := newHarness(t)
	h.fleet.add(domainjoin.Instance{ID: "i-0ddddddddddddddd4", Name: "web-01", State: "stopped", Platform: "windows"})
	h.fleet.add(domainjoin.Instance{ID: "i-0eeeeeeeeeeeeeee5", Name: "old-01", State: "terminated", Platform: "windows"})
	tests := []struct {
		who  bot.Principal
		text string
		want string
	}{
		{alice, "join web-01", "2 instances are named \"web-01\"; say which one by id:\n- " + webID + " (running)\n- i-0ddddddddddddddd4 (stopped)"},
		{alice, "join web-99", `No instance is named "web-99"`},
		{alice, "join i-0123456789abcdef0", "No instance i-0123456789abcdef0"},
		{alice, "join old-01", "is terminated"},
		{alice, "join lin-01", "not a Windows instance"},
		{alice, "join i-0ddddddddddddddd4", "must be running"},
		{mallory, "join " + webID, "You may not join web-01 (" + webID + ") to the domain: no rule permits domain_join"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			h.command(tc.who, tc.text)
			h.wantReply(tc.want)
		})
	}
	if calls := h.fleet.callLog(); len(calls) != 0 {
		t.Errorf("refused requests touched EC2: %q", calls)
	}
	// An id picks one of the namesakes.
	h.command(alice, "join "+webID)
	h.wantReply("Started")
}

func TestProdNeedsApprovalWithTheSameApproveDenyMechanics(t *testing.T) {
	h := newHarness(t)
	id := h.command(alice, "join dc-app")
	op := h.wantState(id, domainjoin.StatePendingApproval)
	h.wantReply("needs approval")
	if len(h.notes.posts) != 1 || h.notes.posts[0].State != domainjoin.StatePendingApproval || op.Message.IsZero() {
		t.Fatalf("approval message not posted: %+v", h.notes.posts)
	}
	if calls := h.fleet.callLog(); len(calls) != 0 {
		t.Fatalf("EC2 touched before approval: %q", calls)
	}

	decide := func(kind string, by bot.Principal, reason string) {
		h.run(h.job(kind, domainjoin.DecisionRequest{OpID: id, By: by, Reason: reason, ReplyTo: domainjoin.ReplyTo{User: by.ID}}))
	}
	decide(domainjoin.KindApprove, alice, "")
	h.wantReply("U-alice: You cannot decide on your own request")
	decide(domainjoin.KindApprove, mallory, "")
	h.wantReply("U-mallory: You may not decide on " + id)
	h.wantState(id, domainjoin.StatePendingApproval)

	decide(domainjoin.KindApprove, bob, "")
	op = h.wantState(id, domainjoin.StateWaiting)
	if op.DecidedBy != bob.ID || op.Deadline != t0.Add(domainjoin.DefaultTimeout) {
		t.Errorf("decided by %q, deadline %v", op.DecidedBy, op.Deadline)
	}
	wantContains(t, "EC2 calls", h.fleet.callLog(), "tag "+prodID+" domain=join", "reboot "+prodID)
	wantContains(t, "replies", h.notes.replies, "U-alice: Your request "+id+" to join dc-app ("+prodID+") was approved by U-bob")

	// A second click (or a retry) changes nothing and reboots nothing.
	decide(domainjoin.KindApprove, bob, "")
	decide(domainjoin.KindDeny, bob, "too late")
	h.wantReply("is already waiting by U-bob")
	if n := len(h.fleet.callLog()); n != 2 {
		t.Errorf("EC2 calls after duplicate clicks = %q", h.fleet.callLog())
	}
	wantContains(t, "audit", h.trail(id), "domain.approved/U-bob")
}

func TestDenyAndApprovalExpiry(t *testing.T) {
	h := newHarness(t)
	id := h.command(alice, "join dc-app")
	h.run(h.job(domainjoin.KindDeny, domainjoin.DecisionRequest{OpID: id, By: bob, ReplyTo: domainjoin.ReplyTo{User: bob.ID}}))
	h.wantReply("Say why you deny")
	h.run(h.job(domainjoin.KindDeny, domainjoin.DecisionRequest{OpID: id, By: bob, Reason: "change freeze <!channel>", ReplyTo: domainjoin.ReplyTo{User: bob.ID}}))
	op := h.wantState(id, domainjoin.StateDenied)
	if op.DecisionReason != "change freeze <!channel>" || op.DecidedBy != bob.ID {
		t.Errorf("denial = %q by %q", op.DecisionReason, op.DecidedBy)
	}
	wantContains(t, "replies", h.notes.replies, "U-alice: "+id+" was denied by U-bob: change freeze")
	if len(h.fleet.callLog()) != 0 {
		t.Errorf("denied request touched EC2")
	}

	// Nobody decides: the request lapses and frees the instance.
	id2 := h.command(alice, "join dc-app")
	h.clock.Advance(time.Hour)
	h.run(h.job(domainjoin.KindCheck, domainjoin.CheckRequest{OpID: id2})) // an early check changes nothing
	h.wantState(id2, domainjoin.StatePendingApproval)
	h.tick(id2)
	if got := h.clock.Now().Sub(t0); got != domainjoin.DefaultApprovalTimeout {
		t.Fatalf("approval check ran at +%s, want at the approval deadline", got)
	}
	op = h.wantState(id2, domainjoin.StateCancelled)
	if !strings.Contains(op.Reason, "not approved within 4h0m0s") {
		t.Errorf("reason = %q", op.Reason)
	}
	h.command(alice, "join dc-app")
	h.wantReply("needs approval")
}

func TestRetriesResumeWithoutRepeatingSteps(t *testing.T) {
	h := newHarness(t)
	c, _ := domainjoin.ParseCommand("join web-01")
	job, _ := domainjoin.NewCommandJob(c, alice, aliceTo)

	// The reboot fails transiently: the job fails and is retried.
	h.fleet.rebootErr = errors.New("RequestLimitExceeded")
	if err := h.mux.HandleJob(h.ctx, job); err == nil || bot.IsPermanent(err) {
		t.Fatalf("transient reboot failure: err = %v, want a retryable error", err)
	}
	var req domainjoin.CommandRequest
	_ = job.Decode(&req)
	h.wantState(req.OpID, domainjoin.StateRebooting)
	h.fleet.rebootErr = nil
	h.run(job) // redelivery
	h.run(job) // and once more
	h.wantState(req.OpID, domainjoin.StateWaiting)
	if got := h.fleet.callLog(); len(got) != 2 || len(h.notes.posts) != 1 {
		t.Errorf("calls = %q, posts = %d: want one tag, one reboot, one message", got, len(h.notes.posts))
	}

	// A permanent tagging error fails the operation at once.
	h.fleet.tagErr = bot.Permanent(errors.New("UnauthorizedOperation: not allowed to tag"))
	id := h.command(alice, "join dc-app") // needs approval
	h.run(h.job(domainjoin.KindApprove, domainjoin.DecisionRequest{OpID: id, By: bob}))
	op := h.wantState(id, domainjoin.StateFailed)
	if !strings.Contains(op.Reason, "tagging failed: UnauthorizedOperation") {
		t.Errorf("reason = %q", op.Reason)
	}
	h.fleet.tagErr = nil
	h.command(alice, "join dc-app")
	h.wantReply("needs approval") // the lock was released
}

func TestStatusAndCancel(t *testing.T) {
	h := newHarness(t)
	h.fleet.script(webID, "domain-status", "failed", "domain-ack", "d-x", "domain-reason", "DC unreachable")
	h.command(alice, "status web-01")
	h.wantReply("domain-status=failed (for request d-x), reason: DC unreachable")

	id := h.command(alice, "join web-01")
	h.command(mallory, "status "+webID)
	h.wantReply("In progress: " + id + " (join, requested by U-alice, waiting)")

	h.run(h.job(domainjoin.KindCancel, domainjoin.DecisionRequest{OpID: id, By: mallory, ReplyTo: domainjoin.ReplyTo{User: mallory.ID}}))
	h.wantReply("You may not decide on " + id)
	h.run(h.job(domainjoin.KindCancel, domainjoin.DecisionRequest{OpID: id, By: alice, Reason: "wrong box", ReplyTo: domainjoin.ReplyTo{User: alice.ID}}))
	op := h.wantState(id, domainjoin.StateCancelled)
	if op.Reason != "cancelled by U-alice: wrong box" {
		t.Errorf("reason = %q", op.Reason)
	}
	h.command(alice, "help")
	h.wantReply("Usage: `/domain join")
	h.run(h.job(domainjoin.KindCancel, domainjoin.DecisionRequest{OpID: "d-nope", By: alice, ReplyTo: domainjoin.ReplyTo{User: alice.ID}}))
	h.wantReply("There is no domain operation d-nope")
}

func TestBadJobPayloadIsPermanent(t *testing.T) {
	h := newHarness(t)
	err := h.mux.HandleJob(h.ctx, bot.Job{ID: "x", Kind: domainjoin.KindCheck, Payload: []byte("{")})
	if !bot.IsPermanent(err) {
		t.Errorf("err = %v, want permanent", err)
	}
	kinds := h.mux.Kinds()
	slices.Sort(kinds)
	want := []string{domainjoin.KindApprove, domainjoin.KindCancel, domainjoin.KindCheck, domainjoin.KindCommand, domainjoin.KindDeny, domainjoin.KindTagEvent}
	slices.Sort(want)
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds = %v", kinds)
	}
}

// TestSubSecondChecksHaveDistinctJobIDs: a check schedules the next one
// while it is still running; a queue ignores a job id that is still
// pending, so two checks less than a second apart must not share an id, or
// the operation stops being followed.
func TestSubSecondChecksHaveDistinctJobIDs(t *testing.T) {
	h := newHarness(t)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "subsecond.db"), boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h.mux = bot.NewJobMux()
	h.svc, err = domainjoin.NewService(domainjoin.Config{Tags: scheme, CheckEvery: 300 * time.Millisecond, Now: h.clock.Now},
		domainjoin.Deps{Store: store, Instances: h.fleet, Notifier: h.notes, Authorizer: &policy{}, Timers: h.timers, Auditor: h.audit})
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Register(h.mux)
	id := h.command(alice, "join web-01")
	h.wantState(id, domainjoin.StateWaiting)
	seen := map[string]bool{}
	for range 5 {
		tm, ok := h.timers.Get("domain-check/" + id)
		if !ok {
			t.Fatal("no check pending")
		}
		if seen[tm.Job.ID] {
			t.Fatalf("check job id %s reused within a second: a pending duplicate would drop it", tm.Job.ID)
		}
		seen[tm.Job.ID] = true
		h.tick(id)
	}
}

// TestTaggingThatKeepsFailingStillTimesOut: the check timer is armed before
// the first tagging attempt, so an operation whose CreateTags fails on
// every try still ends at its deadline with the timeout alert.
func TestTaggingThatKeepsFailingStillTimesOut(t *testing.T) {
	h := newHarness(t)
	h.fleet.tagErr = errors.New("InternalError: We encountered an internal error")
	c, _ := domainjoin.ParseCommand("join web-01")
	job, _ := domainjoin.NewCommandJob(c, alice, aliceTo)
	if err := h.mux.HandleJob(h.ctx, job); err == nil || bot.IsPermanent(err) {
		t.Fatalf("tagging failure: err = %v, want a retryable error", err)
	}
	var req domainjoin.CommandRequest
	_ = job.Decode(&req)
	id := req.OpID
	h.wantState(id, domainjoin.StateTagging)
	for i := 0; i < 60 && !h.op(id).State.Terminal(); i++ {
		h.tick(id)
	}
	h.wantState(id, domainjoin.StateTimedOut)
	if len(h.notes.alerts) != 1 || !strings.Contains(h.notes.alerts[0], "timed out") {
		t.Errorf("alerts = %q, want the timeout alert", h.notes.alerts)
	}
	wantContains(t, "replies", h.notes.replies, alice.ID+": "+id+" timed out")
}

// TestGivenUpJobFailsItsOperation: when the job carrying an operation is
// given up (dead-lettered), the operation fails, the instance is released,
// the requester is told and the operators alerted; giving up again, or on
// an operation that has ended, changes nothing.
func TestGivenUpJobFailsItsOperation(t *testing.T) {
	h := newHarness(t)
	h.fleet.tagErr = errors.New("RequestLimitExceeded")
	c, _ := domainjoin.ParseCommand("join web-01")
	job, _ := domainjoin.NewCommandJob(c, alice, aliceTo)
	_ = h.mux.HandleJob(h.ctx, job)
	var req domainjoin.CommandRequest
	_ = job.Decode(&req)
	id := req.OpID

	for range 2 {
		handled, err := h.mux.GiveUp(h.ctx, job, "failed 5 times")
		if !handled || err != nil {
			t.Fatalf("GiveUp = %v, %v; want handled", handled, err)
		}
	}
	op := h.wantState(id, domainjoin.StateFailed)
	for _, want := range []string{"gave up while tagging", domainjoin.KindCommand, job.ID, "failed 5 times"} {
		if !strings.Contains(op.Reason, want) {
			t.Errorf("reason %q lacks %q", op.Reason, want)
		}
	}
	if len(h.notes.alerts) != 1 || !strings.Contains(h.notes.alerts[0], "web-01") || !strings.Contains(h.notes.alerts[0], job.ID) {
		t.Errorf("alerts = %q, want one naming the instance and the job", h.notes.alerts)
	}
	wantContains(t, "replies", h.notes.replies, alice.ID+": "+id+" join of web-01")
	if _, ok := h.timers.Get("domain-check/" + id); ok {
		t.Error("the check timer is still pending after the operation failed")
	}
	h.fleet.tagErr = nil
	h.command(alice, "join web-01")
	h.wantReply("Started") // the instance was released

	// A given-up job with no operation in it is not this feature's to
	// handle: a permanent error says so.
	bad, _ := bot.NewJob("j-bad", domainjoin.KindCheck, map[string]string{"op_id": ""})
	if _, err := h.mux.GiveUp(h.ctx, bad, "failed"); !bot.IsPermanent(err) {
		t.Errorf("GiveUp of a job without an operation: %v, want a permanent error", err)
	}
}

// TestEarlyCheckReArmsForTheRemainingTime: a check delivered before its
// time reads nothing and re-arms its timer for when it was due.
func TestEarlyCheckReArmsForTheRemainingTime(t *testing.T) {
	h := newHarness(t)
	id := h.command(alice, "join web-01")
	tm, ok := h.timers.Get("domain-check/" + id)
	if !ok {
		t.Fatal("no check timer")
	}
	finds := h.fleet.findCount()
	h.clock.Advance(testTick / 3)
	h.run(tm.Job) // early
	again, ok := h.timers.Get("domain-check/" + id)
	if !ok || !again.At.Equal(tm.At) {
		t.Fatalf("after an early check the timer is %+v (%v), want it re-armed at %s", again, ok, tm.At)
	}
	if got := h.fleet.findCount(); got != finds {
		t.Errorf("an early check looked the instance up")
	}
	h.tick(id) // on time, it does
	if got := h.fleet.findCount(); got != finds+1 {
		t.Errorf("the check on time made %d lookups, want 1", got-finds)
	}
}
