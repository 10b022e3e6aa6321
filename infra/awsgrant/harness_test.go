package awsgrant_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/testkit/awsfake"
)

const (
	roleARN  = "arn:aws:iam::" + awsfake.AccountID + ":role/prod-ssm"
	roleName = "prod-ssm"
	// boundaryARN is tokken's permissions boundary in the fake account (the
	// default the Granter requires when Options.Boundary is empty).
	boundaryARN = "arn:aws:iam::" + awsfake.AccountID + ":policy/tokken-grant-boundary"
	web1        = "i-0123456789abcdef0"
	web2        = "i-0fedcba9876543210"
)

// clock is a settable clock shared by the fake and the Granter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// world is a fake AWS with the grant role and two instances, and a Granter
// pointed at it.
type world struct {
	f     *awsfake.Fake
	clock *clock
	opts  awsgrant.Options
	g     *awsgrant.Granter
}

func newWorld(t *testing.T) *world {
	t.Helper()
	f := awsfake.New(t)
	c := &clock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
	f.SetNow(c.Now)
	f.IAM().AddRole(roleARN)
	f.IAM().SetPermissionsBoundary(roleName, boundaryARN)
	f.EC2().AddInstance(awsfake.Instance{ID: web1, Name: "web-01"})
	f.EC2().AddInstance(awsfake.Instance{ID: web2, Name: "web-02"})
	w := &world{f: f, clock: c, opts: awsgrant.Options{
		FederationURL: f.FederationURL(), Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
	w.g = awsgrant.New(f.Config(context.Background()), w.opts)
	return w
}

// request is an approved request for the grant role.
func request(id string, kind access.Kind, targets ...string) *access.Request {
	r := &access.Request{ID: id, Requester: "U0REQUESTER", Profile: "prod", Kind: kind, RoleARN: roleARN}
	for _, t := range targets {
		r.Targets = append(r.Targets, bot.Target{ID: t})
	}
	return r
}

// issue issues r's grant for a window of d from the world's now.
func (w *world) issue(t *testing.T, r *access.Request, d time.Duration) (access.GrantSpec, access.Credentials) {
	t.Helper()
	now := w.clock.Now()
	spec, err := access.NewGrantSpec(r, now.Add(d), now, "aws")
	if err != nil {
		t.Fatalf("NewGrantSpec: %v", err)
	}
	c, err := w.g.Issue(context.Background(), spec)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return spec, c
}

// grant is the Grant of r with a window of d from the world's now.
func (w *world) grant(r *access.Request, d time.Duration) access.Grant {
	gr := r.Grant()
	gr.Window = access.Window{ActivatedAt: w.clock.Now(), ExpiresAt: w.clock.Now().Add(d)}
	return gr
}

// configVia builds an AWS config for the fake in which the services named
// in via (SDK ids) go through the given endpoint instead.
func configVia(t *testing.T, f *awsfake.Fake, via map[string]string) aws.Config {
	t.Helper()
	opts := []awsconfig.Option{
		awsconfig.WithRegion(awsfake.Region),
		awsconfig.WithCredentials(credentials.NewStaticCredentialsProvider(awsfake.AccessKeyID, awsfake.SecretAccessKey, "")),
		awsconfig.WithMaxBackoff(5 * time.Millisecond),
	}
	for _, id := range []string{"STS", "SSM", "IAM", "EC2"} {
		u := f.URL()
		if v, ok := via[id]; ok {
			u = v
		}
		opts = append(opts, awsconfig.WithServiceEndpoint(id, u))
	}
	cfg, err := awsconfig.Load(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// interceptor is a reverse proxy to the fake that lets hook answer a
// request itself (returning true) or see the response of a forwarded one
// (after is called once the fake has answered, before the client sees it).
func interceptor(t *testing.T, f *awsfake.Fake, hook func(w http.ResponseWriter, r *http.Request, body []byte) bool, after func(r *http.Request, body []byte)) string {
	t.Helper()
	target, err := url.Parse(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if hook != nil && hook(w, r, body) {
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if after != nil {
			after(r, body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
