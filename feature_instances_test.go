package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/instindex"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestInstanceIndexWiring builds tokken per role over one store with EC2
// played by awsfake: the roles that run jobs register the refresh, the
// worker's sweep fills the index, and the ingress answers the instance
// select from it without a single AWS call.
func TestInstanceIndexWiring(t *testing.T) {
	const web = "i-0123456789abcdef0"
	sl := slackfake.New(t)
	fake := awsfake.New(t)
	fake.Setenv(t) // EC2 is reachable: a call the ingress made would succeed and be recorded
	fake.EC2().AddInstance(awsfake.Instance{ID: web, Name: "web-01", Tags: map[string]string{"Env": "prod"}})
	db := filepath.Join(t.TempDir(), "tokken.db")
	ctx := context.Background()
	build := func(role string) *app {
		t.Helper()
		vars := map[string]string{
			"TOKKEN_ROLE": role, "TOKKEN_STORE": "bolt:" + db, "TOKKEN_POLICY_DIR": "policies",
			"SLACK_SIGNING_SECRET": sl.SigningSecret(), "SLACK_BOT_TOKEN": sl.Token(), "SLACK_API_URL": sl.APIURL(),
		}
		cfg, err := config.Load(func(k string) string { return vars[k] }, "")
		if err != nil {
			t.Fatal(err)
		}
		a, err := buildApp(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("build %s: %v", role, err)
		}
		return a
	}

	for _, role := range []string{"ingress", "worker", "all"} {
		a := build(role)
		if got, want := slices.Contains(a.jobs.Kinds(), JobInstancesRefresh), role != "ingress"; got != want {
			t.Errorf("role %s: %s registered = %v, want %v", role, JobInstancesRefresh, got, want)
		}
		a.close(ctx)
	}
	if n := len(fake.Calls(awsfake.EC2Service, "")); n != 0 {
		t.Fatalf("building tokken made %d EC2 calls; the start-up refresh is the sweep's (serve) or a queued job's (Lambda)", n)
	}

	w := build("worker")
	if err := w.jobs.HandleJob(ctx, bot.Job{ID: "sweep/1", Kind: JobSweep}); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	w.close(ctx)
	if len(fake.Calls(awsfake.EC2Service, "DescribeInstances")) == 0 {
		t.Fatal("the worker's sweep did not list the instances")
	}

	in := build("ingress")
	defer in.close(ctx)
	srv := httptest.NewServer(in.http)
	defer srv.Close()
	before := len(fake.Calls("", ""))
	req, _ := sl.Interaction(t, srv.URL+"/slack/options", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockSuggestion, User: slack.User{ID: "U0ONCALL01"}, ActionID: "access:targets", BlockID: "targets",
		Value: "WEB", View: slack.View{ID: "V1", CallbackID: accessui.CallbackRequest},
	})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), web) || !strings.Contains(string(body), "web-01") {
		t.Fatalf("options: %d %s", resp.StatusCode, body)
	}
	if calls := fake.Calls("", ""); len(calls) != before {
		t.Errorf("the ingress answered the instance select with %d AWS calls (%s ...)", len(calls)-before, calls[before].Operation)
	}
}

// TestLambdaWorkerQueuesStartupRefresh builds tokken as a Lambda worker
// would start (the in-process queue standing in for SQS) and checks that
// the refresh it queues while starting fills the index.
func TestLambdaWorkerQueuesStartupRefresh(t *testing.T) {
	sl := slackfake.New(t)
	fake := awsfake.New(t)
	fake.Setenv(t)
	fake.EC2().AddInstance(awsfake.Instance{ID: "i-0123456789abcdef0", Name: "web-01"})
	vars := map[string]string{
		"TOKKEN_ROLE": "worker", "TOKKEN_STORE": "bolt:" + filepath.Join(t.TempDir(), "tokken.db"), "TOKKEN_POLICY_DIR": "policies",
		"SLACK_BOT_TOKEN": sl.Token(), "SLACK_API_URL": sl.APIURL(),
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Lambda = true
	ctx := context.Background()
	a, err := buildApp(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close(ctx)
	a.start()
	idle, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.local.Idle(idle); err != nil {
		t.Fatal(err)
	}
	got, err := instindex.Search(ctx, a.store, "web", 0)
	if err != nil || len(got) != 1 || got[0].ID != "i-0123456789abcdef0" {
		t.Fatalf("index after the start-up refresh: %v, %v", got, err)
	}
}
