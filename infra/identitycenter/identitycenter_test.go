package identitycenter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/identitycenter"
	"github.com/tokken/tokken/testkit/awsfake"
)

const (
	instanceARN = "arn:aws:sso:::instance/ssoins-1111111111111111"
	storeID     = "d-1111111111"
	account     = "210987654321"
)

// env is a fake Identity Center with one instance, two users, a group and
// two permission sets, and a Client on it.
type env struct {
	f       *awsfake.Fake
	ic      *awsfake.IdentityCenter
	c       *identitycenter.Client
	alice   string // user id
	bob     string
	ops     string // group id
	admin   string // permission set ARN
	readers string
}

func setup(t *testing.T, opts identitycenter.Options) *env {
	t.Helper()
	f := awsfake.New(t)
	ic := f.IdentityCenter()
	ic.AddInstance(awsfake.IDCInstance{ARN: instanceARN, IdentityStoreID: storeID})
	e := &env{f: f, ic: ic,
		alice:   ic.AddUser(awsfake.IDCUser{UserName: "alice", Email: "alice@example.com"}),
		bob:     ic.AddUser(awsfake.IDCUser{UserName: "bob", Email: "bob@example.com"}),
		ops:     ic.AddGroup(awsfake.IDCGroup{DisplayName: "Ops Oncall"}),
		admin:   ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "AdministratorAccess", SessionDuration: "PT12H"}),
		readers: ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "ReadOnly", SessionDuration: "PT30M"}),
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Millisecond
	}
	e.c = identitycenter.NewFromConfig(f.Config(context.Background()), opts)
	return e
}

func configured() identitycenter.Options {
	return identitycenter.Options{InstanceARN: instanceARN, IdentityStoreID: storeID}
}

