// Command lambdabench measures tokken's Lambda ingress as Lambda would run
// and bill it, without AWS: it serves a fake Lambda Runtime API
// (testkit/lambdart) on loopback and starts the IngressFunction's artifact
// (-tokken: the Makefile's build-IngressFunction, built for this machine)
// with AWS_LAMBDA_RUNTIME_API pointing at it.
//
// Cold start: -runs times, alternating with a minimal aws-lambda-go
// function built the same way (-minimal, bench/cmd/minimal), so both are
// measured under the same load of a shared machine, it measures
//
//   - init: from just before the process is started (fork/exec) to its
//     first GET …/invocation/next, i.e. the end of Lambda's init phase;
//   - first request: from handing it a signed Function URL request
//     (`/access help`, as Slack sends it) to its answer, checked.
//
// With -floor (bench/cmd/awsfloor, built like tokken's bootstrap) a third
// function alternates with them: the least a Slack ingress does with the
// same environment (its signing secret from Secrets Manager at init; for
// the command, the signature checked, slack-go's parse, the delivery
// recorded in DynamoDB Local, the help text answered). tokken ÷ floor is
// what tokken's own start-up and first answer add to what the template's
// environment requires; floor ÷ minimal is what that environment costs.
//
// Warm requests: one more tokken process then answers -warm signed slash
// commands (`/access prod-readonly 1h …`: the ingress records the delivery
// and enqueues the request's check for the worker on SQS) and -warm clicks
// (an alert's Acknowledge button: the delivery recorded, the alert looked
// up, the clicker told it is unknown with chat.postEphemeral), one at a
// time as one Lambda instance receives them: wall time per request is
// what Lambda bills.
//
// The process runs as the ingress (TOKKEN_ROLE=ingress) with the
// environment template.yaml gives it: a DynamoDB table (DynamoDB Local,
// testkit/ddblocal, table created with dynamostore), an SQS queue
// (testkit/awsfake), and its Slack credentials read from Secrets Manager
// at init (testkit/awsfake too). Slack is testkit/slackfake. Every other
// AWS endpoint points at a closed loopback port (a call there would fail
// and show as an error here). One extra cold start with
// GODEBUG=inittrace=1 lists the most expensive package initialisers.
// Output: Markdown on stdout, lambda.json in -out.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/dynamostore"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/ddblocal"
	"github.com/tokken/tokken/testkit/lambdart"
	"github.com/tokken/tokken/testkit/logbuf"
	"github.com/tokken/tokken/testkit/slackfake"
)

// Goals: a cold start (init + first request) within maxColdRatio of the
// minimal function's, and a bootstrap that fits Lambda's limits with room.
const (
	maxColdRatio = 2.0
	maxBytes     = 20 << 20
)

// secret signs the Function URL requests (any value: the process reads it
// from the fake Secrets Manager).
const secret = "lambdabench-signing-secret"

// queueName is the SQS queue of the ingress's jobs.
const queueName = "tokken-jobs"

type options struct {
	tokken, minimal, floor, arm64, policies, out string
	runs, warm, top                              int
}

func main() {
	var o options
	flag.StringVar(&o.tokken, "tokken", "", "the IngressFunction's bootstrap (make build-IngressFunction LAMBDA_ARCH=<this machine's>) (required)")
	flag.StringVar(&o.minimal, "minimal", "", "bench/cmd/minimal built the same way (required)")
	flag.StringVar(&o.floor, "floor", "", "bench/cmd/awsfloor built the same way, measured beside them (optional)")
	flag.StringVar(&o.arm64, "arm64", "", "the arm64 bootstrap `make build-IngressFunction` builds, to report its size (optional)")
	flag.StringVar(&o.policies, "policies", "policies", "tokken policy directory")
	flag.StringVar(&o.out, "out", "bench/out", "directory for lambda.json and the traced run's log")
	flag.IntVar(&o.runs, "runs", 20, "cold starts measured of each function")
	flag.IntVar(&o.warm, "warm", 500, "warm requests measured of each kind (0 skips them)")
	flag.IntVar(&o.top, "top", 8, "package initialisers listed")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lambdabench:", err)
		os.Exit(1)
	}
}

