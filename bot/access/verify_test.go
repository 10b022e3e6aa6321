package access

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/dynamostore"
	"github.com/tokken/tokken/testkit/ddblocal"
)

// forge writes r straight into the store, as a compromised ingress could,
// and enqueues the activation job as the ingress does.
func (h *harness) forge(r Request) {
	h.t.Helper()
	if err := (bot.Table[Request]{Store: h.watch, Kind: KindRequest}).Create(ctx, r.ID, r, 0); err != nil {
		h.t.Fatal(err)
	}
	j, err := bot.NewJob("activate/"+r.ID, JobActivate, jobRef{RequestID: r.ID})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.queue.Enqueue(ctx, j); err != nil {
		h.t.Fatal(err)
	}
}

// forgedActivating is an activating request for profile p as Submit and
// Approve would have stored it, approved by approvers (each with its
// history row).
func forgedActivating(id string, p Profile, approvers ...string) Request {
	at := t0.Add(-time.Minute)
	r := Request{
		ID: id, Requester: alice, Profile: p.Name, Kind: p.Kind, RoleARN: p.RoleARN, SessionPolicy: p.SessionPolicy,
		Duration: 30 * time.Minute, Reason: "forged", Created: at, State: StateActivating, ApprovalsNeeded: p.Approvals,
		Activation: &Activation{Since: t0},
	}
	if p.Kind == KindSSM {
		r.Targets = []bot.Target{{ID: web1, Tags: map[string]string{"env": "prod"}}}
	}
	r.log(at, alice, ActRequested, "forged")
	for _, a := range approvers {
		r.Approvals = append(r.Approvals, Approval{By: a, At: at})
		r.log(at, a, ActApproved, "")
	}
	r.log(t0, System, ActActivating, "")
	return r
}

func profile(t *testing.T, name string) Profile {
	t.Helper()
	p, ok := testProfiles.Profile(name)
	if !ok {
		t.Fatalf("no profile %s", name)
	}
	return p
}

// TestForgedActivationRefused writes activating requests that no permitted
// quorum approved straight into the store and runs their activation job:
// none reaches the granter; each fails with the reason on the card, one
// access.refused audit event and an ops alert.
func TestForgedActivationRefused(t *testing.T) {
	ssm, admin2 := profile(t, "prod-ssm"), profile(t, "prod-admin")
	cases := []struct {
		name string
		r    func() Request
		why  string
	}{
		{"no approvals", func() Request { return forgedActivating("r-noapprovals", ssm) }, "0 of the 1 approvals"},
		{"approved by the requester", func() Request { return forgedActivating("r-selfapprove", ssm, alice) },
			"the requester cannot approve"},
		{"approved by someone not permitted", func() Request { return forgedActivating("r-byeve", ssm, eve) },
			"no longer permitted to approve"},
		{"one approver counted twice", func() Request { return forgedActivating("r-twice", admin2, bob, bob) },
			"1 of the 2 approvals"},
		{"approval missing from the history", func() Request {
			r := forgedActivating("r-nohistory", ssm)
			r.Approvals = []Approval{{By: bob, At: t0.Add(-time.Minute)}}
			return r
		}, "not in the request's history"},
		{"approval from before the request", func() Request {
			r := forgedActivating("r-early", ssm, bob)
			r.Approvals[0].At = r.Created.Add(-time.Hour)
			return r
		}, "impossible time"},
		{"stored approvals needed lowered", func() Request {
			r := forgedActivating("r-zero", ssm)
			r.ApprovalsNeeded = 0
			return r
		}, "0 of the 1 approvals"},
		{"another role", func() Request {
			r := forgedActivating("r-role", ssm, bob)
			r.RoleARN = "arn:aws:iam::111122223333:role/tokken-admin"
			return r
		}, "role or session policy"},
		{"session policy dropped", func() Request {
			r := forgedActivating("r-policy", ssm, bob)
			r.SessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
			return r
		}, "role or session policy"},
		{"longer than the profile allows", func() Request {
			r := forgedActivating("r-long", ssm, bob)
			r.Duration = 12 * time.Hour
			return r
		}, "maximum"},
		{"instance outside the selector", func() Request {
			r := forgedActivating("r-target", ssm, bob)
			r.Targets = []bot.Target{{ID: db1, Tags: map[string]string{"env": "prod"}}} // really env=staging
			return r
		}, db1},
		{"break-glass by someone who may not", func() Request {
			r := forgedActivating("r-bg", ssm)
			r.Requester = bob
			r.BreakGlass = &BreakGlass{Reason: "forged", At: t0}
			r.log(t0, bob, ActBreakGlass, "forged")
			return r
		}, "may no longer break-glass"},
		{"break-glass on a profile without it", func() Request {
			r := forgedActivating("r-bgoff", admin2)
			r.BreakGlass = &BreakGlass{Reason: "forged", At: t0}
			r.log(t0, alice, ActBreakGlass, "forged")
			return r
		}, "does not allow break-glass"},
		{"unknown profile", func() Request {
			r := forgedActivating("r-profile", ssm, bob)
			r.Profile = "everything"
			return r
		}, "no longer exists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			r := c.r()
			h.forge(r)
			h.drain()
			if n, _, _ := h.granter.counts(); n != 0 {
				t.Fatalf("the granter issued %d grants for a forged request", n)
			}
			got := h.wantState(r.ID, StateFailed)
			if got.Failure == nil || !strings.Contains(got.Failure.What, c.why) || !strings.Contains(got.Failure.What, "refused") {
				t.Fatalf("failure %+v, want it to say %q", got.Failure, c.why)
			}
			if a := h.audit.Actions(r.ID); !slices.Equal(a, []string{ActRefused}) {
				t.Fatalf("audit %v, want one %s", a, ActRefused)
			}
			if a := h.notifier.alertActions(); !slices.Equal(a, []string{"ops:" + ActRefused}) {
				t.Fatalf("alerts %v", a)
			}
			if last := h.notifier.changed[len(h.notifier.changed)-1]; last.State != StateFailed || last.Failure == nil {
				t.Fatalf("the card was last rendered %s", last.State)
			}
			if len(h.jobErrs) != 0 {
				t.Fatalf("job errors %v", h.jobErrs)
			}
		})
	}
}

