package lambdart

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// TestMain lets the test binary act as a Lambda function: with
// LAMBDART_CHILD set it runs aws-lambda-go's real runtime loop against
// AWS_LAMBDA_RUNTIME_API instead of the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("LAMBDART_CHILD") {
	case "echo":
		lambda.Start(func(_ context.Context, in map[string]any) (map[string]any, error) {
			if in["fail"] == true {
				return nil, errors.New("asked to fail")
			}
			return map[string]any{"echo": in["msg"]}, nil
		})
		return
	}
	os.Exit(m.Run())
}

func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestRealRuntimeAgainstFake(t *testing.T) {
	s := New()
	addr := serve(t, s)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LAMBDART_CHILD=echo", "AWS_LAMBDA_RUNTIME_API="+addr)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	select {
	case <-s.FirstPoll():
	case <-time.After(30 * time.Second):
		t.Fatal("the runtime never polled")
	}
	if at := s.FirstPollAt(); at.Before(start) {
		t.Errorf("first poll %v before the process started %v", at, start)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name     string
		payload  string
		wantErr  bool
		wantBody string
	}{
		{"response", `{"msg":"hi"}`, false, `"echo":"hi"`},
		{"error", `{"fail":true}`, true, "asked to fail"},
		{"again after an error", `{"msg":"still here"}`, false, `"echo":"still here"`},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		res, err := s.Invoke(ctx, []byte(tt.payload), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.Error != tt.wantErr || !strings.Contains(string(res.Body), tt.wantBody) {
			t.Errorf("%s: error %v body %s; want error %v and %q", tt.name, res.Error, res.Body, tt.wantErr, tt.wantBody)
		}
		if tt.wantErr && res.ErrorType == "" {
			t.Errorf("%s: no error type", tt.name)
		}
		if ids[res.RequestID] {
			t.Errorf("%s: request id %s reused", tt.name, res.RequestID)
		}
		ids[res.RequestID] = true
	}
}

func TestRefusesUnknownIDsAndKeepsInitError(t *testing.T) {
	s := New()
	base := "http://" + serve(t, s) + "/" + APIVersion + "/runtime/"
	resp, err := http.Post(base+"invocation/nope/response", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ ErrorType string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || body.ErrorType != "InvalidRequestID" {
		t.Errorf("unknown id: status %d type %q, want 400 InvalidRequestID", resp.StatusCode, body.ErrorType)
	}

	req, _ := http.NewRequest(http.MethodPost, base+"init/error", strings.NewReader(`{"errorMessage":"bad config"}`))
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.ExitError")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("init error: status %d, want 202", resp.StatusCode)
	}
	select {
	case ie := <-s.InitErrors():
		if ie.ErrorType != "Runtime.ExitError" || !strings.Contains(string(ie.Body), "bad config") {
			t.Errorf("init error = %+v", ie)
		}
	default:
		t.Error("init error not recorded")
	}
}

func TestInvokeStopsWithContext(t *testing.T) {
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Invoke(ctx, []byte(`{}`), time.Second); err == nil {
		t.Error("Invoke with a cancelled context and no runtime returned no error")
	}
}