// Start is one measured cold start: wall times, and the CPU time the
// process used by the end of each (on a shared machine wall time follows
// the load; CPU time is what a Lambda's fraction of a vCPU turns into
// wall time).
type Start struct {
	Init     time.Duration `json:"init_ns"`
	First    time.Duration `json:"first_request_ns"`
	InitCPU  time.Duration `json:"init_cpu_ns"`
	TotalCPU time.Duration `json:"total_cpu_ns"`
}

// Total is what the cold start costs the first request: init and answer.
func (s Start) Total() time.Duration { return s.Init + s.First }

// Function is one function's cold starts.
type Function struct {
	Name     string        `json:"name"`
	Bytes    int64         `json:"bootstrap_bytes"`
	Starts   []Start       `json:"starts"`
	InitP50  time.Duration `json:"init_p50_ns"`
	InitP90  time.Duration `json:"init_p90_ns"`
	FirstP50 time.Duration `json:"first_request_p50_ns"`
	FirstP90 time.Duration `json:"first_request_p90_ns"`
	TotalP50 time.Duration `json:"total_p50_ns"`
	// InitCPUP50 and TotalCPUP50 are the CPU time used by the first poll
	// and by the first answer.
	InitCPUP50  time.Duration `json:"init_cpu_p50_ns"`
	TotalCPUP50 time.Duration `json:"total_cpu_p50_ns"`
}

func (f *Function) summarise() {
	var inits, firsts, totals, initCPU, totalCPU []time.Duration
	for _, s := range f.Starts {
		inits, firsts, totals = append(inits, s.Init), append(firsts, s.First), append(totals, s.Total())
		initCPU, totalCPU = append(initCPU, s.InitCPU), append(totalCPU, s.TotalCPU)
	}
	for _, ds := range [][]time.Duration{inits, firsts, totals, initCPU, totalCPU} {
		slices.Sort(ds)
	}
	f.InitCPUP50, f.TotalCPUP50 = loadgen.Percentile(initCPU, 50), loadgen.Percentile(totalCPU, 50)
	f.InitP50, f.InitP90 = loadgen.Percentile(inits, 50), loadgen.Percentile(inits, 90)
	f.FirstP50, f.FirstP90 = loadgen.Percentile(firsts, 50), loadgen.Percentile(firsts, 90)
	f.TotalP50 = loadgen.Percentile(totals, 50)
}

// PackageInit is one line of GODEBUG=inittrace=1 output.
type PackageInit struct {
	Package string `json:"package"`
	// At is when the initialiser started, since the process started.
	At     time.Duration `json:"at_ns"`
	Clock  time.Duration `json:"clock_ns"`
	Bytes  int64         `json:"bytes"`
	Allocs int64         `json:"allocs"`
}