// TestGenuineForgeryLookalikesActivate: the checks refuse what they
// should and nothing else: a stored request that is what Submit and a
// permitted approver make is granted.
func TestGenuineForgeryLookalikesActivate(t *testing.T) {
	h := newHarness(t)
	r := forgedActivating("r-genuine", profile(t, "prod-ssm"), bob)
	h.forge(r)
	h.drain()
	h.wantState(r.ID, StateActive)
	if n, _, _ := h.granter.counts(); n != 1 {
		t.Fatalf("%d grants, want 1", n)
	}
}

// TestApprovalLapsesWhenApproverRemoved: an approver removed from the
// policy after approving no longer counts when the quorum completes; the
// request waits for another permitted approver.
func TestApprovalLapsesWhenApproverRemoved(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Profile: "prod-admin", Duration: time.Hour})
	if _, err := h.svc.Approve(ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	h.authz[bot.ActionApprove] = []string{carol, dave} // bob leaves the approvers
	got, err := h.svc.Approve(ctx, carol, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StatePending || !slices.Equal(got.Approvers(), []string{carol}) {
		t.Fatalf("after carol: %s approved by %v, want pending by carol only", got.State, got.Approvers())
	}
	if a := h.audit.Actions(r.ID); !slices.Contains(a, ActApprovalLapsed) {
		t.Fatalf("audit %v: no %s", a, ActApprovalLapsed)
	}
	if len(h.queue.Jobs()) != 0 {
		t.Fatalf("jobs %v before a quorum", h.queue.Jobs())
	}
	if _, err := h.svc.Approve(ctx, dave, r.ID); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.wantState(r.ID, StateActive)
	if n, _, _ := h.granter.counts(); n != 1 {
		t.Fatalf("%d grants, want 1", n)
	}
}

// TestApproverRemovedBeforeActivationRefused: the quorum completed, then
// the approver lost the right before the worker ran: the worker refuses.
func TestApproverRemovedBeforeActivationRefused(t *testing.T) {
	h := newHarness(t)
	r, job := h.approvedActivation()
	h.authz[bot.ActionApprove] = []string{carol}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	h.drain()
	got := h.wantState(r.ID, StateFailed)
	if n, _, _ := h.granter.counts(); n != 0 {
		t.Fatalf("%d grants, want none", n)
	}
	if !strings.Contains(got.Failure.What, "approval by "+bob+" does not count") {
		t.Fatalf("failure %q", got.Failure.What)
	}
}

// TestForgedExtensionRefused: an active grant whose stored extension is
// "approved" without a permitted approval gets no more time, and an
// extension approved by someone who then left the approvers neither.
func TestForgedExtensionRefused(t *testing.T) {
	h := newHarness(t)
	r := h.active(30 * time.Minute)
	// The ingress writes an approved extension nobody approved.
	x := Extension{ID: "x-forged", Duration: time.Hour, Reason: "forged", Requested: h.clock.Now(), State: ExtensionApproved,
		NewExpiresAt: r.Window.ExpiresAt.Add(time.Hour)}
	if _, err := h.svc.requests.Update(ctx, r.ID, func(r *Request) error {
		r.Extensions = append(r.Extensions, x)
		r.log(x.Requested, alice, ActExtendRequested, x.Reason)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	j, _ := bot.NewJob("extend/"+r.ID+"/"+x.ID, JobExtend, jobRef{RequestID: r.ID, ExtensionID: x.ID})
	if err := h.queue.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	h.drain()
	got := h.wantState(r.ID, StateActive)
	if !got.Window.ExpiresAt.Equal(r.Window.ExpiresAt) || got.extension(x.ID).State != ExtensionLapsed {
		t.Fatalf("window %+v, extension %+v", got.Window, got.extension(x.ID))
	}
	if n, _, _ := h.granter.counts(); n != 1 {
		t.Fatalf("%d grants, want only the original", n)
	}
	if a := h.notifier.alertActions(); !slices.Equal(a, []string{"ops:" + ActRefused}) {
		t.Fatalf("alerts %v", a)
	}

	// A real extension, approved by bob, who leaves before the worker runs.
	got, err := h.svc.Extend(ctx, alice, r.ID, 20*time.Minute, "more")
	if err != nil {
		t.Fatal(err)
	}
	ext := got.PendingExtension().ID
	if _, err := h.svc.ApproveExtension(ctx, bob, r.ID, ext); err != nil {
		t.Fatal(err)
	}
	h.authz[bot.ActionApprove] = []string{carol}
	h.drain()
	got = h.wantState(r.ID, StateActive)
	if got.extension(ext).State != ExtensionLapsed || !got.Window.ExpiresAt.Equal(r.Window.ExpiresAt) {
		t.Fatalf("extension %+v applied", got.extension(ext))
	}
	if n, _, _ := h.granter.counts(); n != 1 {
		t.Fatalf("%d grants, want only the original", n)
	}
}

// local is the DynamoDB Local instance the DynamoDB variant starts.
var local ddblocal.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	local.Stop()
	os.Exit(code)
}

// TestForgedActivationRefusedOnDynamoDB is the forged activation against
// the deployed store: an item the ingress wrote into DynamoDB (Local), and
// its activation job, grant nothing.
func TestForgedActivationRefusedOnDynamoDB(t *testing.T) {
	client := local.Require(t).Client()
	table := fmt.Sprintf("access-forged-%x", rand.Uint64())
	st := dynamostore.New(client, table)
	if err := st.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	h := newHarness(t) // the recording peers; the Service below runs on DynamoDB
	svc, err := New(Deps{
		Store: st, Queue: h.queue, Timers: h.timers, Auditor: h.audit, Authorizer: h.authz,
		Catalogue: testProfiles, Granter: h.granter, Notifier: h.notifier, Directory: testDirectory{},
		Inventory: testInventory{web1: {"env": "prod"}}, Clock: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc, h.mux = svc, bot.NewJobMux()
	svc.Register(h.mux)
	forged := forgedActivating("r-dynamoforge", profile(t, "prod-ssm"), eve)
	if err := (bot.Table[Request]{Store: st, Kind: KindRequest}).Create(ctx, forged.ID, forged, 0); err != nil {
		t.Fatal(err)
	}
	j, _ := bot.NewJob("activate/"+forged.ID, JobActivate, jobRef{RequestID: forged.ID})
	if err := h.queue.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if n, _, _ := h.granter.counts(); n != 0 {
		t.Fatalf("the granter issued %d grants for a forged request", n)
	}
	got := h.wantState(forged.ID, StateFailed)
	if !strings.Contains(got.Failure.What, "no longer permitted to approve") {
		t.Fatalf("failure %+v", got.Failure)
	}
	if a := h.audit.Actions(forged.ID); !slices.Equal(a, []string{ActRefused}) {
		t.Fatalf("audit %v", a)
	}
	if a := h.notifier.alertActions(); !slices.Equal(a, []string{"ops:" + ActRefused}) {
		t.Fatalf("alerts %v", a)
	}
}
