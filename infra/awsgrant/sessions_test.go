package awsgrant_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
)

// startSessions opens n SSM sessions with creds (as the requester would,
// through the real SSM API) spread over targets, and returns their ids.
func startSessions(t *testing.T, f *awsfake.Fake, creds access.Credentials, n int, targets ...string) []string {
	t.Helper()
	ctx := context.Background()
	c := ssm.NewFromConfig(f.ConfigFor(ctx, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken))
	var ids []string
	for i := range n {
		out, err := c.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(targets[i%len(targets)])})
		if err != nil {
			t.Fatalf("StartSession: %v", err)
		}
		ids = append(ids, aws.ToString(out.SessionId))
	}
	return ids
}

func activeIDs(f *awsfake.Fake) []string {
	var ids []string
	for _, s := range f.SSM().ActiveSessions() {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestTerminateSessions(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := request("r-7k3q9x0m2c4d", access.KindSSM, web1, web2)
	_, creds := w.issue(t, r, 30*time.Minute)
	mine := startSessions(t, w.f, creds, 3, web1, web2)

	// Sessions that are not the grant's: another user's on the same
	// instance, and another grant's on the same role.
	other := w.f.SSM().OpenSession(web1, "arn:aws:sts::"+awsfake.AccountID+":assumed-role/prod-ssm/r-000000000000")
	user := w.f.SSM().OpenSession(web2, "arn:aws:iam::"+awsfake.AccountID+":user/alice")

	ended, err := w.g.TerminateSessions(ctx, w.grant(r, 30*time.Minute))
	if err != nil {
		t.Fatalf("TerminateSessions: %v", err)
	}
	// Each ended session comes back with its id and the instance it was
	// on, for the audit trail.
	var wantEnded []access.Session
	for i, id := range mine {
		wantEnded = append(wantEnded, access.Session{ID: id, Target: []string{web1, web2}[i%2]})
	}
	slices.SortFunc(wantEnded, func(a, b access.Session) int { return strings.Compare(a.ID, b.ID) })
	if !slices.Equal(ended, wantEnded) {
		t.Errorf("TerminateSessions ended %v, want %v", ended, wantEnded)
	}
	want := []string{other, user}
	slices.Sort(want)
	if got := activeIDs(w.f); !slices.Equal(got, want) {
		t.Errorf("active after = %v, want only the others' %v (grant's were %v)", got, want, mine)
	}
	// Every DescribeSessions asked for Active sessions of the grant's
	// identity only.
	owner := "arn:aws:sts::" + awsfake.AccountID + ":assumed-role/prod-ssm/" + r.ID
	for _, c := range w.f.Calls(awsfake.SSMService, "DescribeSessions") {
		b, _ := json.Marshal(c.Params["Filters"])
		if c.Param("State") != "Active" || !strings.Contains(string(b), owner) {
			t.Errorf("DescribeSessions params %v, want State Active and Owner %s", c.Params, owner)
		}
	}

	// Idempotent: nothing left is 0, nil.
	if ended, err := w.g.TerminateSessions(ctx, w.grant(r, 30*time.Minute)); err != nil || len(ended) != 0 {
		t.Errorf("second TerminateSessions = %v, %v; want none, nil", ended, err)
	}
	// A grant that never got a role has no sessions and makes no call.
	before := len(w.f.Calls(awsfake.SSMService, ""))
	if ended, err := w.g.TerminateSessions(ctx, access.Grant{RequestID: "r-111111111111"}); err != nil || len(ended) != 0 {
		t.Errorf("TerminateSessions without a role = %v, %v", ended, err)
	}
	if after := len(w.f.Calls(awsfake.SSMService, "")); after != before {
		t.Errorf("TerminateSessions without a role made %d SSM calls", after-before)
	}
}

func TestTerminateSessionsPaginates(t *testing.T) {
	w := newWorld(t)
	r := request("r-7k3q9x0m2c4d", access.KindSSM, web1)
	owner := "arn:aws:sts::" + awsfake.AccountID + ":assumed-role/prod-ssm/" + r.ID
	for range 205 { // more than one DescribeSessions page of 200
		w.f.SSM().OpenSession(web1, owner)
	}
	ended, err := w.g.TerminateSessions(context.Background(), w.grant(r, time.Hour))
	if err != nil || len(ended) != 205 {
		t.Fatalf("TerminateSessions = %d sessions, %v; want 205, nil", len(ended), err)
	}
	if got := activeIDs(w.f); len(got) != 0 {
		t.Errorf("%d sessions left active", len(got))
	}
	pages := 0
	for _, c := range w.f.Calls(awsfake.SSMService, "DescribeSessions") {
		if c.Param("NextToken") != "" {
			pages++
		}
	}
	if pages == 0 {
		t.Error("no DescribeSessions call followed a NextToken")
	}
}

// TestTerminateSessionsConfirms puts a lying SSM in front of the fake: its
// TerminateSession reports success for one session without ending it, as
// SSM does for ids it does not act on. The confirmation listing must catch
// it.
func TestTerminateSessionsConfirms(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r := request("r-7k3q9x0m2c4d", access.KindSSM, web1, web2)
	_, creds := w.issue(t, r, 30*time.Minute)
	ids := startSessions(t, w.f, creds, 3, web1, web2)
	stuck := ids[1]

	proxy := interceptor(t, w.f, func(rw http.ResponseWriter, req *http.Request, body []byte) bool {
		if req.Header.Get("X-Amz-Target") != "AmazonSSM.TerminateSession" || !strings.Contains(string(body), stuck) {
			return false
		}
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = rw.Write([]byte(`{"SessionId":"` + stuck + `"}`))
		return true
	}, nil)
	opts := w.opts
	opts.Now, opts.ConfirmWait = time.Now, 600*time.Millisecond
	g := awsgrant.New(configVia(t, w.f, map[string]string{"SSM": proxy}), opts)

	ended, err := g.TerminateSessions(ctx, w.grant(r, 30*time.Minute))
	if err == nil || !strings.Contains(err.Error(), stuck) {
		t.Fatalf("TerminateSessions = %v, %v; want an error naming %s", ended, err, stuck)
	}
	if len(ended) != 2 || slices.ContainsFunc(ended, func(s access.Session) bool { return s.ID == stuck }) {
		t.Errorf("ended %v, want the 2 sessions confirmed ended, not %s", ended, stuck)
	}
	if got := activeIDs(w.f); !slices.Equal(got, []string{stuck}) {
		t.Errorf("active = %v, want only %s", got, stuck)
	}
}
