package e2e

// The worker as Lambda runs it: the tokken binary started against a Lambda
// Runtime API (testkit/lambdart), invoked only with the events Lambda would
// send. Lambda's SQS event source mappings are played by awsfake
// (SQS.EventSource, with batch item failures, the queue's visibility
// timeout and its redrive policy to the dead-letter queue), EventBridge
// Scheduler fires one-time schedules at their time (Scheduler.Run), the
// store is DynamoDB Local, Slack is slackfake. The ingress's part is played
// by putting on the job queue exactly the jobs it enqueues.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/dynamostore"
	"github.com/tokken/tokken/infra/sqsqueue"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/ddblocal"
	"github.com/tokken/tokken/testkit/lambdart"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	lambdaJobs      = "tokken-jobs"
	lambdaDLQ       = "tokken-dlq"
	lambdaTimers    = "tokken-timers"
	lambdaSchedRole = "arn:aws:iam::123456789012:role/tokken-scheduler"
)

// lambdaWorld is one tokken worker function with its queues and schedules.
type lambdaWorld struct {
	t     *testing.T
	slack *slackfake.Fake
	aws   *awsfake.Fake
	rt    *lambdart.Server
	ddb   *ddblocal.Instance
	logs  logbuf.Buffer
	queue string // the job queue's URL

	mu          sync.Mutex
	invocations []invocation
}

// invocation is one invocation of the worker: the queue whose event source
// made it, the kinds of the jobs in its batch and when it started.
type invocation struct {
	queue string
	kinds []string
	at    time.Time
}

// lambdaOptions tune a world: the job queue's visibility timeout and
// receive limit (template.yaml: 180 s and 5), and extra variables.
type lambdaOptions struct {
	visibility time.Duration
	maxReceive int
	env        []string
}

