package access

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/botfake"
	"github.com/tokken/tokken/testkit/fakeclock"
)

// The peers below record what the Service asks of the outside world. The
// store is the real bbolt adapter and jobs run through the real JobMux; the
// queue and timers are recorded so tests decide when jobs run and time passes.

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type recGranter struct {
	mu          sync.Mutex
	issued      []GrantSpec
	revoked     []Grant
	terminated  []Grant
	sessions    int // live sessions TerminateSessions will report once
	failIssue   int // fail the next n Issue calls
	failEnd     error
	issueGate   chan struct{} // when set, Issue waits on it
	issueCalled chan struct{}
	checkRole   error // what CheckRole returns
}

func (g *recGranter) CheckRole(context.Context, string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checkRole
}

// holdIssue makes the following Issue calls signal issueCalled on entry
// and then wait until issueGate is closed (or their context ends), so a
// test can act while a run is inside AssumeRole.
func (g *recGranter) holdIssue() {
	g.issueGate = make(chan struct{})
	g.issueCalled = make(chan struct{}, 4)
}

func (g *recGranter) Issue(ctx context.Context, spec GrantSpec) (Credentials, error) {
	if g.issueCalled != nil {
		g.issueCalled <- struct{}{}
	}
	if g.issueGate != nil {
		select {
		case <-g.issueGate:
		case <-ctx.Done():
			return Credentials{}, ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checkRole != nil { // like awsgrant, Issue checks the role first
		return Credentials{}, bot.Permanent(g.checkRole)
	}
	g.issued = append(g.issued, spec)
	if g.failIssue > 0 {
		g.failIssue--
		return Credentials{}, errors.New("AccessDenied: not authorized to perform sts:AssumeRole")
	}
	n := len(g.issued)
	return Credentials{AccessKeyID: fmt.Sprintf("ASIA%04d", n), SecretAccessKey: "secret", SessionToken: "token", Expiration: spec.WindowEnd}, nil
}

func (g *recGranter) Revoke(_ context.Context, gr Grant) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failEnd != nil {
		return g.failEnd
	}
	g.revoked = append(g.revoked, gr)
	return nil
}

func (g *recGranter) TerminateSessions(_ context.Context, gr Grant) ([]Session, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failEnd != nil {
		return nil, g.failEnd
	}
	g.terminated = append(g.terminated, gr)
	var out []Session
	for i := range g.sessions {
		out = append(out, Session{ID: fmt.Sprintf("%s-%d", gr.RequestID, i), Target: fmt.Sprintf("i-%017d", i)})
	}
	g.sessions = 0
	return out, nil
}

func (g *recGranter) counts() (issued, revoked, terminated int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.issued), len(g.revoked), len(g.terminated)
}

type told struct {
	Request string
	Action  string
}

type recNotifier struct {
	mu          sync.Mutex
	changed     []Request
	told        []told
	delivered   []string // request ids
	alerts      []Alert
	failDeliver int
	// failChanged and failTell fail the next n Changed and Tell calls
	// the way a Slack outage outlasting the client's retries does.
	failChanged, failTell int
	nextTS                int
}

func (n *recNotifier) Changed(_ context.Context, r Request) (MessageRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failChanged > 0 {
		n.failChanged--
		return MessageRef{}, errors.New("slack chat.update: 503 Service Unavailable")
	}
	n.changed = append(n.changed, r)
	if r.Message.IsZero() {
		n.nextTS++
		return MessageRef{Channel: "CAPPROVERS", TS: fmt.Sprintf("1700000000.%06d", n.nextTS)}, nil
	}
	return r.Message, nil
}

func (n *recNotifier) Tell(_ context.Context, r Request, action string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failTell > 0 {
		n.failTell--
		return errors.New("slack chat.postMessage: 503 Service Unavailable")
	}
	n.told = append(n.told, told{r.ID, action})
	return nil
}

func (n *recNotifier) DeliverCredentials(_ context.Context, r Request, c Credentials) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failDeliver > 0 {
		n.failDeliver--
		return errors.New("slack: channel_not_found")
	}
	if c.SecretAccessKey == "" || c.SessionToken == "" {
		return errors.New("delivered empty credentials")
	}
	n.delivered = append(n.delivered, r.ID)
	return nil
}

func (n *recNotifier) Alert(_ context.Context, a Alert) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alerts = append(n.alerts, a)
	return nil
}

func (n *recNotifier) toldActions(id string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, t := range n.told {
		if t.Request == id {
			out = append(out, t.Action)
		}
	}
	return out
}

