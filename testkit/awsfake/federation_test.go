package awsfake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tokken/tokken/testkit/awsfake"
)

// session is the getSigninToken Session parameter.
func session(id, key, token string) string {
	b, _ := json.Marshal(map[string]string{"sessionId": id, "sessionKey": key, "sessionToken": token})
	return string(b)
}

// fedGet calls the fake federation endpoint without following redirects and
// returns the status, the body and the Location header.
func fedGet(t *testing.T, f *awsfake.Fake, q url.Values) (int, string, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(f.FederationURL() + "?" + q.Encode())
	if err != nil {
		t.Fatalf("GET federation: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

func TestFederation(t *testing.T) {
	f := awsfake.New(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	f.SetNow(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	ctx := context.Background()
	out, err := sts.NewFromConfig(f.Config(ctx)).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::123456789012:role/admin"), RoleSessionName: aws.String("r-1"),
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatal(err)
	}
	id, key, tok := aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)
	if a, ok := f.STS().Issued(id, key, tok); !ok || a.RoleSessionName != "r-1" {
		t.Fatalf("STS().Issued does not recognise the credentials AssumeRole returned: %+v %v", a, ok)
	}
	if _, ok := f.STS().Issued(id, key+"x", tok); ok {
		t.Fatal("STS().Issued accepted a wrong secret")
	}

	signin := func(sess, dur string) url.Values {
		q := url.Values{"Action": {"getSigninToken"}, "Session": {sess}}
		if dur != "" {
			q.Set("SessionDuration", dur)
		}
		return q
	}
	refusals := []struct {
		name string
		q    url.Values
	}{
		{"made-up credentials", signin(session("ASIAMADEUP", key, tok), "900")},
		{"wrong secret", signin(session(id, "nope", tok), "900")},
		{"missing token", signin(session(id, key, ""), "900")},
		{"not JSON", signin("{", "900")},
		{"duration too short", signin(session(id, key, tok), "899")},
		{"chained over an hour", signin(session(id, key, tok), "3601")},
		{"unknown action", url.Values{"Action": {"logout"}}},
		{"login with unknown token", url.Values{"Action": {"login"}, "SigninToken": {"nope"}, "Destination": {"https://console.aws.amazon.com/"}}},
	}
	for _, tc := range refusals {
		if code, body, _ := fedGet(t, f, tc.q); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s, want 400", tc.name, code, body)
		}
	}

	code, body, _ := fedGet(t, f, signin(session(id, key, tok), "3600"))
	if code != http.StatusOK {
		t.Fatalf("getSigninToken: HTTP %d %s", code, body)
	}
	var st struct{ SigninToken string }
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.SigninToken == "" {
		t.Fatalf("getSigninToken body %q: %v", body, err)
	}
	for _, c := range f.Calls(awsfake.FederationService, "") {
		if s := fmt.Sprint(c.Params); strings.Contains(s, key) || strings.Contains(s, tok) {
			t.Errorf("recorded federation call holds the secret or token: %v", c.Params)
		}
	}

	login := url.Values{"Action": {"login"}, "Issuer": {"tokken"}, "SigninToken": {st.SigninToken},
		"Destination": {"https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"}}
	bad := url.Values{"Action": {"login"}, "SigninToken": {st.SigninToken}, "Destination": {"javascript:alert(1)"}}
	if code, body, _ := fedGet(t, f, bad); code != http.StatusBadRequest {
		t.Errorf("login to a non-console destination: HTTP %d %s", code, body)
	}
	code, body, loc := fedGet(t, f, login)
	if code != http.StatusFound || loc != login.Get("Destination") {
		t.Fatalf("login: HTTP %d Location %q body %s", code, loc, body)
	}
	logins := f.Federation().Logins()
	if len(logins) != 1 || logins[0].AccessKeyID != id || logins[0].SessionDuration != 3600 ||
		logins[0].AssumedRoleARN != "arn:aws:sts::123456789012:assumed-role/admin/r-1" || logins[0].Issuer != "tokken" {
		t.Errorf("Logins = %+v", logins)
	}

	advance(awsfake.SigninTokenLifetime)
	if code, _, _ := fedGet(t, f, login); code != http.StatusBadRequest {
		t.Errorf("login with a token %s old: HTTP %d, want 400", awsfake.SigninTokenLifetime, code)
	}
	advance(time.Minute) // past the credentials' 900 s
	if code, _, _ := fedGet(t, f, signin(session(id, key, tok), "")); code != http.StatusBadRequest {
		t.Errorf("getSigninToken with expired credentials: HTTP %d, want 400", code)
	}
}

func TestFederationFaults(t *testing.T) {
	f := awsfake.New(t)
	f.Fail(awsfake.FederationService, "getSigninToken", 1, awsfake.Throttle)
	f.Fail(awsfake.FederationService, "getSigninToken", 1, awsfake.Internal)
	q := url.Values{"Action": {"getSigninToken"}, "Session": {session("a", "b", "c")}}
	for _, want := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadRequest} {
		if code, body, _ := fedGet(t, f, q); code != want {
			t.Errorf("HTTP %d %s, want %d", code, body, want)
		}
	}
	// The AWS API router still serves everything else on the same server.
	if _, err := sts.NewFromConfig(f.Config(context.Background())).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("GetCallerIdentity next to the federation endpoint: %v", err)
	}
}