// newLambdaWorld starts DynamoDB Local, the fakes, the worker function and
// the event sources; everything stops when the test ends.
func newLambdaWorld(t *testing.T, opt lambdaOptions) *lambdaWorld {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ddb, err := ddblocal.Start(ctx)
	if err != nil {
		cancel()
		if os.Getenv("CI") != "" || os.Getenv("TOKKEN_REQUIRE_DYNAMODB_LOCAL") != "" {
			t.Fatalf("DynamoDB Local: %v", err)
		}
		t.Skipf("DynamoDB Local unavailable (scripts/install-test-deps.sh installs it): %v", err)
	}
	t.Cleanup(ddb.Stop)
	if err := dynamostore.New(ddb.Client(), "tokken").CreateTable(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}

	w := &lambdaWorld{t: t, slack: slackfake.New(t), aws: awsfake.New(t), rt: lambdart.New(), ddb: ddb}
	for id, name := range map[string]string{domainChannel: "domain-ops", opsChannel: "tokken-ops", stagingChannel: "staging", auditChannel: "audit"} {
		w.slack.AddChannel(id, name)
	}
	for _, u := range []string{winAdmin, sre, developer} {
		w.slack.AddUser(slackfake.User{ID: u, Name: strings.ToLower(u)})
	}
	w.aws.IAM().AddGrantableRole("arn:aws:iam::222222222222:role/tokken-staging-admin")
	w.aws.STS().AddCaller(stageWorkerKey, "arn:aws:sts::222222222222:assumed-role/tokken-worker/tokken-worker")
	queueURL, queueARN := w.aws.SQS().CreateQueue(lambdaJobs)
	w.queue = queueURL
	_, dlqARN := w.aws.SQS().CreateQueue(lambdaDLQ)
	w.aws.Scheduler().CreateGroup(lambdaTimers)
	if opt.visibility == 0 {
		opt.visibility = 180 * time.Second
	}
	if opt.maxReceive == 0 {
		opt.maxReceive = 5
	}
	must(t, w.aws.SQS().SetVisibilityTimeout(lambdaJobs, opt.visibility))
	must(t, w.aws.SQS().SetVisibilityTimeout(lambdaDLQ, 900*time.Second))
	must(t, w.aws.SQS().SetRedrivePolicy(lambdaJobs, lambdaDLQ, opt.maxReceive))

	srv := httptest.NewServer(w.rt)
	t.Cleanup(srv.Close)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://"),
		"TOKKEN_ROLE=worker",
		"TOKKEN_STORE=dynamodb:tokken",
		"TOKKEN_QUEUE_URL=" + queueURL,
		"TOKKEN_QUEUE_ARN=" + queueARN,
		"TOKKEN_SCHEDULER_GROUP=" + lambdaTimers,
		"TOKKEN_SCHEDULER_ROLE_ARN=" + lambdaSchedRole,
		"TOKKEN_TIMER_DLQ_ARN=" + dlqARN,
		// template.yaml fences grants off tokken's own resources.
		"TOKKEN_PROTECTED_ARNS=" + strings.Join([]string{queueARN, dlqARN, "arn:aws:dynamodb:" + awsfake.Region + ":222222222222:table/tokken"}, ","),
		"SLACK_BOT_TOKEN=" + w.slack.Token(),
		"SLACK_SIGNING_SECRET=" + w.slack.SigningSecret(),
		"SLACK_API_URL=" + w.slack.APIURL(),
		"TOKKEN_POLICY_DIR=" + policyDir,
		"TOKKEN_DOMAIN_CHANNEL=" + domainChannel,
		"TOKKEN_AUDIT_CHANNEL=" + auditChannel,
		"TOKKEN_LOG_LEVEL=debug",
	}
	for k, v := range w.aws.Env() {
		env = append(env, k+"="+v)
	}
	// tokken runs in the staging account, where staging-admin lives.
	env = append(env, "AWS_ACCESS_KEY_ID="+stageWorkerKey, awsconfig.EndpointEnvVar("DynamoDB")+"="+ddb.Endpoint())
	env = append(env, opt.env...)

	cmd := exec.Command(binary)
	cmd.Env, cmd.Dir = env, t.TempDir()
	cmd.Stdout, cmd.Stderr = &w.logs, &w.logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("worker logs:\n%s\nslack:\n%s", w.logs.String(), w.slack.Dump(40))
		}
	})
	select {
	case <-w.rt.FirstPoll():
	case ie := <-w.rt.InitErrors():
		cancel()
		t.Fatalf("the worker failed to start: %s %s\n%s", ie.ErrorType, ie.Body, w.logs.String())
	case <-time.After(waitLong):
		cancel()
		t.Fatalf("the worker did not start\n%s", w.logs.String())
	}
	for _, q := range []string{lambdaJobs, lambdaDLQ} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.aws.SQS().EventSource(ctx, q, 10, w.invoker(q)); err != nil {
				t.Errorf("event source %s: %v", q, err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.aws.Scheduler().Run(ctx, lambdaTimers); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	}()
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// invoker invokes the worker with an SQS event from queue, as Lambda does
// (30 s timeout, template.yaml), and counts the invocation.
func (w *lambdaWorld) invoker(queue string) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		inv := invocation{queue: queue, at: time.Now()}
		for _, r := range ev.Records {
			var j bot.Job
			_ = json.Unmarshal([]byte(r.Body), &j)
			inv.kinds = append(inv.kinds, j.Kind)
		}
		w.mu.Lock()
		w.invocations = append(w.invocations, inv)
		w.mu.Unlock()
		payload, err := json.Marshal(ev)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		res, err := w.rt.Invoke(ctx, payload, 30*time.Second)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		if res.Error {
			return events.SQSEventResponse{}, fmt.Errorf("the function failed: %s %s", res.ErrorType, res.Body)
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(res.Body, &resp); err != nil {
			return resp, fmt.Errorf("SQS response %q: %w", res.Body, err)
		}
		return resp, nil
	}
}