func (n *recNotifier) alertActions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, a := range n.alerts {
		out = append(out, string(a.Channel)+":"+a.Action)
	}
	return out
}

// testAuthz allows an action to the users listed for it; "*" allows anyone.
type testAuthz map[bot.Action][]string

func (z testAuthz) Authorize(_ context.Context, q bot.AuthzQuery) (bot.Decision, error) {
	users := z[q.Action]
	if slices.Contains(users, q.Principal.ID) || slices.Contains(users, "*") {
		return bot.Decision{Allow: true, Reasons: []string{"permit test:" + string(q.Action)}}, nil
	}
	return bot.Decision{Reasons: []string{fmt.Sprintf("no rule permits %s for %s", q.Action, q.Principal.ID)}}, nil
}

type testDirectory struct{}

func (testDirectory) Lookup(_ context.Context, id string) (bot.Principal, error) {
	if id == "" {
		return bot.Principal{}, errors.New("no such user")
	}
	return bot.Principal{ID: id, Email: id + "@example.com"}, nil
}

// testIDCUsers maps Slack user ids to Identity Center user names, as
// groups.yaml's identity_center_users does.
type testIDCUsers map[string]string

func (m testIDCUsers) IdentityCenterUser(p bot.Principal) (string, bool) {
	u, ok := m[p.ID]
	return u, ok
}

type testInventory map[string]map[string]string // id → tags

func (inv testInventory) Instances(_ context.Context, ids []string) ([]bot.Target, error) {
	var out []bot.Target
	for _, id := range ids {
		if tags, ok := inv[id]; ok {
			out = append(out, bot.Target{ID: id, Tags: tags})
		}
	}
	return out, nil
}

type testCatalogue []Profile

