package e2e

// The IngressFunction as SAM deploys it: the artifact the Makefile's
// build-IngressFunction builds (the ingress build, -tags ingress), started
// against a Lambda Runtime API with the template's environment, beside
// the worker of lambda_test.go on the same table and queue.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/lambdart"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// The ingress's own AWS identity, so that its calls can be told from the
// worker's.
const (
	ingressKey    = "ASIAFAKEINGRESS00001"
	ingressCaller = "arn:aws:sts::222222222222:assumed-role/tokken-ingress/tokken-ingress"
)

// ingressArtifact builds the IngressFunction's artifact once, as `sam
// build` does (make build-IngressFunction), for this machine, beside the
// binary TestMain builds (and removes).
var ingressArtifact = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(filepath.Dir(binary), "ingress")
	cmd := exec.Command("make", "--no-print-directory", "-C", "..", "build-IngressFunction", "LAMBDA_ARCH="+runtime.GOARCH, "ARTIFACTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return filepath.Join(dir, "bootstrap"), nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string {
	return "make build-IngressFunction: " + e.err.Error() + "\n" + e.out
}

// ingressFunction is one started IngressFunction.
type ingressFunction struct {
	t    *testing.T
	rt   *lambdart.Server
	logs *logbuf.Buffer
}

// startIngress starts the IngressFunction's artifact with the environment
// template.yaml gives it (TOKKEN_ROLE=ingress, or as extra says), on w's
// table and job queue, its Slack credentials in Secrets Manager. It returns once
// the function polls for its first invocation; with wantInitError it waits
// for the init to fail instead (the process exits, as Lambda sees a
// configuration error) and returns the function's output.
func (w *lambdaWorld) startIngress(t *testing.T, wantInitError bool, extra ...string) (*ingressFunction, string) {
	t.Helper()
	bin, err := ingressArtifact()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := json.Marshal(map[string]string{"SLACK_SIGNING_SECRET": w.slack.SigningSecret(), "SLACK_BOT_TOKEN": w.slack.Token()})
	must(t, err)
	w.aws.STS().AddCaller(ingressKey, ingressCaller)
	f := &ingressFunction{t: t, rt: lambdart.New(), logs: &logbuf.Buffer{}}
	srv := httptest.NewServer(f.rt)
	t.Cleanup(srv.Close)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=tokken-IngressFunction",
		"TOKKEN_ROLE=ingress",
		"TOKKEN_STORE=dynamodb:tokken",
		"TOKKEN_QUEUE_URL=" + w.queue,
		"TOKKEN_SECRETS_ARN=" + w.aws.SecretsManager().Put("tokken/slack", string(secret)),
		"TOKKEN_POLICY_DIR=" + policyDir,
		"TOKKEN_DOMAIN_CHANNEL=" + domainChannel,
		"TOKKEN_AUDIT_CHANNEL=" + auditChannel,
		"SLACK_API_URL=" + w.slack.APIURL(),
	}
	for k, v := range w.aws.Env() {
		env = append(env, k+"="+v)
	}
	env = append(env, "AWS_ACCESS_KEY_ID="+ingressKey, awsconfig.EndpointEnvVar("DynamoDB")+"="+w.ddb.Endpoint())
	env = append(env, extra...)
	cmd := exec.Command(bin)
	cmd.Env, cmd.Dir = env, filepath.Dir(bin) // the task root, as on Lambda
	cmd.Stdout, cmd.Stderr = f.logs, f.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("ingress logs:\n%s", f.logs.String())
		}
	})
	select {
	case <-f.rt.FirstPoll():
		if wantInitError {
			t.Fatalf("the ingress started with %v\n%s", extra, f.logs.String())
		}
		return f, ""
	case ie := <-f.rt.InitErrors():
		t.Fatalf("the ingress failed to start: %s %s\n%s", ie.ErrorType, ie.Body, f.logs.String())
	case <-exited:
		if !wantInitError {
			t.Fatalf("the ingress exited: %v\n%s", exitErr, f.logs.String())
		}
		return f, f.logs.String()
	case <-time.After(waitLong):
		t.Fatalf("the ingress did not start\n%s", f.logs.String())
	}
	return nil, ""
}

