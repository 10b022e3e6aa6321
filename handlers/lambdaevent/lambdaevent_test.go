package lambdaevent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/config"
)

func fixture(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeJSON stands in for sqsqueue.DecodeMessage: a body is a job's JSON.
func decodeJSON(body string) (bot.Job, error) {
	var j bot.Job
	if err := json.Unmarshal([]byte(body), &j); err != nil || j.Kind == "" {
		return bot.Job{}, fmt.Errorf("not a job: %q", body)
	}
	return j, nil
}

func TestClassify(t *testing.T) {
	tests := []struct {
		file    string
		raw     string
		want    Kind
		wantErr string
	}{
		{file: "lambda-urls-request.json", want: KindFunctionURL},
		{file: "apigw-v2-request-no-authorizer.json", want: KindHTTPAPI},
		{file: "sqs-event.json", want: KindSQS},
		{file: "sns-event.json", want: KindSNS},
		{file: "eventbridge-tag-change.json", want: KindEventBridge},
		{file: "job.json", want: KindJob},
		{file: "apigw-request.json", wantErr: "API Gateway REST (payload 1.0)"},
		{file: "kinesis-event.json", wantErr: `event source "aws:kinesis"`},
		{raw: `{"hello":"world","n":1}`, wantErr: "top-level keys [hello n]"},
		{raw: `[1,2]`, wantErr: "not a JSON object"},
		{raw: `{"Records":[{"eventSource":"aws:sqs"},{"EventSource":"aws:sns"}]}`, wantErr: "mixed sources"},
	}
	for _, tt := range tests {
		raw := json.RawMessage(tt.raw)
		if tt.file != "" {
			raw = fixture(t, tt.file)
		}
		got, err := Classify(raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s%s: error %v, want %q", tt.file, tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.file, got, err, tt.want)
		}
	}
}

// echo answers with what it received, so tests can check the conversion.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c, _ := r.Cookie("cookie1")
	http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1"})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(), "header2": r.Header.Get("Header2"),
		"cookie": c != nil, "body": string(body), "request_id": r.Header.Get("X-Request-Id"), "remote": r.RemoteAddr,
	})
})