func (c testCatalogue) Profile(name string) (Profile, bool) {
	for _, p := range c {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

func (c testCatalogue) Profiles() []Profile { return c }

const (
	alice = "UALICE" // requester
	bob   = "UBOB"   // approver
	carol = "UCAROL" // approver
	dave  = "UDAVE"  // approver
	eve   = "UEVE"   // not allowed to approve
	admin = "UADMIN" // may revoke and review
	web1  = "i-0abc123def4567890"
	web2  = "i-0abc123def4567891"
	db1   = "i-12345678"
)

var testProfiles = testCatalogue{
	{Name: "prod-ssm", Kind: KindSSM, RoleARN: "arn:aws:iam::111122223333:role/tokken-ssm",
		Instances:       InstanceSelector{IDs: []string{web1}, Tags: map[string]string{"env": "prod"}},
		DefaultDuration: 30 * time.Minute, MaxDuration: 2 * time.Hour, Approvals: 1, ApproverChannel: "CAPPROVERS", BreakGlass: true},
	{Name: "prod-admin", Kind: KindSTS, RoleARN: "arn:aws:iam::111122223333:role/tokken-admin",
		DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour, Approvals: 2, ApproverChannel: "CAPPROVERS"},
	{Name: "dev-read", Kind: KindSTS, RoleARN: "arn:aws:iam::111122223333:role/tokken-read",
		DefaultDuration: time.Hour, MaxDuration: 8 * time.Hour, Approvals: 0},
	{Name: "secret-ops", Kind: KindSTS, RoleARN: "arn:aws:iam::111122223333:role/secret",
		DefaultDuration: time.Hour, MaxDuration: time.Hour, Approvals: 1},
}

// watchStore is the bbolt store that also reports the key of every request
// it writes to puts (when set before the writers start), so a test can wait
// for a background write such as a lease renewal instead of polling.
type watchStore struct {
	*boltstore.Store
	puts chan string
}

func (w *watchStore) Put(ctx context.Context, rec bot.Record) (int64, error) {
	v, err := w.Store.Put(ctx, rec)
	if err == nil && w.puts != nil && rec.Kind == KindRequest {
		select {
		case w.puts <- rec.Key:
		default: // nobody is listening closely: drop, never block the writer
		}
	}
	return v, err
}

type harness struct {
	t        *testing.T
	path     string
	store    *boltstore.Store
	watch    *watchStore
	clock    *fakeclock.Clock
	queue    *botfake.Queue
	timers   *botfake.Timers
	granter  *recGranter
	notifier *recNotifier
	audit    *botfake.Auditor
	// authz is the policy in force; a test may change it between steps
	// (as reloading the policy files would).
	authz testAuthz
	// idc is the Identity Center the Service grants identity-center
	// profiles through; extra are profiles added to testProfiles.
	idc   *memIDC
	extra testCatalogue
	// idcUsers is the policy's mapping of Slack users to Identity Center
	// users; a test may change it between steps.
	idcUsers testIDCUsers
	svc      *Service
	mux      *bot.JobMux
	jobErrs  []error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		t: t, path: filepath.Join(t.TempDir(), "tokken.db"), clock: fakeclock.New(t0),
		queue: &botfake.Queue{}, timers: &botfake.Timers{}, granter: &recGranter{},
		notifier: &recNotifier{}, audit: &botfake.Auditor{}, idc: newMemIDC(), idcUsers: testIDCUsers{},
	}
	h.open()
	return h
}

// open (re)opens the store file and builds a fresh Service over it, as a
// process restart would.
func (h *harness) open() {
	h.t.Helper()
	st, err := boltstore.Open(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = st
	h.watch = &watchStore{Store: st}
	h.t.Cleanup(func() { _ = st.Close() })
	h.authz = testAuthz{
		bot.ActionRequest:    {alice, bob},
		bot.ActionApprove:    {bob, carol, dave, alice, admin},
		bot.ActionBreakGlass: {alice},
		bot.ActionRevoke:     {admin},
		bot.ActionReview:     {admin},
		bot.ActionExtend:     {alice},
	}
	svc, err := New(Deps{
		Store: h.watch, Queue: h.queue, Timers: h.timers, Auditor: h.audit,
		Authorizer: h.authz,
		Catalogue:  append(slices.Clip(testProfiles), h.extra...), Granter: h.granter, Notifier: h.notifier, Directory: testDirectory{},
		Inventory:      testInventory{web1: {"env": "prod"}, web2: {"env": "prod"}, db1: {"env": "staging"}},
		Clock:          h.clock.Now,
		IdentityCenter: h.idc, IdentityUsers: h.idcUsers, PortalURL: "https://d-1234567890.awsapps.com/start",
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.svc = svc
	h.mux = bot.NewJobMux()
	svc.Register(h.mux)
}

func (h *harness) restart() {
	h.t.Helper()
	if err := h.store.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// drain runs queued jobs (and the jobs they enqueue) until none is left,
// recording handler errors in h.jobErrs. Failed jobs are not re-run: tests
// re-run them explicitly to model the queue's retries.
func (h *harness) drain() {
	h.t.Helper()
	err := h.queue.Drain(context.Background(), func(ctx context.Context, j bot.Job) error {
		if err := h.mux.HandleJob(ctx, j); err != nil {
			h.jobErrs = append(h.jobErrs, err)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// advance moves the clock and fires the timers that are due.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	for _, tm := range h.timers.Due(h.clock.Advance(d)) {
		if err := h.mux.HandleJob(context.Background(), tm.Job); err != nil {
			h.jobErrs = append(h.jobErrs, err)
		}
	}
	h.drain()
}

func (h *harness) get(id string) Request {
	h.t.Helper()
	r, err := h.svc.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) wantState(id string, want State) Request {
	h.t.Helper()
	r := h.get(id)
	if r.State != want {
		h.t.Fatalf("request %s is %s, want %s (history %+v)", id, r.State, want, r.History)
	}
	return r
}

func (h *harness) submit(in SubmitInput) Request {
	h.t.Helper()
	if in.Requester == "" {
		in.Requester = alice
	}
	if in.Reason == "" {
		in.Reason = "investigating 5xx on web-01"
	}
	r, err := h.svc.Submit(context.Background(), in)
	if err != nil {
		h.t.Fatalf("submit %+v: %v", in, err)
	}
	return r
}

// approvedActivation submits a 30-minute ssm request for web1, has bob
// approve it and returns it with its activation job, taken from the queue
// and not run.
func (h *harness) approvedActivation() (Request, bot.Job) {
	h.t.Helper()
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{web1}})
	if _, err := h.svc.Approve(context.Background(), bob, r.ID); err != nil {
		h.t.Fatal(err)
	}
	jobs := h.queue.Take()
	if len(jobs) != 1 || jobs[0].Kind != JobActivate {
		h.t.Fatalf("after approval: jobs %+v, want one %s", jobs, JobActivate)
	}
	return r, jobs[0]
}

// active submits an ssm request for web1 and gets it approved and active.
func (h *harness) active(d time.Duration) Request {
	h.t.Helper()
	r := h.submit(SubmitInput{Profile: "prod-ssm", Duration: d, Instances: []string{web1}})
	if _, err := h.svc.Approve(context.Background(), bob, r.ID); err != nil {
		h.t.Fatal(err)
	}
	h.drain()
	return h.wantState(r.ID, StateActive)
}
