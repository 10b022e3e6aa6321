package awsgrant_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
)

func TestIssue(t *testing.T) {
	cases := []struct {
		name        string
		kind        access.Kind
		targets     []string
		window      time.Duration
		wantSeconds int
		wantDest    string
	}{
		{"5 minute ssm grant gets STS's 900 s minimum", access.KindSSM, []string{web1, web2}, 5 * time.Minute, 900,
			"https://us-east-1.console.aws.amazon.com/systems-manager/session-manager?region=us-east-1"},
		{"2 hour sts grant is capped at 3600 s", access.KindSTS, nil, 2 * time.Hour, 3600,
			"https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"},
		{"40 minute grant gets exactly its window", access.KindSTS, nil, 40 * time.Minute, 2400,
			"https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			r := request("r-7k3q9x0m2c4d", tc.kind, tc.targets...)
			spec, creds := w.issue(t, r, tc.window)

			got := w.f.STS().AssumedRoles()
			if len(got) != 1 {
				t.Fatalf("AssumeRole calls = %d, want 1", len(got))
			}
			a := got[0]
			if a.RoleARN != roleARN || a.RoleSessionName != r.ID || a.SourceIdentity != r.Requester ||
				a.DurationSeconds != tc.wantSeconds || a.Policy != spec.SessionPolicy || len(a.PolicyARNs) != 0 ||
				len(a.Tags) != 2 || a.Tags["tokken:request"] != r.ID || a.Tags["tokken:requester"] != r.Requester {
				t.Errorf("AssumeRole sent %+v\nwant role %s, session %s, source %s, %d s, tags request/requester, policy %s",
					a, roleARN, r.ID, r.Requester, tc.wantSeconds, spec.SessionPolicy)
			}
			// The session policy on the wire ends access at the window end.
			var pol struct{ Statement []json.RawMessage }
			if err := json.Unmarshal([]byte(a.Policy), &pol); err != nil || len(pol.Statement) == 0 {
				t.Fatalf("session policy on the wire: %v %s", err, a.Policy)
			}
			end := w.clock.Now().Add(tc.window).UTC().Format(time.RFC3339)
			if last := string(pol.Statement[len(pol.Statement)-1]); !strings.Contains(last, `"Deny"`) || !strings.Contains(last, end) {
				t.Errorf("last statement %s does not deny after %s", last, end)
			}
			for _, id := range tc.targets {
				if !strings.Contains(a.Policy, "instance/"+id) {
					t.Errorf("ssm session policy does not name %s: %s", id, a.Policy)
				}
			}

			// Real credentials from STS, with their real expiry.
			if _, ok := w.f.STS().Issued(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken); !ok {
				t.Error("Issue returned credentials the fake STS did not issue")
			}
			if !creds.Expiration.Equal(a.Expiration) {
				t.Errorf("Expiration = %s, want %s", creds.Expiration, a.Expiration)
			}

			// Issue made a console link that signs in.
			link := creds.ConsoleURL
			u, err := url.Parse(link)
			if err != nil || !strings.HasPrefix(link, w.f.FederationURL()+"?") {
				t.Fatalf("link %q is not on the federation endpoint: %v", link, err)
			}
			q := u.Query()
			if q.Get("Action") != "login" || q.Get("Issuer") != awsgrant.DefaultIssuer || q.Get("Destination") != tc.wantDest || q.Get("SigninToken") == "" {
				t.Errorf("login query = %v", q)
			}
			if strings.Contains(link, creds.SecretAccessKey) || strings.Contains(link, creds.SessionToken) {
				t.Error("the login link carries the credentials themselves")
			}
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noRedirect.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.wantDest {
				t.Fatalf("following the link: HTTP %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			logins := w.f.Federation().Logins()
			if len(logins) != 1 || logins[0].AccessKeyID != creds.AccessKeyID || logins[0].SessionDuration != tc.wantSeconds {
				t.Errorf("Logins = %+v, want one with %s and SessionDuration %d", logins, creds.AccessKeyID, tc.wantSeconds)
			}
		})
	}
}

func TestIssueWithoutFederationStillGrants(t *testing.T) {
	w := newWorld(t)
	w.f.Fail(awsfake.FederationService, "getSigninToken", 100, awsfake.Internal)
	_, creds := w.issue(t, request("r-cccccccccccc", access.KindSTS), time.Hour)
	if _, ok := w.f.STS().Issued(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken); !ok {
		t.Fatal("no working credentials while the federation endpoint is down")
	}
	if creds.ConsoleURL != "" {
		t.Fatalf("ConsoleURL = %q, want empty when the federation endpoint fails", creds.ConsoleURL)
	}
}

func TestIssueRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	now := w.clock.Now()
	good, err := access.NewGrantSpec(request("r-aaaaaaaaaaaa", access.KindSTS), now.Add(time.Hour), now, "aws")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(*access.GrantSpec)
		want string
	}{
		{"no session policy", func(s *access.GrantSpec) { s.SessionPolicy = "" }, "without a session policy"},
		{"no role", func(s *access.GrantSpec) { s.Profile.RoleARN = "" }, "no role ARN"},
		{"malformed role ARN (refused before STS)", func(s *access.GrantSpec) { s.Profile.RoleARN = "arn:aws:iam::1:role/x" }, "is not an IAM role ARN"},
		{"duration over the chaining cap", func(s *access.GrantSpec) { s.DurationSeconds = 7200 }, "role chaining"},
	}
	for _, tc := range cases {
		spec := good
		tc.edit(&spec)
		_, err := w.g.Issue(ctx, spec)
		if err == nil || !bot.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v (permanent %v), want a permanent error mentioning %q", tc.name, err, bot.IsPermanent(err), tc.want)
		}
	}
}

func TestSigninURLErrorsNameTheStepOnly(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, creds := w.issue(t, request("r-bbbbbbbbbbbb", access.KindSTS), time.Hour)
	secretish := []string{creds.SecretAccessKey, creds.SessionToken, url.QueryEscape(creds.SessionToken), "Session=", "sessionKey"}
	check := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		for _, s := range secretish {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q leaks %q", name, err, s)
			}
		}
		if !strings.Contains(err.Error(), "console sign-in") {
			t.Errorf("%s: error %q does not name the step", name, err)
		}
	}

	before := len(w.f.Calls(awsfake.FederationService, "getSigninToken")) // Issue made the console link already
	w.f.Fail(awsfake.FederationService, "getSigninToken", awsconfig.DefaultMaxAttempts, awsfake.Internal)
	_, err := w.g.SigninURL(ctx, creds, access.KindSTS)
	check("federation keeps failing", err)
	if n := len(w.f.Calls(awsfake.FederationService, "getSigninToken")) - before; n != awsconfig.DefaultMaxAttempts {
		t.Errorf("getSigninToken attempts = %d, want %d", n, awsconfig.DefaultMaxAttempts)
	}

	unreachable := awsgrant.New(w.f.Config(ctx), awsgrant.Options{FederationURL: "http://127.0.0.1:1/federation", Now: w.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, err = unreachable.SigninURL(ctx, creds, access.KindSTS)
	check("federation unreachable", err)

	forged := creds
	forged.SecretAccessKey = "forged"
	_, err = w.g.SigninURL(ctx, forged, access.KindSTS)
	check("credentials the endpoint refuses", err)

	w.clock.Advance(time.Hour)
	_, err = w.g.SigninURL(ctx, creds, access.KindSTS)
	check("expired credentials", err)
	if !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired credentials: error %q does not say so", err)
	}
}
