package sqsqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/sqsqueue"
	"github.com/tokken/tokken/testkit/awsfake"
)

func newQueue(t *testing.T) (*awsfake.Fake, *sqs.Client, string, *sqsqueue.Queue) {
	t.Helper()
	f := awsfake.New(t)
	url, _ := f.SQS().CreateQueue("tokken-jobs")
	client := sqs.NewFromConfig(f.Config(context.Background()))
	return f, client, url, sqsqueue.New(client, url)
}

func TestEnqueueRoundTrip(t *testing.T) {
	ctx := context.Background()
	_, client, url, q := newQueue(t)
	job, err := bot.NewJob("slack-evt-1", "access.approve", map[string]any{"request": "r1", "note": "日本語 \ufffe ok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages, want 1", len(out.Messages))
	}
	m := out.Messages[0]
	if got := aws.ToString(m.MessageAttributes[sqsqueue.KindAttribute].StringValue); got != "access.approve" {
		t.Errorf("kind attribute = %q", got)
	}
	got, err := sqsqueue.DecodeMessage(aws.ToString(m.Body))
	if err != nil {
		t.Fatalf("DecodeMessage: %v", err)
	}
	if got.ID != job.ID || got.Kind != job.Kind {
		t.Errorf("decoded %+v, want %+v", got, job)
	}
	var p1, p2 map[string]any
	if err := json.Unmarshal(got.Payload, &p1); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(job.Payload, &p2)
	if p1["note"] != p2["note"] || p1["request"] != "r1" {
		t.Errorf("payload %v, want %v", p1, p2)
	}
}

func TestEnqueueRefusesBadJobs(t *testing.T) {
	ctx := context.Background()
	f, _, _, q := newQueue(t)
	big := bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("x", sqsqueue.MaxMessageSize) + `"`)}
	tests := []struct {
		name    string
		job     bot.Job
		tooBig  bool
		wantErr bool
	}{
		{"too large", big, true, true},
		{"no id", bot.Job{Kind: "k"}, false, true},
		{"no kind", bot.Job{ID: "j"}, false, true},
		{"invalid payload", bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(`{`)}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := q.Enqueue(ctx, tc.job)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if errors.Is(err, sqsqueue.ErrTooLarge) != tc.tooBig {
				t.Errorf("errors.Is(err, ErrTooLarge) = %v, want %v (err %v)", !tc.tooBig, tc.tooBig, err)
			}
		})
	}
	if n := len(f.Calls(awsfake.SQSService, "SendMessage")); n != 0 {
		t.Errorf("%d SendMessage calls for refused jobs, want 0", n)
	}
}

// TestEncodeSizeLimit checks the boundary: a job exactly at the limit is
// accepted by Encode and by SQS (the fake applies SQS's own count).
func TestEncodeSizeLimit(t *testing.T) {
	ctx := context.Background()
	f, _, _, q := newQueue(t)
	base := bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(`""`)}
	b, err := sqsqueue.Encode(base)
	if err != nil {
		t.Fatal(err)
	}
	overhead := len(b) + len(sqsqueue.KindAttribute) + len("String") + len("k")
	fill := sqsqueue.MaxMessageSize - overhead
	atLimit := bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("x", fill) + `"`)}
	if err := q.Enqueue(ctx, atLimit); err != nil {
		t.Fatalf("job at the limit: %v", err)
	}
	over := bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(`"` + strings.Repeat("x", fill+1) + `"`)}
	if _, err := sqsqueue.Encode(over); !errors.Is(err, sqsqueue.ErrTooLarge) {
		t.Errorf("one byte over: %v, want ErrTooLarge", err)
	}
	if n := len(f.SQS().Messages("tokken-jobs")); n != 1 {
		t.Errorf("queue holds %d messages, want 1", n)
	}
}

