package awsgrant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
)

// revokedIDs lists the request ids the role's revocation policy names.
func revokedIDs(t *testing.T, f *awsfake.Fake) []string {
	t.Helper()
	doc, ok := f.IAM().RolePolicy(roleName, awsgrant.RevokedPolicyName)
	if !ok {
		return nil
	}
	var pol struct {
		Statement []struct {
			Sid       string
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil {
		t.Fatalf("revocation policy: %v\n%s", err, doc)
	}
	var ids []string
	for _, st := range pol.Statement {
		pats, _ := st.Condition["StringLike"]["aws:userid"].([]any)
		for _, p := range pats {
			ids = append(ids, strings.TrimPrefix(p.(string), "*:"))
		}
	}
	return ids
}

// userID is the aws:userid of the role session issued for a grant.
func userID(t *testing.T, f *awsfake.Fake, c access.Credentials) string {
	t.Helper()
	a, ok := f.STS().Issued(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	if !ok {
		t.Fatal("credentials not issued by the fake STS")
	}
	return a.AssumedRoleID
}

func TestRevoke(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const foreign = `{"Sid":"KeepMe","Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}`
	w.f.IAM().SetRolePolicy(roleName, awsgrant.RevokedPolicyName, `{"Version":"2012-10-17","Statement":[`+foreign+`]}`)

	a := request("r-aaaaaaaaaaaa", access.KindSTS)
	_, credsA := w.issue(t, a, 30*time.Minute)
	_, credsA2 := w.issue(t, a, 30*time.Minute) // a re-issue: same session name
	b := request("r-bbbbbbbbbbbb", access.KindSTS)
	_, credsB := w.issue(t, b, 30*time.Minute)

	if err := w.g.Revoke(ctx, w.grant(a, 30*time.Minute)); err != nil {
		t.Fatalf("Revoke a: %v", err)
	}
	now := w.clock.Now()
	for name, c := range map[string]access.Credentials{"a": credsA, "a re-issued": credsA2} {
		if denied, err := w.f.IAM().Denies(roleName, userID(t, w.f, c), now); err != nil || !denied {
			t.Errorf("%s's credentials not denied after Revoke: %v, %v", name, denied, err)
		}
	}
	if denied, err := w.f.IAM().Denies(roleName, userID(t, w.f, credsB), now); err != nil || denied {
		t.Errorf("b's credentials denied by a's revocation: %v, %v", denied, err)
	}
	// Denied until an hour past the window end, not forever.
	if denied, _ := w.f.IAM().Denies(roleName, userID(t, w.f, credsA), now.Add(30*time.Minute+time.Hour-time.Second)); !denied {
		t.Error("a's deny lapses before its credentials can have expired")
	}
	if denied, _ := w.f.IAM().Denies(roleName, userID(t, w.f, credsA), now.Add(3*time.Hour)); denied {
		t.Error("a's deny still holds hours after any of its credentials expired")
	}

	// Idempotent: revoking again writes nothing.
	puts := len(w.f.Calls(awsfake.IAMService, "PutRolePolicy"))
	if err := w.g.Revoke(ctx, w.grant(a, 30*time.Minute)); err != nil {
		t.Fatalf("Revoke a again: %v", err)
	}
	if n := len(w.f.Calls(awsfake.IAMService, "PutRolePolicy")); n != puts {
		t.Errorf("second Revoke of a made %d PutRolePolicy calls", n-puts)
	}

	// Merge: b joins a.
	if err := w.g.Revoke(ctx, w.grant(b, 30*time.Minute)); err != nil {
		t.Fatalf("Revoke b: %v", err)
	}
	if got := revokedIDs(t, w.f); strings.Join(got, ",") != "r-aaaaaaaaaaaa,r-bbbbbbbbbbbb" {
		t.Errorf("revoked ids after merge = %v", got)
	}

	// Prune: three hours later a and b protect nothing; c's revocation
	// drops them and keeps the statement tokken does not manage.
	w.clock.Advance(3 * time.Hour)
	c := request("r-cccccccccccc", access.KindSTS)
	w.issue(t, c, 10*time.Minute)
	if err := w.g.Revoke(ctx, w.grant(c, 10*time.Minute)); err != nil {
		t.Fatalf("Revoke c: %v", err)
	}
	if got := revokedIDs(t, w.f); strings.Join(got, ",") != "r-cccccccccccc" {
		t.Errorf("revoked ids after prune = %v, want only r-cccccccccccc", got)
	}
	doc, _ := w.f.IAM().RolePolicy(roleName, awsgrant.RevokedPolicyName)
	if !strings.Contains(doc, foreign) {
		t.Errorf("foreign statement lost: %s", doc)
	}
}

func TestRevokeNothingToDo(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cases := []struct {
		name string
		gr   access.Grant
	}{
		{"issue never ran", access.Grant{RequestID: "r-aaaaaaaaaaaa"}},
		{"role deleted since", access.Grant{RequestID: "r-aaaaaaaaaaaa", RoleARN: "arn:aws:iam::" + awsfake.AccountID + ":role/deleted"}},
	}
	for _, tc := range cases {
		if err := w.g.Revoke(ctx, tc.gr); err != nil {
			t.Errorf("%s: Revoke = %v, want nil", tc.name, err)
		}
	}
}

func TestRevokeRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cases := []struct {
		name string
		gr   access.Grant
		want string
	}{
		{"cross-account role", access.Grant{RequestID: "r-aaaaaaaaaaaa", RoleARN: "arn:aws:iam::210987654321:role/prod-ssm"}, "account 210987654321"},
		{"not a role ARN", access.Grant{RequestID: "r-aaaaaaaaaaaa", RoleARN: "arn:aws:iam::123456789012:user/x"}, "not an IAM role ARN"},
		{"wildcard in request id", access.Grant{RequestID: "r-*", RoleARN: roleARN}, "not a role session name"},
	}
	for _, tc := range cases {
		err := w.g.Revoke(ctx, tc.gr)
		if err == nil || !bot.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Revoke = %v, want a permanent error mentioning %q", tc.name, err, tc.want)
		}
	}
	if n := len(w.f.Calls(awsfake.IAMService, "PutRolePolicy")); n != 0 {
		t.Errorf("refused revocations wrote %d policies", n)
	}
}

func TestRevokeSizeLimit(t *testing.T) {
	w := newWorld(t)
	until := w.clock.Now().Add(2 * time.Hour).Truncate(time.Hour).UTC()
	var pats []string
	for i := range 560 {
		pats = append(pats, fmt.Sprintf(`"*:r-%012d"`, i))
	}
	w.f.IAM().SetRolePolicy(roleName, awsgrant.RevokedPolicyName, `{"Version":"2012-10-17","Statement":[{"Sid":"TokkenRevokedUntil`+
		until.Format("2006010215")+`","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":[`+
		strings.Join(pats, ",")+`]},"DateLessThan":{"aws:CurrentTime":"`+until.Format(time.RFC3339)+`"}}}]}`)
	err := w.g.Revoke(context.Background(), w.grant(request("r-zzzzzzzzzzzz", access.KindSTS), time.Minute))
	if err == nil || !strings.Contains(err.Error(), "over IAM's 10240") {
		t.Fatalf("Revoke into a full policy = %v, want the size error", err)
	}
}

// TestRevokeConcurrentWriter simulates another process that read the policy
// before this Revoke wrote it and writes its own version right after: the
// read-back must notice the lost entry and merge again.
func TestRevokeConcurrentWriter(t *testing.T) {
	w := newWorld(t)
	const theirs = `{"Version":"2012-10-17","Statement":[{"Sid":"TokkenRevokedUntil2026030413","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:userid":["*:r-theirs000000"]},"DateLessThan":{"aws:CurrentTime":"2026-03-04T13:00:00Z"}}}]}`
	var once sync.Once
	proxy := interceptor(t, w.f, nil, func(req *http.Request, body []byte) {
		if form, _ := url.ParseQuery(string(body)); form.Get("Action") == "PutRolePolicy" {
			once.Do(func() { w.f.IAM().SetRolePolicy(roleName, awsgrant.RevokedPolicyName, theirs) })
		}
	})
	g := awsgrant.New(configVia(t, w.f, map[string]string{"IAM": proxy}), w.opts)
	if err := g.Revoke(context.Background(), w.grant(request("r-mine00000000", access.KindSTS), 30*time.Minute)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := len(w.f.Calls(awsfake.IAMService, "PutRolePolicy")); n != 2 {
		t.Errorf("PutRolePolicy calls = %d, want 2 (write, lost, merge again)", n)
	}
	if got := strings.Join(revokedIDs(t, w.f), ","); got != "r-mine00000000,r-theirs000000" {
		t.Errorf("revoked ids = %s, want both writers' entries", got)
	}
}