func newDispatcher(t *testing.T, role config.Role, jobs bot.JobHandler) *Dispatcher {
	t.Helper()
	if jobs == nil {
		jobs = func(context.Context, bot.Job) error { return nil }
	}
	d, err := New(Deps{Role: role, HTTP: echo, Jobs: jobs, DecodeJob: decodeJSON, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFunctionURLRoundTrip(t *testing.T) {
	d := newDispatcher(t, config.RoleIngress, nil)
	out, err := d.Invoke(context.Background(), fixture(t, "lambda-urls-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(events.LambdaFunctionURLResponse)
	if !ok {
		t.Fatalf("response type %T", out)
	}
	if resp.StatusCode != 201 || resp.IsBase64Encoded || resp.Headers["x-multi"] != "a,b" || len(resp.Cookies) != 1 || !strings.HasPrefix(resp.Cookies[0], "seen=1") {
		t.Errorf("response %+v", resp)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"method": "POST", "path": "/my/path", "header2": "value1,value2", "cookie": true, "body": "Hello from client!",
		"request_id": "id", "remote": "123.123.123.123",
		"query": map[string]any{"parameter1": []any{"value1", "value2"}, "parameter2": []any{"value"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handler saw\n %v\nwant\n %v", got, want)
	}
}

func TestHTTPConversionEdges(t *testing.T) {
	d := newDispatcher(t, config.RoleAll, nil)
	form := "command=%2Faccess&text=help"
	req := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/slack/commands", Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"},
		Body: base64.StdEncoding.EncodeToString([]byte(form)), IsBase64Encoded: true,
		RequestContext: events.LambdaFunctionURLRequestContext{DomainName: "abc.lambda-url.ap-northeast-1.on.aws", HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST"}},
	}
	raw, _ := json.Marshal(req)
	out, err := d.Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var seen struct{ Body string }
	if err := json.Unmarshal([]byte(out.(events.LambdaFunctionURLResponse).Body), &seen); err != nil || seen.Body != form {
		t.Errorf("base64 body not decoded: %q %v", seen.Body, err)
	}

	req.Body = "!!not base64"
	raw, _ = json.Marshal(req)
	out, _ = d.Invoke(context.Background(), raw)
	if r := out.(events.LambdaFunctionURLResponse); r.StatusCode != 400 || !strings.Contains(r.Body, "not valid base64") {
		t.Errorf("bad base64: %+v", r)
	}

	binary := &Dispatcher{d: Deps{Role: config.RoleAll, HTTP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte{0x89, 'P', 'N', 'G', 0xff})
	}), Log: slog.New(slog.DiscardHandler)}}
	req.Body, req.IsBase64Encoded = "", false
	raw, _ = json.Marshal(req)
	out, _ = binary.Invoke(context.Background(), raw)
	if r := out.(events.LambdaFunctionURLResponse); !r.IsBase64Encoded || r.Body != base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G', 0xff}) {
		t.Errorf("binary body: %+v", r)
	}
}

func TestHTTPAPIResponseType(t *testing.T) {
	d := newDispatcher(t, config.RoleAll, nil)
	out, err := d.Invoke(context.Background(), fixture(t, "apigw-v2-request-no-authorizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := out.(events.APIGatewayV2HTTPResponse); !ok || r.StatusCode != 201 {
		t.Errorf("got %T %+v", out, out)
	}
}

func TestRoles(t *testing.T) {
	ingress := newDispatcher(t, config.RoleIngress, nil)
	for _, f := range []string{"sqs-event.json", "sns-event.json", "eventbridge-tag-change.json", "job.json"} {
		if _, err := ingress.Invoke(context.Background(), fixture(t, f)); err == nil || !strings.Contains(err.Error(), "TOKKEN_ROLE=ingress accepts only HTTP") {
			t.Errorf("ingress accepted %s: %v", f, err)
		}
	}
	worker := newDispatcher(t, config.RoleWorker, nil)
	if _, err := worker.Invoke(context.Background(), fixture(t, "lambda-urls-request.json")); err == nil || !strings.Contains(err.Error(), "TOKKEN_ROLE=worker refuses HTTP") {
		t.Errorf("worker accepted HTTP: %v", err)
	}
	if _, err := New(Deps{Role: config.RoleIngress}); err == nil {
		t.Error("ingress without HTTP handler accepted")
	}
	if _, err := New(Deps{Role: config.RoleWorker, HTTP: echo}); err == nil {
		t.Error("worker without job handler accepted")
	}
	if _, err := New(Deps{Role: "both"}); err == nil {
		t.Error("unknown role accepted")
	}
}

func TestSQSBatchFailures(t *testing.T) {
	var ran []string
	d := newDispatcher(t, config.RoleWorker, func(_ context.Context, j bot.Job) error {
		ran = append(ran, j.ID)
		switch j.Kind {
		case "flaky":
			return errors.New("throttled")
		case "bad":
			return bot.Permanent(errors.New("bad payload"))
		case "boom":
			panic("nil pointer")
		}
		return nil
	})
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", EventSource: "aws:sqs", Body: `{"id":"j1","kind":"ok"}`},
		{MessageId: "m2", EventSource: "aws:sqs", Body: `garbage`},
		{MessageId: "m3", EventSource: "aws:sqs", Body: `{"id":"j3","kind":"flaky"}`},
		{MessageId: "m4", EventSource: "aws:sqs", Body: `{"id":"j4","kind":"bad"}`},
		{MessageId: "m5", EventSource: "aws:sqs", Body: `{"id":"j5","kind":"boom"}`},
		{MessageId: "m6", EventSource: "aws:sqs", Body: `{"id":"j6","kind":"ok"}`},
	}}
	raw, _ := json.Marshal(ev)
	out, err := d.Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.SQSEventResponse)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if strings.Join(failed, ",") != "m2,m3,m4,m5" || strings.Join(ran, ",") != "j1,j3,j4,j5,j6" {
		t.Errorf("failed %v ran %v", failed, ran)
	}
	b, _ := json.Marshal(resp)
	if !strings.Contains(string(b), `"batchItemFailures":[{"itemIdentifier":"m2"}`) {
		t.Errorf("wire form %s", b)
	}

	// Out of time: nothing more runs; everything is handed back to SQS.
	ran = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, _ = d.Invoke(ctx, raw)
	if n := len(out.(events.SQSEventResponse).BatchItemFailures); n != 6 || len(ran) != 0 {
		t.Errorf("after deadline: %d failures, ran %v", n, ran)
	}
}