func TestEnqueueErrors(t *testing.T) {
	ctx := context.Background()
	f, client, _, q := newQueue(t)
	job := bot.Job{ID: "j1", Kind: "k"}

	// Throttling is retried by the SDK.
	f.Fail(awsfake.SQSService, "SendMessage", 2, awsfake.Throttle)
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatalf("Enqueue under throttling: %v", err)
	}
	if n := len(f.SQS().Messages("tokken-jobs")); n != 1 {
		t.Errorf("queue holds %d messages, want 1", n)
	}

	// A missing queue is an error naming the job.
	missing := sqsqueue.New(client, f.URL()+"/"+awsfake.AccountID+"/nope")
	err := missing.Enqueue(ctx, job)
	var dne *types.QueueDoesNotExist
	if !errors.As(err, &dne) || !strings.Contains(err.Error(), "j1") {
		t.Errorf("enqueue to missing queue: %v, want a wrapped *types.QueueDoesNotExist naming the job", err)
	}
}

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		name, body string
		wantErr    bool
	}{
		{"job", `{"id":"a","kind":"b","payload":{"x":1}}`, false},
		{"no payload", `{"id":"a","kind":"b"}`, false},
		{"unknown field ignored", `{"id":"a","kind":"b","v":2}`, false},
		{"not json", `hello`, true},
		{"empty", ``, true},
		{"array", `[]`, true},
		{"no id", `{"kind":"b"}`, true},
		{"no kind", `{"id":"a"}`, true},
		{"wrong types", `{"id":1,"kind":"b"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := sqsqueue.DecodeMessage(tc.body)
			if (err != nil) != tc.wantErr {
				t.Fatalf("DecodeMessage(%q) = %+v, %v; wantErr %v", tc.body, j, err, tc.wantErr)
			}
			if err != nil && !bot.IsPermanent(err) {
				t.Errorf("error %v is not permanent", err)
			}
		})
	}
}

// FuzzDecodeMessage checks that no body makes DecodeMessage panic, and that
// every job it accepts survives Encode → DecodeMessage unchanged.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{`{"id":"a","kind":"b","payload":{"x":[1,"\ufffe"]}}`, `{"id":"a","kind":"b"}`, `{}`, `nul`, `{"id":"\u0000","kind":"\uffff","payload":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		j, err := sqsqueue.DecodeMessage(body)
		if err != nil {
			return
		}
		enc, err := sqsqueue.Encode(j)
		if err != nil {
			if errors.Is(err, sqsqueue.ErrTooLarge) {
				return
			}
			t.Fatalf("Encode(%+v) of a decoded job: %v", j, err)
		}
		back, err := sqsqueue.DecodeMessage(enc)
		if err != nil {
			t.Fatalf("DecodeMessage(Encode(j)): %v", err)
		}
		if back.ID != j.ID || back.Kind != j.Kind {
			t.Fatalf("round trip changed the job: %+v → %+v", j, back)
		}
		var a, b any
		if (len(j.Payload) == 0) != (len(back.Payload) == 0) {
			t.Fatalf("payload presence changed: %q → %q", j.Payload, back.Payload)
		}
		if len(j.Payload) > 0 {
			if json.Unmarshal(j.Payload, &a) != nil || json.Unmarshal(back.Payload, &b) != nil {
				t.Fatalf("payload no longer JSON: %q → %q", j.Payload, back.Payload)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("payload changed: %s → %s", ja, jb)
			}
		}
	})
}

func TestDelaySeconds(t *testing.T) {
	now := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		notBefore time.Time
		want      int32
	}{
		{"zero", time.Time{}, 0},
		{"past", now.Add(-time.Minute), 0},
		{"now", now, 0},
		{"a nanosecond rounds up", now.Add(time.Nanosecond), 1},
		{"1.1 s rounds up", now.Add(1100 * time.Millisecond), 2},
		{"whole seconds", now.Add(3 * time.Second), 3},
		{"the limit", now.Add(900 * time.Second), 900},
		{"past the limit is clamped", now.Add(time.Hour), 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sqsqueue.DelaySeconds(tt.notBefore, now); got != tt.want {
				t.Errorf("DelaySeconds(now%+v) = %d, want %d", tt.notBefore.Sub(now), got, tt.want)
			}
		})
	}
}

// TestEnqueueSendsDelay checks the delay reaches SQS: the fake records
// DelaySeconds and keeps the message invisible until then.
func TestEnqueueSendsDelay(t *testing.T) {
	ctx := context.Background()
	f, client, url, q := newQueue(t)
	due := bot.Job{ID: "alert.flush/C1/1", Kind: "alert.flush", NotBefore: time.Now().Add(30 * time.Second)}
	if err := q.Enqueue(ctx, due); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if err := q.Enqueue(ctx, bot.Job{ID: "now", Kind: "alert.flush"}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	calls := f.Calls(awsfake.SQSService, "SendMessage")
	if len(calls) != 2 {
		t.Fatalf("%d SendMessage calls, want 2", len(calls))
	}
	delay := func(c awsfake.Call) float64 {
		v, _ := c.Params["DelaySeconds"].(float64)
		return v
	}
	// 30 s ahead at Enqueue, rounded up: 30 unless the call took over a second.
	if d := delay(calls[0]); d < 29 || d > 30 {
		t.Errorf("delayed job sent with DelaySeconds %v (params %v), want 30", d, calls[0].Params)
	}
	if d := delay(calls[1]); d != 0 {
		t.Errorf("undelayed job sent with DelaySeconds %v, want 0", d)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages, want only the undelayed one", len(out.Messages))
	}
	got, err := sqsqueue.DecodeMessage(aws.ToString(out.Messages[0].Body))
	if err != nil || got.ID != "now" {
		t.Errorf("received %+v (%v), want job now", got, err)
	}
}