func TestUserID(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	for _, tc := range []struct {
		identifier, want, path string
	}{
		{"alice@example.com", e.alice, "emails.value"},
		{"Bob@Example.com", e.bob, "emails.value"},
		{"bob", e.bob, "userName"},
		{" alice ", e.alice, "userName"},
		{"carol@example.com", "", "emails.value"},
		{"carol", "", "userName"},
	} {
		got, err := e.c.UserID(ctx, tc.identifier)
		calls := e.f.Calls(awsfake.IdentityStoreService, "GetUserId")
		alt, _ := calls[len(calls)-1].Params["AlternateIdentifier"].(map[string]any)
		ua, _ := alt["UniqueAttribute"].(map[string]any)
		if ua["AttributePath"] != tc.path || ua["AttributeValue"] != strings.TrimSpace(tc.identifier) {
			t.Errorf("UserID(%q) asked for %v, want %s = the identifier", tc.identifier, ua, tc.path)
		}
		if tc.want == "" {
			var nf *access.ErrNoIdentityUser
			if !errors.As(err, &nf) || nf.Identifier != strings.TrimSpace(tc.identifier) || !bot.IsPermanent(err) {
				t.Errorf("UserID(%q) = %q, %v; want a permanent ErrNoIdentityUser naming it", tc.identifier, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("UserID(%q) = %q, %v; want %s", tc.identifier, got, err, tc.want)
		}
	}
	if _, err := e.c.UserID(ctx, "  "); err == nil || !bot.IsPermanent(err) {
		t.Errorf("UserID of blanks: %v, want a permanent error", err)
	}
}

func TestUserIDUnknownIdentityStore(t *testing.T) {
	e := setup(t, identitycenter.Options{InstanceARN: instanceARN, IdentityStoreID: "d-9999999999"})
	_, err := e.c.UserID(context.Background(), "alice@example.com")
	var nf *access.ErrNoIdentityUser
	if err == nil || errors.As(err, &nf) || !strings.Contains(err.Error(), "d-9999999999") {
		t.Fatalf("UserID in an identity store that does not exist: %v, want an error naming the store, not a missing user", err)
	}
}

func TestGroupID(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	if got, err := e.c.GroupID(ctx, "ops oncall"); err != nil || got != e.ops {
		t.Errorf("GroupID by display name = %q, %v; want %s", got, err, e.ops)
	}
	before := len(e.f.Calls(awsfake.IdentityStoreService, "GetGroupId"))
	if got, err := e.c.GroupID(ctx, e.ops); err != nil || got != e.ops {
		t.Errorf("GroupID of an id = %q, %v", got, err)
	}
	if after := len(e.f.Calls(awsfake.IdentityStoreService, "GetGroupId")); after != before {
		t.Error("GroupID looked up an id it was given")
	}
	if _, err := e.c.GroupID(ctx, "Nobody"); err == nil || !bot.IsPermanent(err) || !strings.Contains(err.Error(), `"Nobody"`) {
		t.Errorf("GroupID of a missing group: %v, want a permanent error naming it", err)
	}
}

func TestPermissionSet(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	// More permission sets than one page holds, so that finding the last
	// one by name pages.
	for _, n := range []string{"Billing", "Network", "Support"} {
		e.ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: n})
	}
	last := e.ic.AddPermissionSet(awsfake.IDCPermissionSet{Name: "BreakGlass", SessionDuration: "PT1H30M"})
	e.ic.SetPageSize(2)
	for _, tc := range []struct {
		in       string
		name     string
		arn      string
		duration time.Duration
	}{
		{"AdministratorAccess", "AdministratorAccess", e.admin, 12 * time.Hour},
		{e.readers, "ReadOnly", e.readers, 30 * time.Minute},
		{"BreakGlass", "BreakGlass", last, 90 * time.Minute},
		{"Billing", "Billing", "", time.Hour}, // default session duration
	} {
		ps, err := e.c.PermissionSet(ctx, tc.in)
		if err != nil || ps.Name != tc.name || (tc.arn != "" && ps.ARN != tc.arn) || ps.SessionDuration != tc.duration {
			t.Errorf("PermissionSet(%q) = %+v, %v; want %s (%s) with %v", tc.in, ps, err, tc.name, tc.arn, tc.duration)
		}
	}
	if n := len(e.f.Calls(awsfake.SSOAdminService, "ListPermissionSets")); n < 3 {
		t.Errorf("%d ListPermissionSets calls; finding BreakGlass (6th of 6 at 2 a page) needs 3 pages", n)
	}
	// A name found once is described directly the next time.
	lists, describes := len(e.f.Calls(awsfake.SSOAdminService, "ListPermissionSets")), len(e.f.Calls(awsfake.SSOAdminService, "DescribePermissionSet"))
	if ps, err := e.c.PermissionSet(ctx, "BreakGlass"); err != nil || ps.ARN != last {
		t.Fatalf("PermissionSet(BreakGlass) again = %+v, %v", ps, err)
	}
	if n := len(e.f.Calls(awsfake.SSOAdminService, "ListPermissionSets")); n != lists {
		t.Errorf("looking BreakGlass up again listed permission sets (%d calls, was %d)", n, lists)
	}
	if n := len(e.f.Calls(awsfake.SSOAdminService, "DescribePermissionSet")); n != describes+1 {
		t.Errorf("looking BreakGlass up again made %d DescribePermissionSet calls, want 1", n-describes)
	}
	for _, missing := range []string{"Nope", "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-0000000000000000"} {
		if _, err := e.c.PermissionSet(ctx, missing); err == nil || !bot.IsPermanent(err) {
			t.Errorf("PermissionSet(%q): %v, want a permanent error", missing, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT1H": time.Hour, "PT12H": 12 * time.Hour, "PT30M": 30 * time.Minute, "PT1H30M": 90 * time.Minute,
		"PT45S": 45 * time.Second, "P1D": 24 * time.Hour, "P1DT2H": 26 * time.Hour,
	} {
		if got, err := identitycenter.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1H", "PT1.5H", "pt1h", "PT1H ", "P1W", "PTH"} {
		if got, err := identitycenter.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

func TestAssignAndUnassign(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pending    int
		failCreate string
		failDelete string
	}{
		{name: "succeeds at once"},
		{name: "in progress then succeeded", pending: 3},
		{name: "creation fails", pending: 1, failCreate: "Received a 403 status error: the permission set's role could not be created"},
		{name: "deletion fails", pending: 2, failDelete: "Received a 500 status error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, configured())
			ctx := context.Background()
			a := access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}
			want := awsfake.IDCAssignment{Account: account, PermissionSetARN: e.admin, PrincipalType: "USER", PrincipalID: e.alice}
			e.ic.SetPending(tc.pending)
			if tc.failCreate != "" {
				e.ic.FailNext("CreateAccountAssignment", 1, tc.failCreate)
			}
			if tc.failDelete != "" {
				e.ic.FailNext("DeleteAccountAssignment", 1, tc.failDelete)
			}

			if ok, err := e.c.Assigned(ctx, a); ok || err != nil {
				t.Fatalf("Assigned before Assign = %v, %v", ok, err)
			}
			err := e.c.Assign(ctx, a)
			if n := len(e.f.Calls(awsfake.SSOAdminService, "DescribeAccountAssignmentCreationStatus")); n != tc.pending+1 {
				t.Errorf("%d creation status calls, want %d (IN_PROGRESS %d times, then the outcome)", n, tc.pending+1, tc.pending)
			}
			if tc.failCreate != "" {
				var fe *access.AssignmentFailedError
				if !errors.As(err, &fe) || fe.Op != "create" || fe.Reason != tc.failCreate {
					t.Fatalf("Assign = %v, want AssignmentFailedError{create, %q}", err, tc.failCreate)
				}
				if e.ic.HasAssignment(want) {
					t.Error("a failed creation left an assignment")
				}
				return
			}
			if err != nil {
				t.Fatalf("Assign: %v", err)
			}
			if !e.ic.HasAssignment(want) {
				t.Fatalf("after Assign, assignments are %+v", e.ic.Assignments())
			}
			if ok, err := e.c.Assigned(ctx, a); !ok || err != nil {
				t.Fatalf("Assigned after Assign = %v, %v", ok, err)
			}

			err = e.c.Unassign(ctx, a)
			if n := len(e.f.Calls(awsfake.SSOAdminService, "DescribeAccountAssignmentDeletionStatus")); n != tc.pending+1 {
				t.Errorf("%d deletion status calls, want %d", n, tc.pending+1)
			}
			if tc.failDelete != "" {
				var fe *access.AssignmentFailedError
				if !errors.As(err, &fe) || fe.Op != "delete" || fe.Reason != tc.failDelete {
					t.Fatalf("Unassign = %v, want AssignmentFailedError{delete, %q}", err, tc.failDelete)
				}
				if !e.ic.HasAssignment(want) {
					t.Error("a failed deletion removed the assignment")
				}
				return
			}
			if err != nil || e.ic.HasAssignment(want) {
				t.Fatalf("Unassign = %v; assignments now %+v", err, e.ic.Assignments())
			}
			// Unassigning again succeeds and changes nothing.
			if err := e.c.Unassign(ctx, a); err != nil || e.ic.HasAssignment(want) {
				t.Fatalf("Unassign of a missing assignment: %v; assignments now %+v", err, e.ic.Assignments())
			}
		})
	}
}

// TestUnassignWaitsForACreationInProgress: an Assign cut short while it
// waits (the worker's run timed out) leaves a creation in progress, which
// ListAccountAssignments does not show yet. Unassign must not take the
// access for ended: it fails while the creation conflicts, and once the
// creation is done it removes the assignment.
func TestUnassignWaitsForACreationInProgress(t *testing.T) {
	e := setup(t, configured())
	a := access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}
	want := awsfake.IDCAssignment{Account: account, PermissionSetARN: e.admin, PrincipalType: "USER", PrincipalID: e.alice}
	e.ic.SetPending(1 << 30) // the creation stays in progress until Settle
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.c.Assign(ctx, a); err == nil {
		t.Fatal("Assign of a creation that never finishes succeeded")
	}
	if n := len(e.f.Calls(awsfake.SSOAdminService, "CreateAccountAssignment")); n != 1 {
		t.Fatalf("%d CreateAccountAssignment calls before the run was cut, want 1", n)
	}
	if ok, err := e.c.Assigned(context.Background(), a); ok || err != nil {
		t.Fatalf("Assigned during the creation = %v, %v; the fake should not list it yet", ok, err)
	}
	if err := e.c.Unassign(context.Background(), a); err == nil {
		t.Fatal("Unassign took an assignment still being created for gone")
	}
	e.ic.Settle()
	e.ic.SetPending(0)
	if !e.ic.HasAssignment(want) {
		t.Fatal("the creation did not finish")
	}
	if err := e.c.Unassign(context.Background(), a); err != nil || e.ic.HasAssignment(want) {
		t.Fatalf("Unassign after the creation finished = %v; assignments %+v", err, e.ic.Assignments())
	}
}

