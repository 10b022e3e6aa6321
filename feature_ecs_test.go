package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestECSIndexWiring: with an ecs-exec profile in the policy directory,
// the worker's sweep indexes the profile's cluster through ECS, and the
// ingress answers the modal's ECS selects from the store without an AWS
// call.
func TestECSIndexWiring(t *testing.T) {
	const task = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	entries, err := os.ReadDir("policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("policies", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "profiles.yaml" {
			b = append(b, "\n  staging-exec:\n    kind: ecs-exec\n    role_arn: arn:aws:iam::222222222222:role/exec\n    ecs: {cluster: staging}\n    max_duration: 1h\n"...)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sl := slackfake.New(t)
	fake := awsfake.New(t)
	fake.Setenv(t)
	fake.ECS().PutService(awsfake.ECSSvc{Cluster: "staging", Name: "web", EnableExecuteCommand: true, ManagedTags: true})
	fake.ECS().PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: task, Service: "web", Family: "web", LastStatus: "RUNNING", EnableExecuteCommand: true})
	db := filepath.Join(t.TempDir(), "tokken.db")
	ctx := context.Background()
	build := func(role string) *app {
		t.Helper()
		vars := map[string]string{
			"TOKKEN_ROLE": role, "TOKKEN_STORE": "bolt:" + db, "TOKKEN_POLICY_DIR": dir,
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

	w := build("worker")
	if err := w.jobs.HandleJob(ctx, bot.Job{ID: "sweep/1", Kind: JobSweep}); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	w.close(ctx)
	if len(fake.Calls(awsfake.ECSService, "ListServices")) == 0 || len(fake.Calls(awsfake.ECSService, "DescribeTasks")) == 0 {
		t.Fatal("the worker's sweep did not read the ECS cluster")
	}

	in := build("ingress")
	defer in.close(ctx)
	srv := httptest.NewServer(in.http)
	defer srv.Close()
	before := len(fake.Calls("", ""))
	st := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
		"profile": {"access:profile": {SelectedOption: slack.OptionBlockObject{Value: "staging-exec"}}},
	}}
	for block, want := range map[string]string{"ecs_service": `"web"`, "ecs_task": task} {
		req, _ := sl.Interaction(t, srv.URL+"/slack/options", slack.InteractionCallback{
			Type: slack.InteractionTypeBlockSuggestion, User: slack.User{ID: "U0SRE00001"}, ActionID: "access:" + block, BlockID: block,
			View: slack.View{ID: "V1", CallbackID: accessui.CallbackRequest, State: st},
		})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("%s options: %d %s", block, resp.StatusCode, body)
		}
	}
	if calls := fake.Calls("", ""); len(calls) != before {
		t.Errorf("the ingress answered the ECS selects with %d AWS calls", len(calls)-before)
	}
}