// Report is the whole run.
type Report struct {
	Date    time.Time `json:"date"`
	Tokken  Function  `json:"tokken"`
	Minimal Function  `json:"minimal"`
	// Floor is bench/cmd/awsfloor's, when it was measured.
	Floor *Function `json:"floor,omitempty"`
	// ColdRatio is tokken's median init + first request over the minimal
	// function's.
	ColdRatio float64 `json:"cold_ratio"`
	// CPURatio is the same ratio of the CPU time used by the first answer.
	CPURatio   float64 `json:"cold_cpu_ratio"`
	Arm64Bytes int64   `json:"arm64_bootstrap_bytes,omitempty"`
	// Warm holds the warm runs (command, click) of one tokken instance.
	Warm []loadgen.Result `json:"warm,omitempty"`
	// WarmCheck is a problem found with the warm answers' side effects.
	WarmCheck   string        `json:"warm_check,omitempty"`
	InitTotal   time.Duration `json:"package_init_total_ns"`
	InitPackage int           `json:"package_inits"`
	// MainAt is when the last package initialiser ended (main starts):
	// runtime start-up plus package init, in the inittrace run.
	MainAt   time.Duration `json:"main_at_ns"`
	TopInits []PackageInit `json:"top_package_inits"`
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.tokken == "" || o.minimal == "" {
		return errors.New("-tokken and -minimal are required")
	}
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	// The function runs in the bootstrap's directory, as on Lambda (its
	// task root): resolve the paths before that.
	for _, p := range []*string{&o.tokken, &o.minimal, &o.floor, &o.policies} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	rep := Report{Date: time.Now().UTC(), Tokken: Function{Name: "tokken ingress"}, Minimal: Function{Name: "minimal aws-lambda-go function"}}
	var err error
	for _, s := range []struct {
		path string
		n    *int64
	}{{o.tokken, &rep.Tokken.Bytes}, {o.minimal, &rep.Minimal.Bytes}, {o.arm64, &rep.Arm64Bytes}} {
		if s.path == "" {
			continue
		}
		if *s.n, err = size(s.path); err != nil {
			return err
		}
	}

	tb := peer.NewTB()
	defer tb.Close()
	env, stopPeers, err := startPeers(ctx, tb)
	if err != nil {
		return err
	}
	defer stopPeers()
	tokken := fn{path: o.tokken, env: env.lambdaEnv(o.policies), answer: helpAnswer}
	minimal := fn{path: o.minimal, env: baseEnv(), answer: okAnswer}
	type measured struct {
		f *fn
		r *Function
	}
	fns := []measured{{&tokken, &rep.Tokken}, {&minimal, &rep.Minimal}}
	if o.floor != "" {
		rep.Floor = &Function{Name: "floor: secret, slack-go parse, DynamoDB delivery"}
		if rep.Floor.Bytes, err = size(o.floor); err != nil {
			return err
		}
		fns = append(fns, measured{&fn{path: o.floor, env: env.lambdaEnv(o.policies), answer: helpAnswer}, rep.Floor})
	}
	for i := range o.runs {
		// Rotate which goes first, so a trend in the machine's load weighs
		// on all alike.
		order := append(fns[i%len(fns):], fns[:i%len(fns)]...)
		for _, x := range order {
			s, err := x.f.coldStart(ctx, nil, io.Discard, nil)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", x.r.Name, i+1, err)
			}
			x.r.Starts = append(x.r.Starts, s)
		}
	}
	for _, x := range fns {
		x.r.summarise()
	}
	if rep.Minimal.TotalP50 > 0 {
		rep.ColdRatio = float64(rep.Tokken.TotalP50) / float64(rep.Minimal.TotalP50)
	}
	if rep.Minimal.TotalCPUP50 > 0 {
		rep.CPURatio = float64(rep.Tokken.TotalCPUP50) / float64(rep.Minimal.TotalCPUP50)
	}

	if o.warm > 0 {
		if rep.Warm, rep.WarmCheck, err = warm(ctx, tokken, env, o.warm); err != nil {
			return fmt.Errorf("warm requests: %w", err)
		}
	}

	logf, err := os.Create(filepath.Join(o.out, "lambda-inittrace.log"))
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	var trace logbuf.Buffer
	_, err = tokken.coldStart(ctx, []string{"GODEBUG=inittrace=1"}, io.MultiWriter(logf, &trace), nil)
	logf.Close()
	if err != nil {
		return fmt.Errorf("inittrace run: %w", err)
	}
	all := ParseInitTrace(trace.String())
	rep.InitPackage = len(all)
	for _, p := range all {
		rep.InitTotal += p.Clock
		rep.MainAt = max(rep.MainAt, p.At+p.Clock)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Clock > all[j].Clock })
	rep.TopInits = all[:min(o.top, len(all))]

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "lambda.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	writeMarkdown(stdout, rep, o.runs)
	return nil
}

func size(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("bootstrap size: %w", err)
	}
	return fi.Size(), nil
}

// peers is where the function finds its secret, table, queue and Slack.
type peers struct {
	aws       *awsfake.Fake
	secretARN string
	dynamodb  string
	queueURL  string
	slack     *slackfake.Fake
}

// table is the DynamoDB table the function uses.
const table = "tokken-bench"

