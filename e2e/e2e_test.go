// Package e2e runs the tokken binary end to end: it builds it once, starts
// `tokken serve` on a loopback port with an embedded store in a temporary
// directory and the fake Slack Web API (testkit/slackfake), and talks to it
// exactly as Slack does, with signed requests. `tokken invoke` is exercised
// the same way with a Function URL event.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// binary is the tokken executable built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokken-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokken")
	build := exec.Command("go", "build", "-race", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tokken:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tokkenEnv is a minimal environment for the binary: nothing inherited but
// PATH and HOME, so the developer's own variables cannot leak in.
// policyDir is the shipped example policy set (the package runs in e2e/).
var policyDir = func() string {
	d, err := filepath.Abs("../policies")
	if err != nil {
		panic(err)
	}
	return d
}()

func tokkenEnv(fake *slackfake.Fake, dir string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"SLACK_SIGNING_SECRET=" + fake.SigningSecret(),
		"SLACK_BOT_TOKEN=" + fake.Token(),
		"SLACK_API_URL=" + fake.APIURL(),
		"TOKKEN_STORE=bolt:" + filepath.Join(dir, "tokken.db"),
		"TOKKEN_ADDR=127.0.0.1:0",
		"TOKKEN_LOG_LEVEL=debug",
		"TOKKEN_POLICY_DIR=" + policyDir,
	}
	return append(env, extra...)
}

// server is a running `tokken serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs logbuf.Buffer // its stderr, one JSON line per log record
	done chan error
}

func (s *server) Logs() string { return s.logs.String() }

// startServe starts `tokken serve` in a fresh directory with tokkenEnv plus
// extra variables, and waits for its "tokken serving" line.
func startServe(t *testing.T, fake *slackfake.Fake, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	return startServeIn(t, dir, tokkenEnv(fake, dir, extra...))
}

// startServeIn starts `tokken serve` in dir with exactly env (a restart
// over the same store reuses dir).
func startServeIn(t *testing.T, dir string, env []string) *server {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Dir, cmd.Env = dir, env // the .env lookup happens in dir: there is none
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "tokken serving" {
				addr <- m.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("tokken serve logs:\n%s", s.Logs())
		}
	})
	select {
	case a := <-addr:
		s.base = "http://" + a
	case err := <-s.done:
		t.Fatalf("tokken serve exited early: %v\n%s", err, s.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("tokken serve did not start\n%s", s.Logs())
	}
	return s
}

// waitLog waits until tokken has logged a line whose msg is msg, checking
// each time a line arrives (no polling), for at most 45 s.
func waitLog(t *testing.T, s *server, msg string) {
	t.Helper()
	want := `"msg":` + mustJSON(t, msg)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := s.logs.Wait(ctx, func(logs string) bool { return strings.Contains(logs, want) }); err != nil {
		t.Fatalf("tokken did not log %q: %v", msg, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stop sends SIGTERM and waits for a graceful exit (queue drained).
func (s *server) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("tokken serve exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("tokken serve did not stop on SIGTERM")
	}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func signed(t *testing.T, secret, url string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	slacksig.SignRequest(req, []byte(secret), at, body)
	return req
}

func TestSignedAccessHelp(t *testing.T) {
	fake := slackfake.New(t)
	s := startServe(t, fake)
	req, _ := fake.SlashCommand(t, s.base+"/slack/commands", slack.SlashCommand{Command: "/access", Text: "help", UserID: "U1", ChannelID: "C1", UserName: "roadrunner"})
	status, body := do(t, req)
	var reply struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &reply) != nil {
		t.Fatalf("/access help: %d %q", status, body)
	}
	if reply.ResponseType != "ephemeral" || !strings.Contains(reply.Text, "/access &lt;profile&gt; &lt;duration&gt;") {
		t.Errorf("/access help answered %+v", reply)
	}
	s.stop() // after the exit every log line has been read
	if !strings.Contains(s.Logs(), `"path":"/slack/commands","status":200`) {
		t.Error("no access log line for the command")
	}
}

func TestRejectedRequests(t *testing.T) {
	fake := slackfake.New(t)
	s := startServe(t, fake)
	secret := fake.SigningSecret()
	body := []byte("command=%2Faccess&text=help&user_id=U1&channel_id=C1")
	now := time.Now()
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, s.base+"/slack/commands", bytes.NewReader(body))
			return r
		}, 401, "missing signature or timestamp header"},
		{"stale (6 minutes old)", func() *http.Request {
			return signed(t, secret, s.base+"/slack/commands", body, now.Add(-6*time.Minute))
		}, 401, "outside the 5-minute window"},
		{"tampered", func() *http.Request {
			r := signed(t, secret, s.base+"/slack/commands", body, now)
			tampered := bytes.Replace(body, []byte("text=help"), []byte("text=list"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
			return r
		}, 401, "signature mismatch"},
		{"oversized", func() *http.Request {
			return signed(t, secret, s.base+"/slack/interactions", bytes.Repeat([]byte("x"), slacksig.MaxBody+1), now)
		}, 413, "larger than 1 MiB"},
	}
	for _, tt := range tests {
		status, got := do(t, tt.req())
		if status != tt.status || !strings.Contains(got, tt.reason) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, status, got, tt.status, tt.reason)
		}
	}
	s.stop()
	if strings.Contains(s.Logs(), "text=list") || !strings.Contains(s.Logs(), "slack request rejected") {
		t.Error("rejections not logged, or logged with their body")
	}
}

