package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

var idcProfiles = testCatalogue{
	{Name: "prod-idc", Kind: KindIdentityCenter,
		IDC:             IDCSelector{Accounts: []string{"111111111111", "222222222222"}, PermissionSet: "AdministratorAccess"},
		DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour, Approvals: 1, ApproverChannel: "CAPPROVERS"},
	{Name: "dev-group", Kind: KindIdentityCenter,
		IDC:             IDCSelector{Accounts: []string{"333333333333"}, PermissionSet: "PowerUserAccess", Group: "Dev Admins"},
		DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour, Approvals: 0},
}

// memIDC is an in-memory Identity Center: users by e-mail, groups by name,
// permission sets by name, and the assignments and memberships that exist.
type memIDC struct {
	mu          sync.Mutex
	users       map[string]string // e-mail → user id
	groups      map[string]string // display name → group id
	assigned    map[Assignment]bool
	members     map[[2]string]bool // {group id, user id}
	failAssign  string             // the FailureReason of the next Assign
	failRemove  int                // fail the next n Unassign/RemoveMember calls
	assigns     int
	removes     int
	sessionDur  time.Duration
	lookupsUser []string
	// onAssigned, when set, runs as Assigned is asked (before it answers).
	onAssigned func()
}

func newMemIDC() *memIDC {
	return &memIDC{
		users:    map[string]string{alice + "@example.com": "u-alice", bob + "@example.com": "u-bob"},
		groups:   map[string]string{"Dev Admins": "g-dev"},
		assigned: map[Assignment]bool{}, members: map[[2]string]bool{},
		sessionDur: 8 * time.Hour,
	}
}

func (m *memIDC) UserID(_ context.Context, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookupsUser = append(m.lookupsUser, id)
	if u, ok := m.users[id]; ok {
		return u, nil
	}
	return "", &ErrNoIdentityUser{Identifier: id}
}

func (m *memIDC) GroupID(_ context.Context, name string) (string, error) {
	if g, ok := m.groups[name]; ok {
		return g, nil
	}
	return "", fmt.Errorf("no group %q", name)
}

func (m *memIDC) PermissionSet(_ context.Context, name string) (PermissionSet, error) {
	return PermissionSet{ARN: "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-" + strings.ToLower(name), Name: name, SessionDuration: m.sessionDur}, nil
}

func (m *memIDC) Assigned(_ context.Context, a Assignment) (bool, error) {
	if m.onAssigned != nil {
		m.onAssigned()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assigned[a], nil
}

func (m *memIDC) Assign(_ context.Context, a Assignment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.assigns++
	if m.failAssign != "" {
		why := m.failAssign
		m.failAssign = ""
		return &AssignmentFailedError{Op: "create", Reason: why}
	}
	m.assigned[a] = true
	return nil
}

func (m *memIDC) Unassign(_ context.Context, a Assignment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removes++
	if m.failRemove > 0 {
		m.failRemove--
		return &AssignmentFailedError{Op: "delete", Reason: "Internal failure"}
	}
	delete(m.assigned, a)
	return nil
}

func (m *memIDC) IsMember(_ context.Context, g, u string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[[2]string{g, u}], nil
}

func (m *memIDC) AddMember(_ context.Context, g, u string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.assigns++
	m.members[[2]string{g, u}] = true
	return nil
}

func (m *memIDC) RemoveMember(_ context.Context, g, u string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removes++
	if m.failRemove > 0 {
		m.failRemove--
		return errors.New("ThrottlingException")
	}
	delete(m.members, [2]string{g, u})
	return nil
}

func (m *memIDC) has(a Assignment) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assigned[a]
}

var aliceAdmin222 = Assignment{Account: "222222222222", PermissionSetARN: "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-administratoraccess",
	PrincipalType: PrincipalUser, PrincipalID: "u-alice"}

// newIDCHarness is a harness whose catalogue has idcProfiles too.
func newIDCHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.extra = idcProfiles
	h.restart()
	return h
}

// activeIDC submits alice's identity-center request for account
// 222222222222 and gets it approved by bob and active.
func (h *harness) activeIDC(d time.Duration) Request {
	h.t.Helper()
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222", Duration: d})
	if _, err := h.svc.Approve(context.Background(), bob, r.ID); err != nil {
		h.t.Fatal(err)
	}
	h.drain()
	return h.wantState(r.ID, StateActive)
}

func historyActions(r Request) []string {
	var out []string
	for _, h := range r.History {
		out = append(out, h.Action)
	}
	return out
}

