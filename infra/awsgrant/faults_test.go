package awsgrant_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
)

// TestFaultsAreRetried injects a throttle and then a server error into each
// call the Granter makes; the call must succeed on the third attempt, through
// the SDK retryer (or, for the federation endpoint, the Granter's own use of
// it).
func TestFaultsAreRetried(t *testing.T) {
	type run func(t *testing.T, w *world, g *awsgrant.Granter) error
	issue := func(t *testing.T, w *world, g *awsgrant.Granter) error {
		now := w.clock.Now()
		spec, err := access.NewGrantSpec(request("r-aaaaaaaaaaaa", access.KindSSM, web1), now.Add(time.Hour), now, "aws")
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.Issue(context.Background(), spec)
		return err
	}
	terminate := func(t *testing.T, w *world, g *awsgrant.Granter) error {
		r := request("r-aaaaaaaaaaaa", access.KindSSM, web1)
		w.f.SSM().OpenSession(web1, "arn:aws:sts::"+awsfake.AccountID+":assumed-role/prod-ssm/"+r.ID)
		ended, err := g.TerminateSessions(context.Background(), w.grant(r, time.Hour))
		if err == nil && len(ended) != 1 {
			t.Errorf("terminated %v, want 1 session", ended)
		}
		return err
	}
	revoke := func(t *testing.T, w *world, g *awsgrant.Granter) error {
		return g.Revoke(context.Background(), w.grant(request("r-aaaaaaaaaaaa", access.KindSTS), time.Hour))
	}
	signin := func(t *testing.T, w *world, g *awsgrant.Granter) error {
		_, creds := w.issue(t, request("r-bbbbbbbbbbbb", access.KindSTS), time.Hour)
		_, err := g.SigninURL(context.Background(), creds, access.KindSTS)
		return err
	}
	cases := []struct {
		service, op string
		run         run
	}{
		{awsfake.STSService, "AssumeRole", issue},
		{awsfake.SSMService, "DescribeSessions", terminate},
		{awsfake.SSMService, "TerminateSession", terminate},
		{awsfake.STSService, "GetCallerIdentity", revoke},
		{awsfake.IAMService, "GetRolePolicy", revoke},
		{awsfake.IAMService, "PutRolePolicy", revoke},
		{awsfake.FederationService, "getSigninToken", signin},
	}
	for _, tc := range cases {
		t.Run(tc.service+"/"+tc.op, func(t *testing.T) {
			w := newWorld(t)
			w.f.Fail(tc.service, tc.op, 1, awsfake.Throttle)
			w.f.Fail(tc.service, tc.op, 1, awsfake.Internal)
			if err := tc.run(t, w, w.g); err != nil {
				t.Fatalf("%s after a throttle and a server error: %v", tc.op, err)
			}
			calls := w.f.Calls(tc.service, tc.op)
			if len(calls) < 3 || calls[0].ErrorCode == "" || calls[1].ErrorCode == "" ||
				calls[2].ErrorCode == calls[0].ErrorCode || calls[2].ErrorCode == calls[1].ErrorCode {
				var codes []string
				for _, c := range calls {
					codes = append(codes, c.ErrorCode)
				}
				t.Errorf("%s attempts = %q, want throttled, failed, then answered", tc.op, codes)
			}
		})
	}
}