// invoke hands the function a signed Slack request as the Function URL
// delivers it, and returns the answer.
func (f *ingressFunction) invoke(req *http.Request) events.LambdaFunctionURLResponse {
	f.t.Helper()
	body, err := io.ReadAll(req.Body)
	must(f.t, err)
	headers := map[string]string{}
	for k := range req.Header {
		headers[strings.ToLower(k)] = req.Header.Get(k)
	}
	ev := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: req.URL.Path, Headers: headers, Body: string(body),
		RequestContext: events.LambdaFunctionURLRequestContext{
			RequestID: "ingress-e2e", DomainName: "abcdef.lambda-url." + awsfake.Region + ".on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: req.Method, Path: req.URL.Path, SourceIP: "198.51.100.7"},
		},
	}
	payload, err := json.Marshal(ev)
	must(f.t, err)
	res, err := f.rt.Invoke(context.Background(), payload, 10*time.Second) // template.yaml: Timeout 10
	must(f.t, err)
	if res.Error {
		f.t.Fatalf("the ingress failed: %s %s", res.ErrorType, res.Body)
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(res.Body, &resp); err != nil {
		f.t.Fatalf("Function URL response %q: %v", res.Body, err)
	}
	return resp
}

// TestLambdaIngressArtifact: the IngressFunction's artifact answers a
// signed /access command as deployed and leaves the request's check to
// the worker, which DMs the credentials: the whole flow crosses the two
// functions over the table and the queue. The ingress calls no AWS service
// but its secret, the queue and the table; handed a job it refuses it.
func TestLambdaIngressArtifact(t *testing.T) {
	t.Parallel()
	w := newLambdaWorld(t, lambdaOptions{})
	in, _ := w.startIngress(t, false)

	req, _ := w.slack.SlashCommand(t, "https://abcdef.lambda-url."+awsfake.Region+".on.aws/slack/commands",
		slack.SlashCommand{Command: "/access", Text: "staging-admin 1h try the migration", UserID: developer, ChannelID: stagingChannel})
	resp := in.invoke(req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "Checking your request for *staging-admin*") {
		t.Fatalf("/access answered %d %q", resp.StatusCode, resp.Body)
	}
	w.waitSlack("credentials", func(f *slackfake.Fake) bool { return hasText(f.DMs(developer), "export AWS_SECRET_ACCESS_KEY") })

	// Worker work sent to the ingress is refused, not done.
	job, err := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-1", Body: `{"id":"sweep/1","kind":"sweep"}`, EventSource: "aws:sqs"}}})
	must(t, err)
	res, err := in.rt.Invoke(context.Background(), job, 10*time.Second)
	must(t, err)
	if !res.Error || !strings.Contains(string(res.Body), "accepts only HTTP requests") {
		t.Errorf("an SQS batch sent to the ingress: error %v, %s", res.Error, res.Body)
	}

	var ops []string
	for _, c := range w.aws.Calls("", "") {
		if c.Caller == ingressCaller {
			ops = append(ops, c.Service+":"+c.Operation)
		}
	}
	for _, op := range ops {
		if op != "secretsmanager:GetSecretValue" && op != "sqs:SendMessage" {
			t.Errorf("the ingress called %s; it reads its secret, sends jobs and uses the table, nothing else (calls: %v)", op, ops)
		}
	}
	if len(ops) < 2 {
		t.Errorf("the ingress's AWS calls %v: want its secret read and the request's job sent", ops)
	}
}

// TestLambdaIngressBuildIsTheIngress: the IngressFunction's artifact is the
// ingress build and runs as nothing else: deployed as the worker, with the
// worker's configuration, it fails its init, saying which build runs every
// role. build-WorkerFunction builds
// the full build.
func TestLambdaIngressBuildIsTheIngress(t *testing.T) {
	t.Parallel()
	bin, err := ingressArtifact()
	if err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, info)
	}
	if !strings.Contains(string(info), "-tags=lambda.norpc,ingress") {
		t.Errorf("build-IngressFunction did not build with -tags lambda.norpc,ingress:\n%s", info)
	}
	dry, err := exec.Command("make", "--no-print-directory", "-n", "-C", "..", "build-WorkerFunction").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build-WorkerFunction: %v\n%s", err, dry)
	}
	if !strings.Contains(string(dry), "go build") || strings.Contains(string(dry), "ingress") {
		t.Errorf("build-WorkerFunction must build the full build, without the ingress tag:\n%s", dry)
	}

	// The worker's whole configuration (template.yaml), so that only the
	// build is wrong.
	w := newLambdaWorld(t, lambdaOptions{})
	_, why := w.startIngress(t, true, "TOKKEN_ROLE=worker",
		"TOKKEN_QUEUE_ARN=arn:aws:sqs:"+awsfake.Region+":222222222222:"+lambdaJobs,
		"TOKKEN_SCHEDULER_GROUP="+lambdaTimers, "TOKKEN_SCHEDULER_ROLE_ARN="+lambdaSchedRole,
		"TOKKEN_PROTECTED_ARNS=arn:aws:dynamodb:"+awsfake.Region+":222222222222:table/tokken")
	if !strings.Contains(why, "Lambda ingress build") || !strings.Contains(why, "TOKKEN_ROLE=worker") || !strings.Contains(why, "make build-WorkerFunction") {
		t.Errorf("init error of the ingress build started as the worker: %s", why)
	}
}