func TestIDCGrantLifecycle(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "prod-idc", Duration: time.Hour, Reason: "222222222222 rotate the KMS key"})
	if r.IDC == nil || r.IDC.Account != "222222222222" || r.Reason != "rotate the KMS key" {
		t.Fatalf("submitted %+v (IDC %+v)", r, r.IDC)
	}
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateActive)
	if !h.idc.has(aliceAdmin222) {
		t.Fatalf("no assignment after activation: %+v", h.idc.assigned)
	}
	g := r.IDC
	if !g.Owned() || !g.Granted || g.Identifier != alice+"@example.com" || g.SessionDuration != 8*time.Hour ||
		g.PortalURL != "https://d-1234567890.awsapps.com/start/#/console?account_id=222222222222&role_name=AdministratorAccess" {
		t.Errorf("IDC = %+v", g)
	}
	for _, want := range []string{ActIDCAssigning, ActIDCAssigned, ActActive} {
		if !slices.Contains(historyActions(r), want) {
			t.Errorf("history lacks %s: %v", want, historyActions(r))
		}
	}
	if !slices.Contains(h.notifier.toldActions(r.ID), ActActive) {
		t.Errorf("requester not told it is active: %v", h.notifier.toldActions(r.ID))
	}
	// No credentials to renew: the portal is how one signs in again.
	if _, err := h.svc.AskCredentials(ctx, alice, r.ID); err == nil {
		t.Error("new credentials were offered for an identity-center grant")
	} else if msg, _ := Explain(err); !strings.Contains(msg, "sign in again through the AWS access portal") {
		t.Errorf("new credentials refused with %q", msg)
	}
	if n, _, _ := h.granter.counts(); n != 0 {
		t.Errorf("STS issued %d credential sets for an identity-center grant", n)
	}
	// An extension moves the window; the assignment stays.
	if _, err := h.svc.Extend(ctx, alice, r.ID, 30*time.Minute, "more"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.ApproveExtension(ctx, bob, r.ID, h.get(r.ID).Extensions[0].ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if r = h.get(r.ID); !r.Window.ExpiresAt.Equal(r.Window.ActivatedAt.Add(90*time.Minute)) || !h.idc.has(aliceAdmin222) {
		t.Fatalf("after extension: window %+v, assigned %v, jobs %v", r.Window, h.idc.has(aliceAdmin222), h.jobErrs)
	}
	h.advance(time.Hour)
	h.wantState(r.ID, StateActive)
	h.advance(31 * time.Minute)
	r = h.wantState(r.ID, StateExpired)
	if h.idc.has(aliceAdmin222) {
		t.Error("assignment still there after expiry")
	}
	if !slices.Contains(historyActions(r), ActIDCUnassigned) {
		t.Errorf("history lacks %s: %v", ActIDCUnassigned, historyActions(r))
	}
}

func TestIDCPreexistingAssignmentLeftAlone(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	h.idc.assigned[aliceAdmin222] = true
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateActive)
	if !r.IDC.Preexisting || r.IDC.Granted || h.idc.assigns != 0 {
		t.Fatalf("IDC %+v, %d assigns: want pre-existing, nothing granted", r.IDC, h.idc.assigns)
	}
	if !slices.Contains(historyActions(r), ActIDCPreexisting) {
		t.Errorf("history lacks %s: %v", ActIDCPreexisting, historyActions(r))
	}
	if _, err := h.svc.Done(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateRevoked)
	if !h.idc.has(aliceAdmin222) || h.idc.removes != 0 {
		t.Errorf("the permanent assignment was removed (%d removes)", h.idc.removes)
	}
}

// idcFirstAttemptDied submits alice's identity-center request and has bob
// approve it; a first activation run then claims it, records what it found
// (nothing there: tokken's to grant), assigns, and dies. It returns the
// request and the activation jobs, not yet run.
func (h *harness) idcFirstAttemptDied() (Request, []bot.Job) {
	h.t.Helper()
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		h.t.Fatal(err)
	}
	jobs := h.queue.Take()
	token := "c-first"
	claimed, err := h.svc.transition(ctx, r.ID, func(r *Request) error { return r.ClaimActivation(token, h.clock.Now()) })
	if err != nil {
		h.t.Fatal(err)
	}
	g := IDCGrant{Account: "222222222222", PermissionSet: "AdministratorAccess", Identifier: alice + "@example.com", UserID: "u-alice",
		PermissionSetARN: aliceAdmin222.PermissionSetARN, PermissionSetName: "AdministratorAccess", Checked: true}
	// As activation does: first the worker's own record, then the request.
	if err := h.svc.recordHeld(ctx, Held{Grant: claimed.Grant(), IDC: &g}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.svc.transition(ctx, r.ID, func(r *Request) error { return r.IDCChecked(token, g, h.clock.Now()) }); err != nil {
		h.t.Fatal(err)
	}
	h.idc.assigned[aliceAdmin222] = true
	return r, jobs
}