// startPeers serves the fake Secrets Manager holding the function's Slack
// credentials (as template.yaml's SlackSecret does), the fake SQS queue,
// the fake Slack, and DynamoDB Local with the table. The returned stop
// ends DynamoDB Local.
func startPeers(ctx context.Context, tb *peer.TB) (*peers, func(), error) {
	slack := slackfake.New(tb)
	slack.AddChannel(loadgen.ChannelID, "bench")
	slack.AddUser(slackfake.User{ID: loadgen.UserID, Name: "bench", Email: "bench@example.com", TZ: "Asia/Tokyo"})
	f := awsfake.New(tb)
	value, err := json.Marshal(map[string]string{"SLACK_SIGNING_SECRET": secret, "SLACK_BOT_TOKEN": slack.Token()})
	if err != nil {
		return nil, nil, err
	}
	queueURL, _ := f.SQS().CreateQueue(queueName)
	ddb, err := ddblocal.Start(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("DynamoDB Local (./scripts/install-test-deps.sh installs it): %w", err)
	}
	store := dynamostore.New(ddb.Client(), table)
	if err := store.CreateTable(ctx); err != nil {
		ddb.Stop()
		return nil, nil, fmt.Errorf("create table %s: %w", table, err)
	}
	// The emulator's JVM is slow on its first writes; warm it so the first
	// requests measure tokken, not the JIT of DynamoDB Local.
	for i := range 200 {
		if _, err := store.Put(ctx, bot.Record{Kind: "bench-warmup", Key: strconv.Itoa(i), Data: []byte(`{}`)}); err != nil {
			ddb.Stop()
			return nil, nil, fmt.Errorf("warm DynamoDB Local: %w", err)
		}
	}
	return &peers{aws: f, secretARN: f.SecretsManager().Put("tokken/slack", string(value)), dynamodb: ddb.Endpoint(), queueURL: queueURL, slack: slack}, ddb.Stop, nil
}

// baseEnv is what Lambda sets for any provided.al2023 function (the
// runtime API address is added per start).
func baseEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"AWS_LAMBDA_FUNCTION_NAME=tokken-bench",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"_HANDLER=bootstrap",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + awsfake.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + awsfake.SecretAccessKey,
		"AWS_SESSION_TOKEN=bench",
	}
}

// lambdaEnv is the ingress's environment as template.yaml sets it, its
// peers on loopback and every other AWS endpoint on a closed port.
func (p *peers) lambdaEnv(policies string) []string {
	return append(baseEnv(),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=http://127.0.0.1:9",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+p.aws.URL(),
		"AWS_ENDPOINT_URL_SQS="+p.aws.URL(),
		"AWS_ENDPOINT_URL_DYNAMODB="+p.dynamodb,
		"TOKKEN_ROLE=ingress",
		"TOKKEN_STORE=dynamodb:"+table,
		"TOKKEN_QUEUE_URL="+p.queueURL,
		"TOKKEN_POLICY_DIR="+policies,
		"TOKKEN_SECRETS_ARN="+p.secretARN,
		"TOKKEN_ALERT_CHANNEL="+loadgen.ChannelID,
		"SLACK_API_URL="+p.slack.APIURL(),
	)
}

// fn is a function to start: its bootstrap, environment, and the check of
// its answer to the first request (`/access help`).
type fn struct {
	path   string
	env    []string
	answer func(status int, body string) error
}

// instance is a started function: its runtime API and process.
type instance struct {
	rt  *lambdart.Server
	p   *peer.Process
	out *logbuf.Buffer
}

