package awsfake_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tokken/tokken/testkit/awsfake"
)

// TestSQSDelaySecondsOnTheWire: a message sent with DelaySeconds is not
// received before its delay, and a long poll returns it as soon as the
// delay ends (not at the end of the poll).
func TestSQSDelaySecondsOnTheWire(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := awsfake.New(t)
	url, _ := f.SQS().CreateQueue("jobs")
	client := sqs.NewFromConfig(f.Config(ctx))
	sent := time.Now()
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("later"), DelaySeconds: 2}); err != nil {
		t.Fatal(err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("short poll during the delay: %+v, %v; want nothing", out, err)
	}
	out, err = client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 10})
	waited := time.Since(sent)
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "later" {
		t.Fatalf("long poll: %+v, %v", out, err)
	}
	if waited < 2*time.Second || waited > 8*time.Second {
		t.Errorf("received after %s, want at 2 s (the delay), well before the 10 s poll ends", waited)
	}
}

// TestEventSourceRedrivesToTheDeadLetterQueue: the event source mapping
// deletes what the function processed, hands failures back after the
// visibility timeout, and the redrive policy moves a message that failed
// maxReceiveCount times to the dead-letter queue, whose own event source
// then sees it.
func TestEventSourceRedrivesToTheDeadLetterQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := awsfake.New(t)
	f.SQS().CreateQueue("jobs")
	f.SQS().CreateQueue("dlq")
	if err := f.SQS().SetVisibilityTimeout("jobs", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := f.SQS().SetRedrivePolicy("jobs", "dlq", 2); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	deliveries := map[string]int{}
	var dead []events.SQSMessage
	srcCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = f.SQS().EventSource(srcCtx, "jobs", 10, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			var resp events.SQSEventResponse
			for _, r := range ev.Records {
				deliveries[r.Body]++
				if r.Body == "bad" {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		})
	}()
	go func() {
		defer wg.Done()
		_ = f.SQS().EventSource(srcCtx, "dlq", 10, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			dead = append(dead, ev.Records...)
			return events.SQSEventResponse{}, nil
		})
	}()
	for _, b := range []string{"good", "bad"} {
		if _, err := f.SQS().Send("jobs", b); err != nil {
			t.Fatal(err)
		}
	}
	err := f.WaitFor(ctx, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(dead) == 1
	})
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if deliveries["good"] != 1 || deliveries["bad"] != 2 {
		t.Errorf("deliveries = %v, want good once, bad twice (maxReceiveCount)", deliveries)
	}
	if dead[0].Body != "bad" || dead[0].EventSourceARN != "arn:aws:sqs:us-east-1:123456789012:dlq" {
		t.Errorf("dead-letter record = %+v", dead[0])
	}
	if n := len(f.SQS().Messages("jobs")) + len(f.SQS().Messages("dlq")); n != 0 {
		t.Errorf("%d messages left; processed ones must be deleted", n)
	}
	if n := len(f.Calls(awsfake.SQSService, "")); n != 0 {
		t.Errorf("the event source made %d API calls; it is Lambda's, not the function's", n)
	}
}

// TestSchedulerRunFiresAtItsTime: a one-time schedule is delivered to its
// queue when its time comes, not before.
func TestSchedulerRunFiresAtItsTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := awsfake.New(t)
	_, arn := f.SQS().CreateQueue("jobs")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Scheduler().Run(runCtx, "default") }()
	at := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	_, err := scheduler.NewFromConfig(f.Config(ctx)).CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String("t1"), ScheduleExpression: aws.String("at(" + at.UTC().Format("2006-01-02T15:04:05") + ")"),
		FlexibleTimeWindow:    &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: schedtypes.ActionAfterCompletionDelete,
		Target:                &schedtypes.Target{Arn: aws.String(arn), RoleArn: aws.String("arn:aws:iam::123456789012:role/s"), Input: aws.String("fired")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WaitFor(ctx, func() bool { return len(f.SQS().Messages("jobs")) == 1 }); err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Before(at) {
		t.Errorf("fired at %s, before its time %s", now, at)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, ok := f.Scheduler().Get("default", "t1"); ok {
		t.Error("the schedule was not deleted after completion")
	}
}
