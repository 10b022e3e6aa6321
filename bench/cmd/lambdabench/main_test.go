package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/lambdart"
)

func TestParseInitTrace(t *testing.T) {
	out := `{"level":"INFO","msg":"not an init line"}
init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
init github.com/tokken/tokken/policies @3.5 ms, 2.00 ms clock, 442768 bytes, 2716 allocs
init broken @x ms, 1 ms clock, 1 bytes, 1 allocs
`
	got := ParseInitTrace(out)
	want := []PackageInit{
		{Package: "internal/bytealg", At: 8 * time.Microsecond},
		{Package: "github.com/tokken/tokken/policies", At: 3500 * time.Microsecond, Clock: 2 * time.Millisecond, Bytes: 442768, Allocs: 2716},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d inits %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("init %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestFunctionURLEventIsSignedSlashCommand(t *testing.T) {
	now := time.Now()
	b, err := loadgen.NewBuilder(loadgen.Payload{Kind: loadgen.KindCommand, Command: "/access", Text: "help"}, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := functionURLEvent(b, 7, now)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	body, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil || !ev.IsBase64Encoded {
		t.Fatalf("body not base64 (%v, flag %v)", err, ev.IsBase64Encoded)
	}
	hdr := http.Header{}
	for k, v := range ev.Headers {
		hdr.Set(k, v) // Function URLs lower-case header names
	}
	if err := (slacksig.Verifier{Secret: []byte(secret)}).Verify(hdr, body); err != nil {
		t.Errorf("event does not verify: %v", err)
	}
	if ev.RequestContext.HTTP.Method != "POST" || ev.RawPath != "/slack/commands" || !strings.Contains(ev.RequestContext.DomainName, ".lambda-url.") {
		t.Errorf("event shape: %+v", ev.RequestContext)
	}
	if !strings.Contains(string(body), "command=%2Faccess") || !strings.Contains(string(body), "text=help") {
		t.Errorf("body %s", body)
	}
}

func TestAnswers(t *testing.T) {
	resp := func(status int, body string, b64 bool) lambdart.Result {
		if b64 {
			body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		b, _ := json.Marshal(events.LambdaFunctionURLResponse{StatusCode: status, Body: body, IsBase64Encoded: b64})
		return lambdart.Result{Body: b}
	}
	tests := []struct {
		name  string
		res   lambdart.Result
		check func(int, string) error
		ok    bool
	}{
		{"help", resp(200, `{"text":"*/access* — time-boxed AWS access"}`, false), helpAnswer, true},
		{"help base64", resp(200, `time-boxed AWS access`, true), helpAnswer, true},
		{"401", resp(401, "slack verification failed", false), helpAnswer, false},
		{"wrong text", resp(200, `{"text":"unknown command"}`, false), helpAnswer, false},
		{"function error", lambdart.Result{Error: true, ErrorType: "errorString", Body: []byte(`{}`)}, helpAnswer, false},
		{"not JSON", lambdart.Result{Body: []byte("nope")}, helpAnswer, false},
		{"minimal ok", resp(200, "ok", false), okAnswer, true},
		{"minimal 502", resp(502, "ok", false), okAnswer, false},
	}
	for _, tt := range tests {
		status, body, err := decodeAnswer(tt.res)
		if err == nil {
			err = tt.check(status, body)
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	if d, err := ParseSchedstat("12345678 999 42\n"); err != nil || d != 12345678 {
		t.Errorf("ParseSchedstat = %v, %v; want 12.345678ms", d, err)
	}
	for _, bad := range []string{"", "1 2", "x 2 3"} {
		if _, err := ParseSchedstat(bad); err == nil {
			t.Errorf("ParseSchedstat(%q) accepted", bad)
		}
	}
}