// coldStart runs the bootstrap once against a fresh fake runtime API and
// measures its init and first request. When keep is non-nil the instance
// is left running in *keep for the caller to use and stop.
func (f fn) coldStart(ctx context.Context, extraEnv []string, logw io.Writer, keep **instance) (Start, error) {
	rt := lambdart.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Start{}, fmt.Errorf("runtime API listener: %w", err)
	}
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	var out logbuf.Buffer
	env := append(slices.Clone(f.env), "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	p, err := peer.Start(ctx, peer.Spec{
		Name: filepath.Base(f.path), Path: f.path, Dir: filepath.Dir(f.path),
		Env: append(env, extraEnv...), Log: io.MultiWriter(&out, logw),
	}, 0)
	if err != nil {
		srv.Close()
		return Start{}, err
	}
	inst := &instance{rt: rt, p: p, out: &out}
	stop := func() {
		_ = p.Stop(0) // Lambda freezes or kills; no graceful exit to wait for
		srv.Close()
	}
	if keep == nil {
		defer stop()
	}

	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case <-rt.FirstPoll():
	case ie := <-rt.InitErrors():
		return Start{}, fmt.Errorf("init error %s: %s", ie.ErrorType, ie.Body)
	case <-p.Done():
		return Start{}, fmt.Errorf("exited before polling: %v\n%s", p.Err(), tail(out.String()))
	case <-timeout.C:
		return Start{}, fmt.Errorf("no poll within 10s\n%s", tail(out.String()))
	case <-ctx.Done():
		return Start{}, ctx.Err()
	}
	s := Start{Init: rt.FirstPollAt().Sub(p.Started)}
	// The process is parked in its long poll for the next event.
	if s.InitCPU, err = processCPU(p.PID); err != nil {
		return s, err
	}
	b, err := loadgen.NewBuilder(loadgen.Payload{Kind: loadgen.KindCommand, Command: "/access", Text: "help"}, []byte(secret))
	if err != nil {
		return s, err
	}
	sent := time.Now()
	res, err := inst.invoke(ctx, b, 1, sent)
	if err != nil {
		return s, fmt.Errorf("first request: %w\n%s", err, tail(out.String()))
	}
	s.First = res.Done.Sub(sent)
	if s.TotalCPU, err = processCPU(p.PID); err != nil {
		return s, err
	}
	status, body, err := decodeAnswer(res)
	if err == nil {
		err = f.answer(status, body)
	}
	if err != nil {
		return s, fmt.Errorf("first request: %w\nfunction output:\n%s", err, tail(out.String()))
	}
	if keep != nil {
		*keep = inst
		context.AfterFunc(ctx, stop)
	}
	return s, nil
}

// invoke sends the builder's request number seq, signed at now, as a
// Function URL event and waits for the answer.
func (in *instance) invoke(ctx context.Context, b *loadgen.Builder, seq uint64, now time.Time) (lambdart.Result, error) {
	event, err := functionURLEvent(b, seq, now)
	if err != nil {
		return lambdart.Result{}, err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return in.rt.Invoke(ictx, event, 3*time.Second)
}

// warm starts one more tokken instance and sends it n signed commands
// and n clicks, one at a time after a warm-up, as one Lambda instance
// receives them. It checks their side effects: every command's job on the
// queue, every click's ephemeral in Slack.
func warm(ctx context.Context, f fn, env *peers, n int) ([]loadgen.Result, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the instance
	var in *instance
	if _, err := f.coldStart(ctx, nil, io.Discard, &in); err != nil {
		return nil, "", err
	}
	const warmup = 50
	runs := []struct {
		payload loadgen.Payload
		want    string
	}{
		{loadgen.Payload{Kind: loadgen.KindCommand, Command: "/access", Text: "prod-readonly 1h lambdabench"}, "Checking your request"},
		{loadgen.Payload{Kind: loadgen.KindInteraction, ActionID: "alert.ack", Value: "bench:no-such-alert"}, ""},
	}
	jobsBefore := len(env.aws.SQS().Messages(queueName))
	ephemeralsBefore := len(env.slack.Ephemerals(loadgen.UserID))
	var results []loadgen.Result
	for _, r := range runs {
		b, err := loadgen.NewBuilder(r.payload, []byte(secret))
		if err != nil {
			return nil, "", err
		}
		send := func(ctx context.Context, seq uint64) (time.Time, error) {
			res, err := in.invoke(ctx, b, seq, time.Now())
			if err != nil {
				return time.Time{}, err
			}
			status, body, err := decodeAnswer(res)
			if err != nil {
				return res.Done, err
			}
			if status != http.StatusOK || !strings.Contains(body, r.want) {
				return res.Done, fmt.Errorf("answer %d %q, want 200 with %q", status, body, r.want)
			}
			return res.Done, nil
		}
		res, err := loadgen.Run(ctx, loadgen.Config{
			Payload: r.payload, Send: send, Target: "Function URL event", Requests: n, Warmup: warmup,
			Duration: 5 * time.Minute, Concurrency: 1, PID: in.p.PID,
		})
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w\n%s", loadgen.RequestName(r.payload.Kind), err, tail(in.out.String()))
		}
		fmt.Fprintf(os.Stderr, "lambdabench: warm %s\n", res)
		results = append(results, res)
	}
	// The ingress answers a click before telling the clicker: wait
	// (bounded) for the last ephemerals.
	want := n + warmup
	env.slack.Until(10*time.Second, func(s *slackfake.Fake) bool { return len(s.Ephemerals(loadgen.UserID))-ephemeralsBefore >= want })
	var check []string
	if got := len(env.aws.SQS().Messages(queueName)) - jobsBefore; got != want {
		check = append(check, fmt.Sprintf("%d commands answered but %d jobs on the queue", want, got))
	}
	if got := len(env.slack.Ephemerals(loadgen.UserID)) - ephemeralsBefore; got != want {
		check = append(check, fmt.Sprintf("%d clicks answered but %d ephemerals posted", want, got))
	}
	return results, strings.Join(check, "; "), nil
}