// jobsRun counts the jobs of kind the worker was invoked with since from
// (from any queue when queue is empty).
func (w *lambdaWorld) jobsRun(queue, kind string, from time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, inv := range w.invocations {
		if inv.at.Before(from) || (queue != "" && inv.queue != queue) {
			continue
		}
		for _, k := range inv.kinds {
			if k == kind {
				n++
			}
		}
	}
	return n
}

// invocationsSince counts the worker's invocations since from.
func (w *lambdaWorld) invocationsSince(from time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, inv := range w.invocations {
		if !inv.at.Before(from) {
			n++
		}
	}
	return n
}

// enqueue puts j on the job queue as the ingress does (sqsqueue.Encode).
func (w *lambdaWorld) enqueue(j bot.Job) {
	w.t.Helper()
	body, err := sqsqueue.Encode(j)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.aws.SQS().Send(lambdaJobs, body); err != nil {
		w.t.Fatal(err)
	}
}

// domainCommand enqueues "/domain <text>" typed by user and returns the
// operation id.
func (w *lambdaWorld) domainCommand(user, text string) string {
	w.t.Helper()
	c, err := domainjoin.ParseCommand(text)
	if err != nil {
		w.t.Fatal(err)
	}
	j, err := domainjoin.NewCommandJob(c, bot.Principal{ID: user}, domainjoin.ReplyTo{User: user, ResponseURL: w.slack.ResponseURL("R-" + user)})
	if err != nil {
		w.t.Fatal(err)
	}
	w.enqueue(j)
	var req domainjoin.CommandRequest
	must(w.t, j.Decode(&req))
	return req.OpID
}

// accessRequest enqueues "/access <profile> <d> <reason>" typed by user:
// the access.submit job the ingress enqueues for a slash command.
func (w *lambdaWorld) accessRequest(user, profile string, d time.Duration, reason string) {
	w.t.Helper()
	payload := map[string]any{
		"input":        map[string]any{"Requester": user, "Profile": profile, "Duration": d, "Reason": reason},
		"response_url": w.slack.ResponseURL("R-" + user),
	}
	j, err := bot.NewJob("access-submit/cmd/"+user, "access.submit", payload)
	if err != nil {
		w.t.Fatal(err)
	}
	w.enqueue(j)
}

// waitSlack waits until cond holds for Slack.
func (w *lambdaWorld) waitSlack(what string, cond func(f *slackfake.Fake) bool) {
	w.t.Helper()
	w.slack.WaitFor(w.t, waitLong, cond)
}

// hasText reports whether any message contains every one of want.
func hasText(msgs []slackfake.Message, want ...string) bool {
	return slices.ContainsFunc(msgs, func(m slackfake.Message) bool {
		j := messageJSON(m)
		for _, s := range want {
			if !strings.Contains(m.Text, s) && !strings.Contains(j, s) {
				return false
			}
		}
		return true
	})
}