// TestEventsVerificationAndRetries: /slack/events answers Slack's URL
// verification, refuses what is not signed with the signing secret or is
// stale, and acknowledges an event delivery and its retries at once
// (logging the retry) without acting on it: the manifests subscribe to no
// event, so tokken has no event handler (TestNoEventHandlerWithoutSubscription),
// and an event delivered anyway, however often, posts nothing.
func TestEventsVerificationAndRetries(t *testing.T) {
	fake := slackfake.New(t)
	fake.AddChannel("C1", "ops")
	s := startServe(t, fake)
	secret := fake.SigningSecret()
	events := s.base + "/slack/events"

	verification := []byte(`{"token":"x","challenge":"c-123","type":"url_verification"}`)
	status, body := do(t, signed(t, secret, events, verification, time.Now()))
	if status != 200 || !strings.Contains(body, `"challenge":"c-123"`) {
		t.Errorf("url_verification: %d %q", status, body)
	}

	mention := []byte(`{"token":"x","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev0001","event_time":1700000000,` +
		`"event":{"type":"app_mention","user":"U1","text":"<@U0TOKKENBOT> hello","channel":"C1","ts":"1700000000.000100"}}`)
	for _, tt := range []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"url_verification signed with another secret", signed(t, "not-the-secret", events, verification, time.Now()), 401},
		{"event signed with another secret", signed(t, "not-the-secret", events, mention, time.Now()), 401},
		{"event signed 10 minutes ago", signed(t, secret, events, mention, time.Now().Add(-10*time.Minute)), 401},
		{"event_callback without event_id", signed(t, secret, events, []byte(`{"type":"event_callback","event":{"type":"app_mention"}}`), time.Now()), 400},
	} {
		if status, body := do(t, tt.req); status != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.name, status, body, tt.status)
		}
	}

	for i := range 3 { // the delivery and two retries
		req := signed(t, secret, events, mention, time.Now())
		req.Header.Set("Content-Type", "application/json")
		if i > 0 {
			req.Header.Set("X-Slack-Retry-Num", fmt.Sprint(i))
			req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
		}
		if status, body := do(t, req); status != 200 {
			t.Fatalf("delivery %d: %d %q, want 200 so that Slack stops retrying", i, status, body)
		}
	}
	s.stop() // drains the queue: anything the events caused has run by now
	if calls := fake.Calls("chat.postMessage"); len(calls) != 0 {
		t.Errorf("an event tokken does not subscribe to posted %d messages: %+v", len(calls), calls)
	}
	for _, want := range []string{`"slack_retry_num":1,"slack_retry_reason":"http_timeout"`, `"slack_retry_num":2,"slack_retry_reason":"http_timeout"`} {
		if !strings.Contains(s.Logs(), want) {
			t.Errorf("retry not logged with %s", want)
		}
	}
}

