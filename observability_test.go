package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/metrics"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// emfLine is the part of an EMF document the tests check.
type emfLine struct {
	AWS struct {
		Timestamp         int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
	Function   string
	Route      string
	AckLatency json.RawMessage `json:"ack_latency"`
}

// ackLatencies decodes the EMF lines in out and returns the ack latencies
// (ms) recorded for route, checking each line's namespace, function
// dimension and unit on the way.
func ackLatencies(t *testing.T, out, function, route string) []float64 {
	t.Helper()
	var got []float64
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, `"_aws"`) {
			continue
		}
		var e emfLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("EMF line does not decode: %v\n%s", err, l)
		}
		if len(e.AWS.CloudWatchMetrics) != 1 || e.AWS.CloudWatchMetrics[0].Namespace != MetricsNamespace || e.AWS.Timestamp == 0 {
			t.Fatalf("EMF metadata: %s", l)
		}
		if e.Function != function {
			t.Errorf("EMF Function = %q, want %q: %s", e.Function, function, l)
		}
		if e.Route != route || e.AckLatency == nil {
			continue
		}
		declared := false
		for _, m := range e.AWS.CloudWatchMetrics[0].Metrics {
			declared = declared || m.Name == metrics.AckLatency && m.Unit == string(metrics.UnitMilliseconds)
		}
		if !declared {
			t.Errorf("ack_latency present but not declared in milliseconds: %s", l)
		}
		var one float64
		var many []float64
		switch {
		case json.Unmarshal(e.AckLatency, &one) == nil:
			got = append(got, one)
		case json.Unmarshal(e.AckLatency, &many) == nil:
			got = append(got, many...)
		default:
			t.Fatalf("ack_latency is neither a number nor an array: %s", l)
		}
	}
	return got
}