// TestLambdaWorkerIsQuietWhileWaiting: a domain operation waiting on a
// reboot and a one-minute grant waiting to expire cost the worker one
// invocation per check interval (and no expiry run before the grant's
// end), not a loop of invocations and AWS calls.
func TestLambdaWorkerIsQuietWhileWaiting(t *testing.T) {
	t.Parallel()
	w := newLambdaWorld(t, lambdaOptions{env: []string{"TOKKEN_DOMAIN_CHECK_EVERY=1s"}})
	const id = "i-0a1b2c3d4e5f60799"
	w.aws.EC2().AddInstance(awsfake.Instance{ID: id, Name: "win-quiet-01", Platform: "windows", Tags: map[string]string{"Env": "staging"}})

	// A one-minute grant: active, its expiry timer armed.
	w.accessRequest(developer, "staging-admin", time.Minute, "try the migration")
	w.waitSlack("credentials", func(f *slackfake.Fake) bool { return hasText(f.DMs(developer), "export AWS_SECRET_ACCESS_KEY") })
	// A domain join whose instance never reports after its reboot.
	op := w.domainCommand(winAdmin, "join win-quiet-01")
	w.waitSlack("reboot", func(f *slackfake.Fake) bool {
		return slices.ContainsFunc(f.ResponsePosts("R-"+winAdmin), func(c slackfake.Call) bool { return strings.Contains(c.Text, "Started "+op) })
	})

	// The quiet stretch: four progress checks, one a second.
	from := time.Now()
	calls := len(w.aws.Calls("", ""))
	const checks = 4
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.aws.WaitFor(ctx, func() bool { return w.jobsRun(lambdaJobs, domainjoin.KindCheck, from) >= checks }); err != nil {
		t.Fatalf("%d progress checks in %s: %v", w.jobsRun(lambdaJobs, domainjoin.KindCheck, from), time.Since(from), err)
	}
	elapsed := time.Since(from)
	invocations := w.invocationsSince(from)
	var describes, sends, schedules int
	for _, c := range w.aws.Calls("", "")[calls:] {
		switch {
		case c.Operation == "DescribeInstances":
			describes++
		case c.Operation == "SendMessage":
			sends++
		case c.Service == awsfake.SchedulerService:
			schedules++
		}
	}
	t.Logf("quiet stretch of %s: %d invocations, %d DescribeInstances, %d SendMessage, %d Scheduler calls", elapsed, invocations, describes, sends, schedules)
	if elapsed < (checks-1)*time.Second {
		t.Errorf("%d progress checks ran in %s; with TOKKEN_DOMAIN_CHECK_EVERY=1s they take at least %s", checks, elapsed, (checks-1)*time.Second)
	}
	// Each check is one invocation, one DescribeInstances, one SendMessage
	// (the next check, delayed) and one DeleteSchedule (a replaced
	// schedule); a check may be in flight at either end of the stretch.
	if limit := checks + 2; invocations > limit || describes > limit || sends > limit || schedules > limit {
		t.Errorf("over %s: %d invocations, %d DescribeInstances, %d SendMessage, %d Scheduler calls; want at most %d of each",
			elapsed, invocations, describes, sends, schedules, limit)
	}
	if n := w.jobsRun("", "access.expire", time.Time{}); n != 0 {
		t.Errorf("the expiry of a one-minute grant ran %d times in its first seconds; it must wait for its time", n)
	}
	var delayed bool
	for _, m := range w.aws.SQS().Messages(lambdaJobs) {
		if strings.Contains(m.Body, `"access.expire"`) && m.VisibleAt.After(time.Now().Add(30*time.Second)) {
			delayed = true
		}
	}
	if !delayed {
		t.Error("no expiry job waits on the queue for the grant's end")
	}
}