// A retried activation finds the assignment the first attempt made: it
// must not take it for a permanent one.
func TestIDCRetryKeepsFirstFinding(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r, jobs := h.idcFirstAttemptDied()
	h.clock.Advance(claimLease + time.Second)
	for _, j := range jobs {
		if err := h.mux.HandleJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	r = h.wantState(r.ID, StateActive)
	if r.IDC.Preexisting || !r.IDC.Owned() {
		t.Fatalf("retry took tokken's own assignment for a permanent one: %+v", r.IDC)
	}
	if _, err := h.svc.Revoke(ctx, admin, r.ID, "incident over"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateRevoked)
	if h.idc.has(aliceAdmin222) {
		t.Error("revoke left tokken's assignment")
	}
}

func TestIDCUnknownEmailRefused(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	delete(h.idc.users, alice+"@example.com")
	_, err := h.svc.Submit(ctx, SubmitInput{Requester: alice, Profile: "prod-idc", Account: "111111111111", Reason: "x"})
	msg, _ := Explain(err)
	if !strings.Contains(msg, "no user with the e-mail "+alice+"@example.com") {
		t.Fatalf("submit by an unknown e-mail: %v (%q)", err, msg)
	}
	// Someone the rules do not let request it is refused by the rules,
	// without asking Identity Center about them.
	before := len(h.idc.lookupsUser)
	_, err = h.svc.Submit(ctx, SubmitInput{Requester: eve, Profile: "prod-idc", Account: "111111111111", Reason: "x"})
	var denied *ErrNotAllowed
	if !errors.As(err, &denied) || len(h.idc.lookupsUser) != before {
		t.Errorf("submit by eve: %v, %d Identity Store lookups", err, len(h.idc.lookupsUser)-before)
	}
	// Deleted between submission and activation: activation refuses too.
	h.idc.users[alice+"@example.com"] = "u-alice"
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "111111111111"})
	delete(h.idc.users, alice+"@example.com")
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateFailed)
	if !strings.Contains(r.Failure.What, alice+"@example.com") || h.idc.assigns != 0 {
		t.Errorf("failure %+v, %d assigns", r.Failure, h.idc.assigns)
	}
}

func TestIDCAssignmentFailed(t *testing.T) {
	h := newIDCHarness(t)
	h.idc.failAssign = "Received a 404 status error: Not supported account"
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "111111111111"})
	if _, err := h.svc.Approve(context.Background(), bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateFailed)
	if !strings.Contains(r.Failure.What, "Not supported account") {
		t.Errorf("failure %+v", r.Failure)
	}
}

func TestIDCRevokeFailedThenRetried(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateActive)
	h.idc.failRemove = MaxEndAttempts
	for range MaxEndAttempts {
		_ = h.svc.Finish(ctx, r.ID) // the first Expire/Finish attempts, as the queue retries them
		if h.get(r.ID).State == StateActive {
			h.advance(time.Hour)
		}
	}
	r = h.wantState(r.ID, StateRevokeFailed)
	if !slices.Contains(h.notifier.alertActions(), "ops:"+ActRevokeFailed) || !h.idc.has(aliceAdmin222) {
		t.Fatalf("alerts %v, assigned %v", h.notifier.alertActions(), h.idc.has(aliceAdmin222))
	}
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	h.wantState(r.ID, StateExpired)
	if h.idc.has(aliceAdmin222) {
		t.Error("the sweep's retry left the assignment")
	}
}

func TestIDCGroupForm(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "dev-group"}) // one account, no approval
	h.drain()
	r = h.wantState(r.ID, StateActive)
	if !h.idc.members[[2]string{"g-dev", "u-alice"}] || r.IDC.GroupID != "g-dev" || !r.IDC.Granted {
		t.Fatalf("membership not granted: %+v", r.IDC)
	}
	if _, err := h.svc.Done(ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateRevoked)
	if h.idc.members[[2]string{"g-dev", "u-alice"}] {
		t.Error("membership left after I'm done")
	}
}