func TestAssignedPagesAndMatchesThePrincipal(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	for i := range 5 {
		e.ic.PutAssignment(awsfake.IDCAssignment{Account: account, PermissionSetARN: e.admin, PrincipalType: "USER",
			PrincipalID: e.ic.AddUser(awsfake.IDCUser{UserName: "u" + string(rune('a'+i))})})
	}
	e.ic.PutAssignment(awsfake.IDCAssignment{Account: account, PermissionSetARN: e.admin, PrincipalType: "GROUP", PrincipalID: e.bob})
	e.ic.PutAssignment(awsfake.IDCAssignment{Account: account, PermissionSetARN: e.admin, PrincipalType: "USER", PrincipalID: e.bob})
	e.ic.SetPageSize(2)
	for _, tc := range []struct {
		a    access.Assignment
		want bool
	}{
		{access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.bob}, true},
		{access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalGroup, PrincipalID: e.bob}, true},
		{access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}, false},
		{access.Assignment{Account: account, PermissionSetARN: e.readers, PrincipalType: access.PrincipalUser, PrincipalID: e.bob}, false},
		{access.Assignment{Account: "111111111111", PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.bob}, false},
	} {
		if got, err := e.c.Assigned(ctx, tc.a); err != nil || got != tc.want {
			t.Errorf("Assigned(%+v) = %v, %v; want %v", tc.a, got, err, tc.want)
		}
	}
	if n := len(e.f.Calls(awsfake.SSOAdminService, "ListAccountAssignments")); n < 4 {
		t.Errorf("%d ListAccountAssignments calls; the last of 7 assignments at 2 a page is on page 4", n)
	}
}

