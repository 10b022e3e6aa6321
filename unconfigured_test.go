package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// scriptedRuntime is the Lambda Runtime API handing out events one by one;
// it records each answer (or error) and refuses the poll after the last,
// so the runtime client exits.
type scriptedRuntime struct {
	events [][]byte
	mu     sync.Mutex
	next   int
	done   chan string // "response <n>: body" or "error <path>: body", one per report
}

func (f *scriptedRuntime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const base = "/2018-06-01/runtime/"
	b, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base+"invocation/next":
		f.mu.Lock()
		n := f.next
		f.next++
		f.mu.Unlock()
		if n >= len(f.events) {
			http.Error(w, "test over", http.StatusGone)
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprint("inv-", n))
		w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(30*time.Second).UnixMilli()))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:ap-northeast-1:123456789012:function:tokken")
		_, _ = w.Write(f.events[n])
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/response"):
		f.done <- "response " + strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/response"), base+"invocation/inv-") + ": " + string(b)
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost:
		f.done <- "error " + r.URL.Path + ": " + string(b)
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// templatePlaceholder is the secret value template.yaml creates.
func templatePlaceholder(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+SecretString: '(.*)'$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("template.yaml: no SecretString for the Slack secret")
	}
	return string(m[1])
}

// runLambdaChild runs tokken as a Lambda function (TestLambdaHelperProcess)
// with environ over the runtime rt, and returns each invocation's report
// and the function's stdout and stderr once the runtime client exits.
func runLambdaChild(t *testing.T, environ map[string]string, rt *scriptedRuntime) (reports []string, stdout, stderr string) {
	t.Helper()
	srv := httptest.NewServer(rt)
	defer srv.Close()
	environ = maps.Clone(environ)
	environ["PATH"], environ["HOME"] = os.Getenv("PATH"), t.TempDir()
	environ["TOKKEN_TEST_LAMBDA_CHILD"] = "1"
	environ["AWS_LAMBDA_RUNTIME_API"] = strings.TrimPrefix(srv.URL, "http://")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLambdaHelperProcess$", "-test.count=1")
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timeout := time.After(60 * time.Second)
	for len(reports) < len(rt.events) {
		select {
		case r := <-rt.done:
			reports = append(reports, r)
		case err := <-exited:
			t.Fatalf("the function exited after %d of %d invocations: %v\nreports: %q\nstderr:\n%s", len(reports), len(rt.events), err, reports, errOut.String())
		case <-timeout:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("no answer to invocation %d\nstderr:\n%s", len(reports), errOut.String())
		}
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return reports, out.String(), errOut.String()
}

func sqsBatch(t *testing.T, bodies map[string]string) []byte {
	t.Helper()
	var ev events.SQSEvent
	for id, body := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, Body: body, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:ap-northeast-1:123456789012:tokken-jobs", Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLambdaWithPlaceholderSecret deploys as `sam deploy` leaves the stack
// before the operator fills in the Slack secret: both functions start
// (no init error), say once that the secret is not filled in yet, and
// answer without failing. The worker acknowledges the 5-minute sweep, as
// Scheduler sends it through SQS or directly, so nothing is retried into
// the dead-letter queue; a real job is left on the queue, never dropped.
// The ingress tells a Slack user that tokken is not set up yet.
func TestLambdaWithPlaceholderSecret(t *testing.T) {
	aws := awsfake.New(t)
	queueURL, _ := aws.SQS().CreateQueue("tokken-jobs")
	secretARN := aws.SecretsManager().Put("tokken-slack", templatePlaceholder(t))
	base := map[string]string{
		"TOKKEN_STORE": "dynamodb:tokken", "TOKKEN_QUEUE_URL": queueURL, "TOKKEN_SECRETS_ARN": secretARN,
		"TOKKEN_POLICY_DIR": "policies", "SLACK_API_URL": "http://127.0.0.1:9/api/",
	}
	maps.Copy(base, aws.Env())

	t.Run("worker", func(t *testing.T) {
		environ := maps.Clone(base)
		maps.Copy(environ, map[string]string{
			"TOKKEN_ROLE": "worker", "TOKKEN_QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:tokken-jobs",
			"TOKKEN_SCHEDULER_GROUP": "tokken", "TOKKEN_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/tokken-scheduler",
			"TOKKEN_PROTECTED_ARNS": "arn:aws:sqs:us-east-1:123456789012:tokken-jobs",
		})
		sweep := `{"id":"sweep","kind":"sweep"}` // template.yaml's SweepSchedule input
		rt := &scriptedRuntime{done: make(chan string, 8), events: [][]byte{
			sqsBatch(t, map[string]string{"m-sweep": sweep}),
			sqsBatch(t, map[string]string{"m-sweep-2": sweep, "m-expire": `{"id":"expire/r-7k3q9x0m2c4d/1","kind":"access.expire"}`}),
			[]byte(sweep),
		}}
		reports, _, stderr := runLambdaChild(t, environ, rt)
		want := []string{
			`response 0: {"batchItemFailures":[]}`,
			`response 1: {"batchItemFailures":[{"itemIdentifier":"m-expire"}]}`,
			`response 2: null`,
		}
		if strings.Join(reports, "\n") != strings.Join(want, "\n") {
			t.Errorf("invocations answered\n%s\nwant\n%s\nstderr:\n%s", strings.Join(reports, "\n"), strings.Join(want, "\n"), stderr)
		}
		checkSaidOnce(t, stderr)
	})

	t.Run("ingress", func(t *testing.T) {
		environ := maps.Clone(base)
		environ["TOKKEN_ROLE"] = "ingress"
		health, err := json.Marshal(events.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/healthz",
			RequestContext: events.LambdaFunctionURLRequestContext{DomainName: "abcdef.lambda-url.ap-northeast-1.on.aws",
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "GET", Path: "/healthz"}}})
		if err != nil {
			t.Fatal(err)
		}
		rt := &scriptedRuntime{done: make(chan string, 8), events: [][]byte{
			signedCommandEvent(t, slackfake.DefaultSigningSecret, "https://hooks.slack.com/commands/T1/1/x"),
			health,
		}}
		reports, _, stderr := runLambdaChild(t, environ, rt)
		if len(reports) != 2 {
			t.Fatalf("reports %q", reports)
		}
		var cmd, hz events.LambdaFunctionURLResponse
		for i, dst := range []*events.LambdaFunctionURLResponse{&cmd, &hz} {
			body, ok := strings.CutPrefix(reports[i], fmt.Sprintf("response %d: ", i))
			if !ok || json.Unmarshal([]byte(body), dst) != nil {
				t.Fatalf("invocation %d: %s\nstderr:\n%s", i, reports[i], stderr)
			}
		}
		if cmd.StatusCode != http.StatusOK || !strings.Contains(cmd.Body, "not set up yet") || !strings.Contains(cmd.Body, `"response_type":"ephemeral"`) {
			t.Errorf("/access answered %+v", cmd)
		}
		if hz.StatusCode != http.StatusServiceUnavailable || !strings.Contains(hz.Body, "placeholder") {
			t.Errorf("/healthz answered %+v", hz)
		}
		checkSaidOnce(t, stderr)
	})
}