func TestIDCAccountChoice(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	for _, tt := range []struct{ account, reason, want string }{
		{"", "no account named", "name the account before the reason, one of 111111111111, 222222222222"},
		{"333333333333", "x", "account 333333333333 is not in this profile"},
	} {
		_, err := h.svc.Submit(ctx, SubmitInput{Requester: alice, Profile: "prod-idc", Account: tt.account, Reason: tt.reason})
		if msg, _ := Explain(err); !strings.Contains(msg, tt.want) {
			t.Errorf("account %q: %v, want %q", tt.account, err, tt.want)
		}
	}
}

// A stored request whose account the profile does not give (a tampered
// table, a misbehaving ingress) is refused by the worker before it calls
// Identity Center.
func TestIDCForgedAccountRefused(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "111111111111"})
	if _, err := h.svc.requests.Update(ctx, r.ID, func(r *Request) error { r.IDC.Account = "999999999999"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateFailed)
	if !strings.Contains(r.Failure.What, "account 999999999999 is not one profile prod-idc gives now") || h.idc.assigns != 0 {
		t.Errorf("failure %+v, %d assigns", r.Failure, h.idc.assigns)
	}
	if !slices.Contains(h.notifier.alertActions(), "ops:"+ActRefused) {
		t.Errorf("ops not alerted: %v", h.notifier.alertActions())
	}
}

// A requester whose Slack e-mail Identity Center does not know is granted
// through the policy's mapping; a mapping changed while the grant is
// active does not move what ending removes: the user granted, as recorded.
func TestIDCMappedUser(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	delete(h.idc.users, alice+"@example.com")
	h.idc.users["alice.smith"] = "u-alice2"
	h.idc.users["someone.else"] = "u-else"
	h.idcUsers[alice] = "alice.smith"
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateActive)
	mine := aliceAdmin222
	mine.PrincipalID = "u-alice2"
	if !h.idc.has(mine) || r.IDC.Identifier != "alice.smith" || r.IDC.UserID != "u-alice2" {
		t.Fatalf("IDC %+v, assignments %v", r.IDC, h.idc.assigned)
	}
	if slices.Contains(h.idc.lookupsUser, alice+"@example.com") {
		t.Errorf("the Slack e-mail was looked up although the policy maps alice: %v", h.idc.lookupsUser)
	}
	h.idcUsers[alice] = "someone.else"
	h.advance(61 * time.Minute)
	h.wantState(r.ID, StateExpired)
	if len(h.idc.assigned) != 0 {
		t.Errorf("after expiry, assignments %v: want the one granted removed, none other made", h.idc.assigned)
	}
}

// A mapping to a user Identity Center does not have is refused naming
// the mapped user, at submission and at activation.
func TestIDCMappedUserUnknown(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	h.idcUsers[alice] = "ghost"
	_, err := h.svc.Submit(ctx, SubmitInput{Requester: alice, Profile: "prod-idc", Account: "111111111111", Reason: "x"})
	if msg, _ := Explain(err); !strings.Contains(msg, "no user ghost (the user identity_center_users in groups.yaml maps you to)") ||
		!strings.Contains(msg, "correct your entry in identity_center_users") {
		t.Fatalf("submit mapped to an unknown user: %q", msg)
	}
	delete(h.idcUsers, alice)
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "111111111111"})
	h.idcUsers[alice] = "ghost"
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateFailed)
	if !strings.Contains(r.Failure.What, "no user ghost (the user identity_center_users") || h.idc.assigns != 0 {
		t.Errorf("failure %+v, %d assigns", r.Failure, h.idc.assigns)
	}
}

// A stored request that says whom to grant (a tampered table, a
// misbehaving ingress writing a "checked" grant for another Identity Store
// user or permission set) is refused: the worker derives the grantee
// itself and grants nothing else.
func TestIDCForgedGranteeRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		forge  func(g *IDCGrant)
		victim Assignment
	}{
		{"another user", func(g *IDCGrant) { g.UserID, g.Identifier = "u-bob", bob+"@example.com" },
			Assignment{Account: "222222222222", PermissionSetARN: aliceAdmin222.PermissionSetARN, PrincipalType: PrincipalUser, PrincipalID: "u-bob"}},
		{"another permission set", func(g *IDCGrant) {
			g.PermissionSetARN = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-poweruseraccess"
		},
			Assignment{Account: "222222222222", PermissionSetARN: "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-poweruseraccess", PrincipalType: PrincipalUser, PrincipalID: "u-alice"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newIDCHarness(t)
			ctx := context.Background()
			r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
			if _, err := h.svc.requests.Update(ctx, r.ID, func(r *Request) error {
				r.IDC.UserID, r.IDC.Identifier, r.IDC.PermissionSetARN = "u-alice", alice+"@example.com", aliceAdmin222.PermissionSetARN
				r.IDC.Checked = true
				tt.forge(r.IDC)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
				t.Fatal(err)
			}
			h.drain()
			r = h.wantState(r.ID, StateFailed)
			if !strings.Contains(r.Failure.What, "is not the one the policy and directory give now") || h.idc.assigns != 0 || h.idc.has(tt.victim) {
				t.Errorf("failure %+v, %d assigns", r.Failure, h.idc.assigns)
			}
			if !slices.Contains(h.notifier.alertActions(), "ops:"+ActRefused) {
				t.Errorf("ops not alerted: %v", h.notifier.alertActions())
			}
		})
	}
}