// TestDeadLetterRecordsAreGivenUp: records from the dead-letter queue are
// handed to GiveUp, never run; a record whose hand-over fails (or panics)
// stays in the queue; records from the job queue in the same batch run.
func TestDeadLetterRecordsAreGivenUp(t *testing.T) {
	const jobsARN, dlqARN = "arn:aws:sqs:us-east-1:123456789012:tokken-jobs", "arn:aws:sqs:us-east-1:123456789012:tokken-dlq"
	var ran []string
	var dead []DeadJob
	d, err := New(Deps{
		Role: config.RoleWorker, DecodeJob: decodeJSON, DeadLetterARN: dlqARN,
		Jobs: func(_ context.Context, j bot.Job) error { ran = append(ran, j.ID); return nil },
		GiveUp: func(_ context.Context, dj DeadJob) error {
			dead = append(dead, dj)
			switch dj.Job.Kind {
			case "slack-down":
				return errors.New("slack is down")
			case "boom":
				panic("nil pointer")
			}
			return nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", EventSource: "aws:sqs", EventSourceARN: dlqARN, Body: `{"id":"j1","kind":"domain.command"}`,
			Attributes: map[string]string{"SentTimestamp": "1520621625029"}},
		{MessageId: "m2", EventSource: "aws:sqs", EventSourceARN: dlqARN, Body: `garbage`},
		{MessageId: "m3", EventSource: "aws:sqs", EventSourceARN: dlqARN, Body: `{"id":"j3","kind":"slack-down"}`},
		{MessageId: "m4", EventSource: "aws:sqs", EventSourceARN: dlqARN, Body: `{"id":"j4","kind":"boom"}`},
		{MessageId: "m5", EventSource: "aws:sqs", EventSourceARN: jobsARN, Body: `{"id":"j5","kind":"ok"}`},
	}}
	raw, _ := json.Marshal(ev)
	out, err := d.Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range out.(events.SQSEventResponse).BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if strings.Join(failed, ",") != "m3,m4" || strings.Join(ran, ",") != "j5" {
		t.Errorf("failed %v, ran %v; want m3,m4 left in the queue and only j5 run", failed, ran)
	}
	if len(dead) != 4 {
		t.Fatalf("given up %d, want 4", len(dead))
	}
	if dj := dead[0]; dj.Job.ID != "j1" || dj.Job.Kind != "domain.command" || dj.MessageID != "m1" || dj.SentAt.UnixMilli() != 1520621625029 || dj.DecodeErr != nil {
		t.Errorf("dead job = %+v", dj)
	}
	if dj := dead[1]; dj.Job.ID != "m2" || dj.Job.Kind != "" || dj.DecodeErr == nil || dj.Body != "garbage" {
		t.Errorf("undecodable dead job = %+v", dj)
	}
	if _, err := New(Deps{Role: config.RoleWorker, DecodeJob: decodeJSON, Jobs: func(context.Context, bot.Job) error { return nil }, DeadLetterARN: dlqARN}); err == nil {
		t.Error("a dead-letter queue without GiveUp was accepted")
	}
}

func TestSNSAndEventBridge(t *testing.T) {
	d := newDispatcher(t, config.RoleWorker, nil)
	if _, err := d.Invoke(context.Background(), fixture(t, "sns-event.json")); err == nil || !strings.Contains(err.Error(), "no handler for SNS") {
		t.Errorf("SNS without handler: %v", err)
	}
	if _, err := d.Invoke(context.Background(), fixture(t, "eventbridge-tag-change.json")); err == nil || !strings.Contains(err.Error(), `source "aws.tag", detail-type "Tag Change on Resource"`) {
		t.Errorf("EventBridge without handler: %v", err)
	}
	var topics []string
	d.HandleSNS(func(_ context.Context, m events.SNSEntity) error { topics = append(topics, m.TopicArn); return nil })
	var instances []string
	d.HandleEventBridge("aws.tag", "Tag Change on Resource", func(_ context.Context, ev events.EventBridgeEvent) error {
		instances = append(instances, ev.Resources...)
		if !strings.Contains(string(ev.Detail), `"domain-status": "joined"`) {
			t.Errorf("detail %s", ev.Detail)
		}
		return nil
	})
	if _, err := d.Invoke(context.Background(), fixture(t, "sns-event.json")); err != nil || len(topics) != 1 || !strings.HasPrefix(topics[0], "arn:aws:sns:") {
		t.Errorf("SNS: %v %v", err, topics)
	}
	if _, err := d.Invoke(context.Background(), fixture(t, "eventbridge-tag-change.json")); err != nil || len(instances) != 1 || !strings.HasSuffix(instances[0], "i-0abc123def4567890") {
		t.Errorf("EventBridge: %v %v", err, instances)
	}
}

func TestDirectJob(t *testing.T) {
	var got bot.Job
	var fail error
	d := newDispatcher(t, config.RoleWorker, func(_ context.Context, j bot.Job) error { got = j; return fail })
	if _, err := d.Invoke(context.Background(), fixture(t, "job.json")); err != nil || got.ID != "sweep" || got.Kind != "sweep" {
		t.Errorf("job: %v %+v", err, got)
	}
	fail = bot.Permanent(errors.New("unknown kind"))
	if _, err := d.Invoke(context.Background(), fixture(t, "job.json")); err != nil {
		t.Errorf("a permanent failure must not ask Lambda to retry: %v", err)
	}
	fail = errors.New("throttled")
	if _, err := d.Invoke(context.Background(), fixture(t, "job.json")); err == nil || !strings.Contains(err.Error(), "throttled") {
		t.Errorf("a transient failure must be returned: %v", err)
	}
}

func FuzzInvoke(f *testing.F) {
	for _, name := range []string{"lambda-urls-request.json", "sqs-event.json", "sns-event.json", "eventbridge-tag-change.json", "job.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	d, err := New(Deps{Role: config.RoleAll, HTTP: echo, Jobs: func(context.Context, bot.Job) error { return nil }, DecodeJob: decodeJSON, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	d.HandleSNS(func(context.Context, events.SNSEntity) error { return nil })
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = d.Invoke(context.Background(), raw) // must not panic
	})
}