func TestAssignRejectsBadAssignments(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	good := access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}
	for name, mut := range map[string]func(*access.Assignment){
		"short account":   func(a *access.Assignment) { a.Account = "1234" },
		"account letters": func(a *access.Assignment) { a.Account = "12345678901x" },
		"no ARN":          func(a *access.Assignment) { a.PermissionSetARN = "AdministratorAccess" },
		"principal type":  func(a *access.Assignment) { a.PrincipalType = "ROLE" },
		"no principal":    func(a *access.Assignment) { a.PrincipalID = "" },
	} {
		a := good
		mut(&a)
		if err := e.c.Assign(ctx, a); err == nil || !bot.IsPermanent(err) {
			t.Errorf("%s: Assign = %v, want a permanent error", name, err)
		}
	}
	if n := len(e.f.Calls(awsfake.SSOAdminService, "CreateAccountAssignment")); n != 0 {
		t.Errorf("%d CreateAccountAssignment calls for invalid assignments, want none (checked before calling)", n)
	}
	// A well-formed ARN of no permission set is Identity Center's to refuse.
	a := good
	a.PermissionSetARN = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-0000000000000000"
	if err := e.c.Assign(ctx, a); err == nil || !bot.IsPermanent(err) || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("Assign of an unknown permission set = %v, want a permanent ResourceNotFoundException", err)
	}
}