// TestLambdaDeadJobFailsTheDomainOperation: CreateTags fails on every try;
// the command job is retried until SQS moves it to the dead-letter queue,
// the worker takes it from there and gives it up: the operation fails, the
// requester is told, the operators get an alert naming the operation and
// the job, and the dead-letter alert names the job. The timeout was armed
// all along.
func TestLambdaDeadJobFailsTheDomainOperation(t *testing.T) {
	t.Parallel()
	w := newLambdaWorld(t, lambdaOptions{visibility: time.Second, maxReceive: 3, env: []string{"TOKKEN_DOMAIN_CHECK_EVERY=1s", "AWS_MAX_ATTEMPTS=2"}})
	const id = "i-0a1b2c3d4e5f6079a"
	w.aws.EC2().AddInstance(awsfake.Instance{ID: id, Name: "win-tagfail-01", Platform: "windows", Tags: map[string]string{"Env": "staging"}})
	w.aws.Fail(awsfake.EC2Service, "CreateTags", 1000, awsfake.Internal)

	op := w.domainCommand(winAdmin, "join win-tagfail-01")
	w.waitSlack("failure", func(f *slackfake.Fake) bool { return hasText(f.DMs(winAdmin), op, "failed", "gave up") })
	w.waitSlack("alert", func(f *slackfake.Fake) bool {
		return hasText(f.Messages(opsChannel), op, "win-tagfail-01", "domain.command")
	})

	if n := w.jobsRun(lambdaDLQ, domainjoin.KindCommand, time.Time{}); n < 1 {
		t.Errorf("the command job reached the worker from the dead-letter queue %d times, want it given up from there", n)
	}
	if n := w.jobsRun(lambdaJobs, domainjoin.KindCommand, time.Time{}); n != 3 {
		t.Errorf("the command job ran %d times from the job queue, want 3 (the receive limit)", n)
	}
	if n := w.jobsRun(lambdaJobs, domainjoin.KindCheck, time.Time{}); n == 0 {
		t.Error("no progress check ran while tagging kept failing: the timeout was not armed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.aws.WaitFor(ctx, func() bool { return len(w.aws.SQS().Messages(lambdaDLQ)) == 0 }); err != nil {
		t.Errorf("the dead job stays in the dead-letter queue: %v", err)
	}
	if n := len(w.aws.Calls(awsfake.EC2Service, "RebootInstances")); n != 0 {
		t.Errorf("%d reboots of an instance that was never tagged", n)
	}
	// Dead jobs no feature takes charge of are alerted on by name: an
	// access job (the sweep settles its request) and a message that is no
	// job at all.
	activate, err := bot.NewJob("activate/r-0deadjob0001", "access.activate", map[string]string{"request_id": "r-0deadjob0001"})
	must(t, err)
	body, err := sqsqueue.Encode(activate)
	must(t, err)
	for _, b := range []string{body, "not a job"} {
		if _, err := w.aws.SQS().Send(lambdaDLQ, b); err != nil {
			t.Fatal(err)
		}
	}
	w.waitSlack("job_given_up alerts", func(f *slackfake.Fake) bool {
		return hasText(f.Messages(opsChannel), "access.activate", "activate/r-0deadjob0001", "request_id=r-0deadjob0001") &&
			hasText(f.Messages(opsChannel), "of no known kind", "not a tokken job")
	})
	// The reconcile sweep's dead-letter alert names the jobs.
	w.enqueue(bot.Job{ID: "sweep-1", Kind: "sweep"})
	w.waitSlack("dead-letter alert", func(f *slackfake.Fake) bool {
		return hasText(f.Messages(opsChannel), "dead-letter list", domainjoin.KindCommand+" "+op, "access.activate activate/r-0deadjob0001")
	})
}

// TestLambdaTimeoutFiresWhenTaggingNeverSucceeds: with retries that outlast
// the operation's timeout, the timeout armed at the start ends it.
func TestLambdaTimeoutFiresWhenTaggingNeverSucceeds(t *testing.T) {
	t.Parallel()
	w := newLambdaWorld(t, lambdaOptions{visibility: 2 * time.Second, maxReceive: 1000,
		env: []string{"TOKKEN_DOMAIN_CHECK_EVERY=1s", "TOKKEN_DOMAIN_TIMEOUT=3s", "AWS_MAX_ATTEMPTS=2"}})
	const id = "i-0a1b2c3d4e5f6079b"
	w.aws.EC2().AddInstance(awsfake.Instance{ID: id, Name: "win-tagslow-01", Platform: "windows", Tags: map[string]string{"Env": "staging"}})
	w.aws.Fail(awsfake.EC2Service, "CreateTags", 100000, awsfake.Throttle)

	op := w.domainCommand(winAdmin, "join win-tagslow-01")
	w.waitSlack("timeout", func(f *slackfake.Fake) bool { return hasText(f.DMs(winAdmin), op, "timed out") })
	w.waitSlack("alert", func(f *slackfake.Fake) bool { return hasText(f.Messages(opsChannel), op, "timed out") })
}