// The mapping changes between an activation attempt that assigned and the
// retry: the retry grants nobody else, and ending removes what the first
// attempt recorded.
func TestIDCMappingChangedBeforeRetry(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r, jobs := h.idcFirstAttemptDied()
	h.idc.users["alice.smith"] = "u-alice2"
	h.idcUsers[alice] = "alice.smith"
	h.clock.Advance(claimLease + time.Second)
	for _, j := range jobs {
		if err := h.mux.HandleJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	h.drain()
	r = h.wantState(r.ID, StateFailed)
	if len(h.idc.assigned) != 0 || !strings.Contains(r.Failure.What, "user u-alice2 for alice.smith") {
		t.Errorf("assignments %v, failure %+v: want the first attempt's removed and none made", h.idc.assigned, r.Failure)
	}
}

// A mapping changed while the grant is active refuses its extension (more
// time would go to someone the policy no longer names); the grant keeps its
// window and ending removes what was granted.
func TestIDCExtensionAfterMappingChange(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateActive)
	end := r.Window.ExpiresAt
	h.idc.users["alice.smith"] = "u-alice2"
	h.idcUsers[alice] = "alice.smith"
	if _, err := h.svc.Extend(ctx, alice, r.ID, 30*time.Minute, "more"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.ApproveExtension(ctx, bob, r.ID, h.get(r.ID).Extensions[0].ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.get(r.ID)
	if !r.Window.ExpiresAt.Equal(end) || r.Extensions[0].State != ExtensionLapsed {
		t.Fatalf("extension %+v applied after the mapping changed: window end %s, want %s", r.Extensions[0], r.Window.ExpiresAt, end)
	}
	if !slices.ContainsFunc(r.History, func(hr HistoryRow) bool {
		return hr.Action == ActRefused && strings.Contains(hr.Note, "user u-alice2 for alice.smith")
	}) {
		t.Errorf("no refusal naming the new user in %+v", r.History)
	}
	h.advance(61 * time.Minute)
	h.wantState(r.ID, StateExpired)
	if len(h.idc.assigned) != 0 {
		t.Errorf("assignments after expiry: %v", h.idc.assigned)
	}
}

// A grantee written into the stored request while activation looks for
// existing access (after it read the request, before it records its
// finding) is refused as well: activation grants only what it derived.
func TestIDCGranteeForgedDuringActivation(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.submit(SubmitInput{Profile: "prod-idc", Account: "222222222222"})
	bobAdmin := aliceAdmin222
	bobAdmin.PrincipalID = "u-bob"
	h.idc.onAssigned = func() {
		h.idc.onAssigned = nil
		if _, err := h.svc.requests.Update(ctx, r.ID, func(r *Request) error {
			r.IDC.Checked, r.IDC.UserID, r.IDC.Identifier, r.IDC.PermissionSetARN = true, "u-bob", bob+"@example.com", bobAdmin.PermissionSetARN
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	r = h.wantState(r.ID, StateFailed)
	if h.idc.assigns != 0 || h.idc.has(bobAdmin) || !strings.Contains(r.Failure.What, "user u-bob") {
		t.Errorf("failure %+v, %d assigns", r.Failure, h.idc.assigns)
	}
}

// TestIDCMovedWindowEndStillExpires: an active identity-center grant whose
// item has its window end moved three hours later (the rest left as it
// was) still loses its assignment when the window its approvals gave ends.
func TestIDCMovedWindowEndStillExpires(t *testing.T) {
	h := newIDCHarness(t)
	ctx := context.Background()
	r := h.activeIDC(time.Hour)
	if _, err := h.svc.requests.Update(ctx, r.ID, func(r *Request) error {
		r.Window.ExpiresAt = r.Window.ExpiresAt.Add(3 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Hour + time.Minute)
	h.wantState(r.ID, StateExpired)
	if h.idc.has(aliceAdmin222) {
		t.Error("the assignment outlived the approved window")
	}
}