// checkSaidOnce: the function said at start, in one ERROR line, that the
// secret is not filled in yet, naming the variable and the guide.
func checkSaidOnce(t *testing.T, stderr string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "not filled in yet") && !strings.Contains(l, "job left on the queue") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"ERROR"`) || !strings.Contains(lines[0], "SLACK_SIGNING_SECRET") || !strings.Contains(lines[0], "docs/deploy.md") {
		t.Errorf("want one ERROR line saying the secret is not filled in yet, got %d:\n%s", len(lines), stderr)
	}
}

// TestUnconfiguredStartsOnceTheSecretIsFilledIn: a worker waiting for its
// secret reads it again and, once the Slack credentials are there, runs
// jobs as usual, without a new deployment.
func TestUnconfiguredStartsOnceTheSecretIsFilledIn(t *testing.T) {
	aws := awsfake.New(t)
	for k, v := range aws.Env() {
		t.Setenv(k, v)
	}
	fake := slackfake.New(t)
	queueURL, _ := aws.SQS().CreateQueue("tokken-jobs")
	secretARN := aws.SecretsManager().Put("tokken-slack", templatePlaceholder(t))
	vars := map[string]string{
		"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "TOKKEN_ROLE": "ingress",
		"TOKKEN_STORE": "dynamodb:tokken", "TOKKEN_QUEUE_URL": queueURL, "TOKKEN_SECRETS_ARN": secretARN,
		"TOKKEN_POLICY_DIR": "policies", "SLACK_API_URL": fake.APIURL(),
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	var logs, metricsOut logbuf.Buffer
	log := newLogger(cfg, &logs)
	_, err = buildApp(context.Background(), cfg, log, metricsTo(&metricsOut))
	if !errors.Is(err, config.ErrSecretNotFilledIn) {
		t.Fatalf("buildApp with the placeholder: %v", err)
	}
	u := newUnconfigured(cfg, log, &metricsOut, err)
	u.recheck = 0
	t.Cleanup(func() {
		if u.app != nil {
			u.app.close(context.Background())
		}
	})
	ctx := context.Background()
	event := signedCommandEvent(t, fake.SigningSecret(), fake.ResponseURL("R1"))
	out, err := u.invoke(ctx, event)
	if r, ok := out.(events.LambdaFunctionURLResponse); err != nil || !ok || !strings.Contains(r.Body, "not set up yet") {
		t.Fatalf("before: %+v, %v", out, err)
	}

	aws.SecretsManager().Put("tokken-slack", fmt.Sprintf(`{"SLACK_SIGNING_SECRET":%q,"SLACK_BOT_TOKEN":%q}`, fake.SigningSecret(), fake.Token()))
	out, err = u.invoke(ctx, signedCommandEvent(t, fake.SigningSecret(), fake.ResponseURL("R2")))
	r, ok := out.(events.LambdaFunctionURLResponse)
	if err != nil || !ok || r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "/access") || strings.Contains(r.Body, "not set up yet") {
		t.Fatalf("after the secret was filled in: %+v, %v\n%s", out, err, logs.String())
	}
	if !strings.Contains(logs.String(), "the Slack secret is filled in: tokken lambda ready") {
		t.Errorf("no line saying tokken now runs:\n%s", logs.String())
	}
}