// TestLambdaHelperProcess is not a test: it is the Lambda function process
// runLambdaChild starts (the os/exec helper process idiom), because
// lambda.Start never returns.
func TestLambdaHelperProcess(t *testing.T) {
	if os.Getenv("TOKKEN_TEST_LAMBDA_CHILD") != "1" {
		t.Skip("helper process for runLambdaChild")
	}
	os.Exit(run(context.Background(), nil, env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

// signedCommandEvent is a Function URL event carrying a /access help
// command signed with secret.
func signedCommandEvent(t *testing.T, secret, responseURL string) []byte {
	t.Helper()
	form := "token=x&team_id=" + slackfake.TeamID + "&channel_id=C1&user_id=U1&command=%2Faccess&text=help&response_url=" + responseURL + "&trigger_id=1.2.3"
	ts := time.Now().Unix()
	raw, err := json.Marshal(events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/slack/commands",
		Headers: map[string]string{
			"content-type":              "application/x-www-form-urlencoded",
			"x-slack-request-timestamp": fmt.Sprint(ts),
			"x-slack-signature":         slacksig.Sign([]byte(secret), ts, []byte(form)),
		},
		Body: form,
		RequestContext: events.LambdaFunctionURLRequestContext{
			RequestID: "lambda-req-1", DomainName: "abcdef.lambda-url.ap-northeast-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/slack/commands", SourceIP: "198.51.100.7"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLambdaInvocationEmitsAckLatency runs tokken as a Lambda ingress
// function against a fake Runtime API (Slack credentials from the fake
// Secrets Manager, jobs to the fake SQS, as deployed) and checks that one
// signed Function URL invocation is answered and leaves, before the
// response is posted, an EMF line on stdout with its ack latency; and that
// the log lines carry the request id and the Lambda request id.
func TestLambdaInvocationEmitsAckLatency(t *testing.T) {
	slackFake := slackfake.New(t)
	aws := awsfake.New(t)
	queueURL, _ := aws.SQS().CreateQueue("tokken-jobs")
	secretARN := aws.SecretsManager().Put("tokken-slack", fmt.Sprintf(`{"SLACK_SIGNING_SECRET":%q,"SLACK_BOT_TOKEN":%q}`, slackFake.SigningSecret(), slackFake.Token()))

	environ := map[string]string{
		"TOKKEN_ROLE":        "ingress",
		"TOKKEN_STORE":       "dynamodb:tokken",
		"TOKKEN_QUEUE_URL":   queueURL,
		"TOKKEN_SECRETS_ARN": secretARN,
		"SLACK_API_URL":      slackFake.APIURL(),
		"TOKKEN_POLICY_DIR":  "policies",
	}
	maps.Copy(environ, aws.Env())
	rt := &scriptedRuntime{done: make(chan string, 4), events: [][]byte{
		signedCommandEvent(t, slackFake.SigningSecret(), slackFake.ResponseURL("R1")),
	}}
	reports, stdout, stderr := runLambdaChild(t, environ, rt)
	body, ok := strings.CutPrefix(reports[0], "response 0: ")
	if !ok {
		t.Fatalf("the function reported %s\nstderr:\n%s", reports[0], stderr)
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("invocation response %q: %v", body, err)
	}

	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "/access") || resp.Headers["x-request-id"] != "lambda-req-1" {
		t.Errorf("invocation answered %+v", resp)
	}
	lat := ackLatencies(t, stdout, "ingress", "commands")
	if len(lat) != 1 {
		t.Fatalf("want one ack latency for /slack/commands on stdout, got %v\nstdout:\n%s", lat, stdout)
	}
	if lat[0] <= 0 || lat[0] >= 3000 {
		t.Errorf("ack latency %v ms, want within Slack's 3 s", lat[0])
	}

	var sawRequest bool
	for _, l := range strings.Split(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "http request" {
			continue
		}
		sawRequest = true
		if m["request_id"] != "lambda-req-1" || m["aws_request_id"] != "inv-0" {
			t.Errorf("access log line without request ids: %s", l)
		}
		if strings.Count(l, `"request_id"`) != 1 {
			t.Errorf("request_id repeated: %s", l)
		}
	}
	if !sawRequest {
		t.Errorf("no access log line\nstderr:\n%s", stderr)
	}
}

// testEnv is an env for in-process runs: variables from vars only, no .env.
func testEnv(vars map[string]string, stdout, stderr io.Writer) env {
	return env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}
}

func TestInvokeWritesMetricsToStderr(t *testing.T) {
	slackFake := slackfake.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "event.json")
	if err := os.WriteFile(path, signedCommandEvent(t, slackFake.SigningSecret(), slackFake.ResponseURL("R1")), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"SLACK_SIGNING_SECRET": slackFake.SigningSecret(), "SLACK_BOT_TOKEN": slackFake.Token(),
		"SLACK_API_URL": slackFake.APIURL(), "TOKKEN_STORE": "bolt:" + filepath.Join(dir, "tokken.db"),
		"TOKKEN_POLICY_DIR": "policies",
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"invoke", path}, testEnv(vars, &stdout, &stderr)); code != exitOK {
		t.Fatalf("invoke exit %d\n%s", code, stderr.String())
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stdout is not the invocation result alone (%v): %s", err, stdout.String())
	}
	if lat := ackLatencies(t, stderr.String(), "all", "commands"); len(lat) != 1 {
		t.Errorf("want one ack latency on stderr, got %v\n%s", lat, stderr.String())
	}
}

// TestServeFlushesMetricsOnShutdown answers one signed command under
// `serve` and checks that the shutdown flush writes its ack latency to
// stdout (the periodic flush is metrics.Recorder.Run's, tested there).
func TestServeFlushesMetricsOnShutdown(t *testing.T) {
	slackFake := slackfake.New(t)
	dir := t.TempDir()
	vars := map[string]string{
		"SLACK_SIGNING_SECRET": slackFake.SigningSecret(), "SLACK_BOT_TOKEN": slackFake.Token(),
		"SLACK_API_URL": slackFake.APIURL(), "TOKKEN_STORE": "bolt:" + filepath.Join(dir, "tokken.db"),
		"TOKKEN_POLICY_DIR": "policies", "TOKKEN_ADDR": "127.0.0.1:0",
	}
	var stdout, stderr logbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	e := testEnv(vars, &stdout, &stderr)
	e.ready = func(addr string) { ready <- addr }
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, e) }()

	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("serve exited %d\n%s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	req, _ := slackFake.SlashCommand(t, "http://"+addr+"/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U1", ChannelID: "C1"})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/access help: %d", res.StatusCode)
	}
	if lat := ackLatencies(t, stdout.String(), "all", "commands"); len(lat) != 0 {
		t.Fatalf("metrics flushed before the interval or shutdown: %v", lat)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exit %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if lat := ackLatencies(t, stdout.String(), "all", "commands"); len(lat) != 1 {
		t.Errorf("want one ack latency after shutdown, got %v\nstdout:\n%s", lat, stdout.String())
	}
}

// TestJobLogsCarryJobAndRequestIDs runs a job through the app's in-process
// queue and checks that a line its handler logs with its context carries
// the job id, kind and access request id (infra/logctx wired in buildApp).
func TestJobLogsCarryJobAndRequestIDs(t *testing.T) {
	dir := t.TempDir()
	slackFake := slackfake.New(t)
	vars := map[string]string{
		// A Slack that answers: a process serving Slack asks it (auth.test)
		// which team it is installed in before it starts.
		"SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5", "SLACK_BOT_TOKEN": slackFake.Token(), "SLACK_API_URL": slackFake.APIURL(),
		"TOKKEN_STORE": "bolt:" + filepath.Join(dir, "tokken.db"), "TOKKEN_POLICY_DIR": "policies",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	var logs logbuf.Buffer
	log := newLogger(cfg, &logs)
	ctx := context.Background()
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	a.jobs.Handle("test.log", func(ctx context.Context, j bot.Job) error {
		a.log.InfoContext(ctx, "test job ran")
		return nil
	})
	a.start()
	job, _ := bot.NewJob("test/r-7k3q9x0m2c4d", "test.log", map[string]string{"request_id": "r-7k3q9x0m2c4d"})
	if err := a.queue.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	idle, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.local.Idle(idle); err != nil {
		t.Fatal(err)
	}
	a.close(ctx)
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "test job ran" {
			continue
		}
		if m["job_id"] != job.ID || m["job_kind"] != "test.log" || m["access_request_id"] != "r-7k3q9x0m2c4d" {
			t.Errorf("job log line without its ids: %s", l)
		}
		return
	}
	t.Fatalf("the job's log line is missing:\n%s", logs.String())
}

func TestMeasureAck(t *testing.T) {
	tests := []struct {
		path, route string // route "" = not measured
	}{
		{"/slack/commands", "commands"},
		{"/slack/interactions", "interactions"},
		{"/slack/options", "options"},
		{"/slack/events", "events"},
		{"/healthz", ""},
		{"/webhooks/mackerel", ""},
		{"/slack/commands/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var out bytes.Buffer
			rec := metrics.New(&out, MetricsNamespace, map[string]string{"Function": "ingress"})
			h := measureAck(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(2 * time.Millisecond) // a handler that takes measurable time
				w.WriteHeader(http.StatusTeapot)
			}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, tt.path, nil))
			if w.Code != http.StatusTeapot {
				t.Fatalf("status %d: the wrapped handler's answer was changed", w.Code)
			}
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
			if tt.route == "" {
				if out.Len() != 0 {
					t.Fatalf("%s measured: %s", tt.path, out.String())
				}
				return
			}
			lat := ackLatencies(t, out.String(), "ingress", tt.route)
			if len(lat) != 1 || lat[0] < 2 {
				t.Fatalf("latencies %v for %s, want one ≥ 2 ms:\n%s", lat, tt.path, out.String())
			}
		})
	}
}