func TestInvokeFunctionURLEvent(t *testing.T) {
	fake := slackfake.New(t)
	dir := t.TempDir()
	form := "token=x&team_id=" + slackfake.TeamID + "&channel_id=C1&user_id=U1&command=%2Faccess&text=help&response_url=" + fake.ResponseURL("R1") + "&trigger_id=1.2.3"
	ts := time.Now().Unix()
	event := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/slack/commands",
		Headers: map[string]string{
			"content-type":              "application/x-www-form-urlencoded",
			"x-slack-request-timestamp": fmt.Sprint(ts),
			"x-slack-signature":         slacksig.Sign([]byte(fake.SigningSecret()), ts, []byte(form)),
		},
		Body: form,
		RequestContext: events.LambdaFunctionURLRequestContext{
			RequestID: "lambda-req-1", DomainName: "abcdef.lambda-url.ap-northeast-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/slack/commands", SourceIP: "198.51.100.7"},
		},
	}
	raw, _ := json.Marshal(event)
	path := filepath.Join(dir, "event.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "invoke", path)
	cmd.Dir = dir
	cmd.Env = tokkenEnv(fake, dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tokken invoke: %v\n%s", err, stderr.String())
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		t.Fatalf("invoke printed %q: %v", stdout.String(), err)
	}
	var reply struct{ Text string }
	if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil || resp.StatusCode != 200 || !strings.Contains(reply.Text, "/access &lt;profile&gt; &lt;duration&gt;") || resp.Headers["x-request-id"] != "lambda-req-1" {
		t.Errorf("invoke result %+v", resp)
	}

	// The same event with its signature broken is refused the same way.
	event.Headers["x-slack-signature"] = "v0=" + strings.Repeat("0", 64)
	raw, _ = json.Marshal(event)
	cmd = exec.CommandContext(ctx, binary, "invoke", "-")
	cmd.Dir, cmd.Env, cmd.Stdin = dir, tokkenEnv(fake, dir), bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tokken invoke -: %v", err)
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 401 {
		t.Errorf("tampered event: %s", out)
	}
}

func TestConfigurationErrorsExit2(t *testing.T) {
	fake := slackfake.New(t)
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = tokkenEnv(fake, dir, "TOKKEN_STORE=mysql:x")
	out, err := cmd.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 2 {
		t.Fatalf("exit %v, want code 2\n%s", err, out)
	}
	if !strings.Contains(string(out), `TOKKEN_STORE: want "bolt:<path>" or "dynamodb:<table>", got "mysql:x"`) {
		t.Errorf("message does not name the variable:\n%s", out)
	}

	for _, args := range [][]string{{"frobnicate"}, {"invoke"}, {}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		if err := cmd.Run(); err == nil || err.(*exec.ExitError).ExitCode() != 2 {
			t.Errorf("tokken %v: %v, want exit code 2", args, err)
		}
	}
	help, err := exec.Command(binary, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serve", "invoke", "version", "SLACK_SIGNING_SECRET", "TOKKEN_STORE", "TOKKEN_SECRETS_ARN", "AWS_ENDPOINT_URL_<SERVICE>"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

func TestPolicyCommandsAndBrokenPolicyDir(t *testing.T) {
	check := exec.Command(binary, "policy", "check", "--dir", policyDir)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("tokken policy check on the shipped set: %v\n%s", err, out)
	}

	broken := t.TempDir()
	for _, name := range []string{"groups.yaml", "profiles.yaml"} {
		b, err := os.ReadFile(filepath.Join(policyDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(broken, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rule := "permit (principal, action == Tokken::Action::\"request\", resource)\nwhen { context.no_such_attribute };\n"
	if err := os.WriteFile(filepath.Join(broken, "bad.cedar"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "policy", "check", "--dir", broken).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(out), "bad.cedar:") {
		t.Fatalf("policy check on a broken set: %v, want exit 1 naming bad.cedar:<line>\n%s", err, out)
	}

	fake := slackfake.New(t)
	dir := t.TempDir()
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = tokkenEnv(fake, dir, "TOKKEN_POLICY_DIR="+broken)
	out, err = cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("serve with a broken policy dir: %v, want exit code 2\n%s", err, out)
	}
	if !strings.Contains(string(out), "TOKKEN_POLICY_DIR") || !strings.Contains(string(out), "bad.cedar:") {
		t.Errorf("serve's message should name TOKKEN_POLICY_DIR and the file:line:\n%s", out)
	}
}