// functionURLEvent is the Function URL event Lambda delivers when Slack
// POSTs the builder's request number seq to the ingress: lower-case
// headers, the form body base64-encoded.
func functionURLEvent(b *loadgen.Builder, seq uint64, now time.Time) ([]byte, error) {
	req, err := b.Request("https://bench.lambda-url.us-east-1.on.aws", seq, now)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	headers := map[string]string{"host": "bench.lambda-url.us-east-1.on.aws"}
	for k, v := range req.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	ev := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: req.URL.Path, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID: "123456789012", RequestID: "bench-" + strconv.FormatUint(seq, 10), DomainName: "bench.lambda-url.us-east-1.on.aws",
			DomainPrefix: "bench", TimeEpoch: now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: http.MethodPost, Path: req.URL.Path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.10", UserAgent: req.UserAgent(),
			},
		},
	}
	return json.Marshal(ev)
}

// decodeAnswer reads a Function URL response.
func decodeAnswer(res lambdart.Result) (status int, body string, err error) {
	if res.Error {
		return 0, "", fmt.Errorf("function error %s: %s", res.ErrorType, res.Body)
	}
	var r events.LambdaFunctionURLResponse
	if err := json.Unmarshal(res.Body, &r); err != nil {
		return 0, "", fmt.Errorf("not a Function URL response: %w: %s", err, res.Body)
	}
	body = r.Body
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return 0, "", fmt.Errorf("response body: %w", err)
		}
		body = string(b)
	}
	return r.StatusCode, body, nil
}

// helpAnswer requires tokken's answer to `/access help`.
func helpAnswer(status int, body string) error {
	if status != http.StatusOK || !strings.Contains(body, "time-boxed AWS access") {
		return fmt.Errorf("answer %d %q, want 200 with the /access help", status, body)
	}
	return nil
}

// okAnswer requires the minimal function's answer.
func okAnswer(status int, body string) error {
	if status != http.StatusOK || body != "ok" {
		return fmt.Errorf("answer %d %q, want 200 ok", status, body)
	}
	return nil
}

// processCPU is the CPU time the threads of process pid have used, from
// /proc/<pid>/task/*/schedstat (nanoseconds, unlike the 10 ms ticks of
// /proc/<pid>/stat; a Go process's threads live as long as it does).
func processCPU(pid int) (time.Duration, error) {
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(paths) == 0 {
		return 0, fmt.Errorf("schedstat of %d: %v (Linux with schedstats needed)", pid, err)
	}
	var total time.Duration
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, fmt.Errorf("schedstat: %w", err)
		}
		ns, err := ParseSchedstat(string(b))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		total += ns
	}
	return total, nil
}

// ParseSchedstat returns the time on CPU, the first field of a
// /proc/…/schedstat line ("on-cpu-ns wait-ns timeslices").
func ParseSchedstat(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return 0, fmt.Errorf("schedstat %q: want three fields", line)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat %q: %w", line, err)
	}
	return time.Duration(ns), nil
}

var initLine = regexp.MustCompile(`^init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock, ([0-9]+) bytes, ([0-9]+) allocs`)