func TestAssignWaitsOutAConflictingOperation(t *testing.T) {
	e := setup(t, configured())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}
	// Someone else's creation of the same assignment is in progress.
	e.ic.SetPending(1000)
	other := ssoadmin.NewFromConfig(e.f.Config(ctx))
	if _, err := other.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: aws.String(instanceARN), TargetId: aws.String(account), TargetType: ssotypes.TargetTypeAwsAccount,
		PermissionSetArn: aws.String(e.admin), PrincipalType: ssotypes.PrincipalTypeUser, PrincipalId: aws.String(e.alice),
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.c.Assign(ctx, a) }()
	if err := e.f.WaitFor(ctx, func() bool {
		for _, c := range e.f.Calls(awsfake.SSOAdminService, "CreateAccountAssignment") {
			if c.ErrorCode == "ConflictException" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	e.ic.SetPending(0)
	e.ic.Settle()
	if err := <-done; err != nil {
		t.Fatalf("Assign after the conflicting operation finished: %v", err)
	}
	if ok, err := e.c.Assigned(ctx, a); !ok || err != nil {
		t.Fatalf("Assigned = %v, %v", ok, err)
	}
}

func TestAssignConflictingWithAnExistingAssignment(t *testing.T) {
	// The assignment exists and every create conflicts: after the retries,
	// Assign checks and finds what it was asked for.
	e := setup(t, identitycenter.Options{InstanceARN: instanceARN, IdentityStoreID: storeID, ConflictRetries: 2})
	ctx := context.Background()
	a := access.Assignment{Account: account, PermissionSetARN: e.readers, PrincipalType: access.PrincipalGroup, PrincipalID: e.ops}
	e.ic.PutAssignment(awsfake.IDCAssignment{Account: account, PermissionSetARN: e.readers, PrincipalType: "GROUP", PrincipalID: e.ops})
	e.ic.SetPending(1000)
	other := ssoadmin.NewFromConfig(e.f.Config(ctx))
	if _, err := other.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: aws.String(instanceARN), TargetId: aws.String(account), TargetType: ssotypes.TargetTypeAwsAccount,
		PermissionSetArn: aws.String(e.readers), PrincipalType: ssotypes.PrincipalTypeGroup, PrincipalId: aws.String(e.ops),
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Assign(ctx, a); err != nil {
		t.Fatalf("Assign of an existing assignment under conflict: %v", err)
	}
	conflicts := 0
	for _, c := range e.f.Calls(awsfake.SSOAdminService, "CreateAccountAssignment") {
		if c.ErrorCode == "ConflictException" {
			conflicts++
		}
	}
	if conflicts != 3 {
		t.Errorf("%d conflicting creates, want 3 (the first and two retries)", conflicts)
	}

	// Without the assignment, persistent conflict is an error.
	b := access.Assignment{Account: account, PermissionSetARN: e.readers, PrincipalType: access.PrincipalUser, PrincipalID: e.bob}
	if _, err := other.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: aws.String(instanceARN), TargetId: aws.String(account), TargetType: ssotypes.TargetTypeAwsAccount,
		PermissionSetArn: aws.String(e.readers), PrincipalType: ssotypes.PrincipalTypeUser, PrincipalId: aws.String(e.bob),
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Assign(ctx, b); err == nil || !strings.Contains(err.Error(), "ConflictException") {
		t.Fatalf("Assign under persistent conflict = %v, want the ConflictException", err)
	}
}

func TestAssignGivesUpWhenContextEnds(t *testing.T) {
	e := setup(t, configured())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.ic.SetPending(1_000_000)
	a := access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}
	done := make(chan error, 1)
	go func() { done <- e.c.Assign(ctx, a) }()
	if err := e.f.WaitFor(context.Background(), func() bool {
		return len(e.f.Calls(awsfake.SSOAdminService, "DescribeAccountAssignmentCreationStatus")) >= 2
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "IN_PROGRESS") {
		t.Fatalf("Assign when ctx ends = %v, want context.Canceled saying it was still IN_PROGRESS", err)
	}
}

func TestThrottledStatusIsRetried(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	e.ic.SetPending(1)
	e.f.Fail(awsfake.SSOAdminService, "DescribeAccountAssignmentCreationStatus", 1, awsfake.Throttle)
	e.f.Fail(awsfake.SSOAdminService, "CreateAccountAssignment", 1, awsfake.Internal)
	a := access.Assignment{Account: account, PermissionSetARN: e.admin, PrincipalType: access.PrincipalUser, PrincipalID: e.alice}
	if err := e.c.Assign(ctx, a); err != nil {
		t.Fatalf("Assign with a throttled status call and a failing create: %v", err)
	}
}

func TestInstanceDiscovery(t *testing.T) {
	second := awsfake.IDCInstance{ARN: "arn:aws:sso:::instance/ssoins-2222222222222222", IdentityStoreID: "d-2222222222"}
	for _, tc := range []struct {
		name      string
		instances []awsfake.IDCInstance
		opts      identitycenter.Options
		want      identitycenter.Instance
		wantErr   string
	}{
		{name: "none", wantErr: "sees no IAM Identity Center instance"},
		{name: "the only one", instances: []awsfake.IDCInstance{second},
			want: identitycenter.Instance{ARN: second.ARN, IdentityStoreID: second.IdentityStoreID}},
		{name: "several", instances: []awsfake.IDCInstance{{}, second}, wantErr: "configure the instance ARN"},
		{name: "chosen by ARN", instances: []awsfake.IDCInstance{{}, {}, second}, opts: identitycenter.Options{InstanceARN: second.ARN},
			want: identitycenter.Instance{ARN: second.ARN, IdentityStoreID: second.IdentityStoreID}},
		{name: "chosen by store", instances: []awsfake.IDCInstance{{}, second}, opts: identitycenter.Options{IdentityStoreID: second.IdentityStoreID},
			want: identitycenter.Instance{ARN: second.ARN, IdentityStoreID: second.IdentityStoreID}},
		{name: "no match", instances: []awsfake.IDCInstance{{}}, opts: identitycenter.Options{InstanceARN: second.ARN}, wantErr: "no instance matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := awsfake.New(t)
			for _, in := range tc.instances {
				f.IdentityCenter().AddInstance(in)
			}
			f.IdentityCenter().SetPageSize(1)
			c := identitycenter.NewFromConfig(f.Config(context.Background()), tc.opts)
			got, err := c.Instance(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !bot.IsPermanent(err) {
					t.Fatalf("Instance = %+v, %v; want a permanent error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Instance = %+v, %v; want %+v", got, err, tc.want)
			}
			// Discovered once.
			calls := len(f.Calls(awsfake.SSOAdminService, "ListInstances"))
			if _, err := c.Instance(context.Background()); err != nil || len(f.Calls(awsfake.SSOAdminService, "ListInstances")) != calls {
				t.Errorf("second Instance call: %v, listed again", err)
			}
		})
	}
}

func TestGroupMembership(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	if ok, err := e.c.IsMember(ctx, e.ops, e.alice); ok || err != nil {
		t.Fatalf("IsMember before = %v, %v", ok, err)
	}
	for range 2 { // the second AddMember finds the membership and is a no-op
		if err := e.c.AddMember(ctx, e.ops, e.alice); err != nil {
			t.Fatalf("AddMember: %v", err)
		}
	}
	if !e.ic.IsMember(e.ops, e.alice) || e.ic.IsMember(e.ops, e.bob) {
		t.Fatal("AddMember did not add exactly alice")
	}
	if ok, err := e.c.IsMember(ctx, e.ops, e.alice); !ok || err != nil {
		t.Fatalf("IsMember after AddMember = %v, %v", ok, err)
	}
	for range 2 { // the second RemoveMember finds no membership
		if err := e.c.RemoveMember(ctx, e.ops, e.alice); err != nil {
			t.Fatalf("RemoveMember: %v", err)
		}
	}
	if e.ic.IsMember(e.ops, e.alice) {
		t.Fatal("RemoveMember left the membership")
	}
	if n := len(e.f.Calls(awsfake.IdentityStoreService, "DeleteGroupMembership")); n != 1 {
		t.Errorf("%d DeleteGroupMembership calls, want 1", n)
	}
	if err := e.c.AddMember(ctx, e.ops, "0000000000-00000000-0000-0000-0000-000000000000"); err == nil || !bot.IsPermanent(err) {
		t.Errorf("AddMember of an unknown user: %v, want a permanent error", err)
	}
}

// TestIAMActionsAreTheCallsMade: IAMActions, which template.yaml's worker
// policies are checked against, names every operation a full grant and
// revoke of both forms makes, and nothing else.
func TestIAMActionsAreTheCallsMade(t *testing.T) {
	e := setup(t, configured())
	ctx := context.Background()
	user, err := e.c.UserID(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := e.c.PermissionSet(ctx, "ReadOnly")
	if err != nil {
		t.Fatal(err)
	}
	a := access.Assignment{Account: account, PermissionSetARN: ps.ARN, PrincipalType: access.PrincipalUser, PrincipalID: user}
	e.ic.SetPending(1)
	if ok, err := e.c.Assigned(ctx, a); ok || err != nil { // activation looks first
		t.Fatalf("Assigned = %v, %v", ok, err)
	}
	if err := e.c.Assign(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Unassign(ctx, a); err != nil {
		t.Fatal(err)
	}
	group, err := e.c.GroupID(ctx, "Ops Oncall")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.AddMember(ctx, group, user); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveMember(ctx, group, user); err != nil {
		t.Fatal(err)
	}
	called := map[string]bool{}
	for _, c := range e.f.Calls(awsfake.SSOAdminService, "") {
		called["sso:"+c.Operation] = true
	}
	for _, c := range e.f.Calls(awsfake.IdentityStoreService, "") {
		called["identitystore:"+c.Operation] = true
	}
	for _, a := range identitycenter.IAMActions() {
		if !called[a] {
			t.Errorf("IAMActions names %s, which the Client did not call", a)
		}
		delete(called, a)
	}
	for a := range called {
		t.Errorf("the Client called %s, which IAMActions does not name", a)
	}
}

// TestThroughTheEnvironment: the SDK finds the fake through
// AWS_ENDPOINT_URL_SSO_ADMIN and AWS_ENDPOINT_URL_IDENTITYSTORE, as a
// process configured only by its environment (tokken serve, the Lambda
// tests) does.
func TestThroughTheEnvironment(t *testing.T) {
	f := awsfake.New(t)
	in := f.IdentityCenter().AddInstance(awsfake.IDCInstance{})
	alice := f.IdentityCenter().AddUser(awsfake.IDCUser{UserName: "alice", Email: "alice@example.com"})
	f.Setenv(t)
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := identitycenter.NewFromConfig(cfg, identitycenter.Options{})
	if got, err := c.Instance(ctx); err != nil || got.ARN != in.ARN {
		t.Fatalf("Instance = %+v, %v", got, err)
	}
	if got, err := c.UserID(ctx, "alice@example.com"); err != nil || got != alice {
		t.Fatalf("UserID = %q, %v", got, err)
	}
}