// ParseInitTrace extracts the package initialisers from GODEBUG=inittrace=1
// output ("init pkg @0.5 ms, 0.02 ms clock, 512 bytes, 3 allocs"); other
// lines are skipped.
func ParseInitTrace(out string) []PackageInit {
	var inits []PackageInit
	for line := range strings.Lines(out) {
		m := initLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		at, err0 := strconv.ParseFloat(m[2], 64)
		ms, err1 := strconv.ParseFloat(m[3], 64)
		b, err2 := strconv.ParseInt(m[4], 10, 64)
		n, err3 := strconv.ParseInt(m[5], 10, 64)
		if err0 != nil || err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		inits = append(inits, PackageInit{Package: m[1], At: msDuration(at), Clock: msDuration(ms), Bytes: b, Allocs: n})
	}
	return inits
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func writeMarkdown(w io.Writer, rep Report, runs int) {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	fmt.Fprintf(w, "Cold start, %d runs of each function, alternating.\n\n", runs)
	fmt.Fprintln(w, "| function | bootstrap | init p50 | init p90 | first request p50 | first request p90 | init + first, p50 | CPU by first poll, p50 | CPU by first answer, p50 |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	fns := []Function{rep.Tokken, rep.Minimal}
	if rep.Floor != nil {
		fns = append(fns, *rep.Floor)
	}
	for _, f := range fns {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Name, mib(f.Bytes), ms(f.InitP50), ms(f.InitP90), ms(f.FirstP50), ms(f.FirstP90), ms(f.TotalP50), ms(f.InitCPUP50), ms(f.TotalCPUP50))
	}
	fmt.Fprintf(w, "\n- tokken ÷ minimal, init + first request (p50): %.2f× wall time (goal ≤ %.0f×: %s), %.2f× CPU time\n",
		rep.ColdRatio, maxColdRatio, loadgen.Verdict(rep.ColdRatio > 0 && rep.ColdRatio <= maxColdRatio), rep.CPURatio)
	if f := rep.Floor; f != nil && f.TotalP50 > 0 && rep.Minimal.TotalP50 > 0 {
		fmt.Fprintf(w, "- floor ÷ minimal: %.2f× wall time, %.2f× CPU time; tokken ÷ floor: %.2f× wall time, %.2f× CPU time\n",
			ratio(f.TotalP50, rep.Minimal.TotalP50), ratio(f.TotalCPUP50, rep.Minimal.TotalCPUP50),
			ratio(rep.Tokken.TotalP50, f.TotalP50), ratio(rep.Tokken.TotalCPUP50, f.TotalCPUP50))
	}
	if rep.Arm64Bytes > 0 {
		fmt.Fprintf(w, "- arm64 bootstrap (`make build-IngressFunction`, what SAM deploys): %s (goal ≤ %s: %s)\n", mib(rep.Arm64Bytes), mib(maxBytes), loadgen.Verdict(rep.Arm64Bytes <= maxBytes))
	}
	fmt.Fprintf(w, "- package init (GODEBUG=inittrace=1, one traced start): %d initialisers, %s in all; main starts %s after the process; the most expensive: ",
		rep.InitPackage, ms(rep.InitTotal), ms(rep.MainAt))
	parts := make([]string, len(rep.TopInits))
	for i, p := range rep.TopInits {
		parts[i] = fmt.Sprintf("%s %s", strings.TrimPrefix(p.Package, "github.com/"), ms(p.Clock))
	}
	fmt.Fprintln(w, strings.Join(parts, ", "))
	if len(rep.Warm) == 0 {
		return
	}
	fmt.Fprintf(w, "\nWarm requests to one ingress instance, one at a time (wall time is what Lambda bills).\n\n")
	fmt.Fprintln(w, "| request | requests | errors | p50 | p90 | p99 | max | CPU/request |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rep.Warm {
		name := "slash command `/access prod-readonly 1h …`"
		if r.Kind == loadgen.KindInteraction {
			name = "click `alert.ack`"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s |\n", name, r.Requests, r.Errors,
			loadgen.FormatDuration(r.P50), loadgen.FormatDuration(r.P90), loadgen.FormatDuration(r.P99), loadgen.FormatDuration(r.Max), loadgen.FormatDuration(r.CPUPerRequest))
	}
	if rep.WarmCheck != "" {
		fmt.Fprintf(w, "\n**check failed: %s**\n", rep.WarmCheck)
	}
	for _, r := range rep.Warm {
		if r.Errors > 0 {
			fmt.Fprintf(w, "\n%s errors, first: %q\n", loadgen.RequestName(r.Kind), r.FirstError)
		}
	}
}

// ratio is a ÷ b, 0 when b is.
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
