// Command coldstart is tokken's Lambda cold-start proxy. For each of -runs
// runs it serves a fresh fake Lambda Runtime API (bench/lambdart) on
// loopback, starts the Lambda build of tokken (-bootstrap, built for the
// machine it runs on) with AWS_LAMBDA_RUNTIME_API pointing at it, and
// measures:
//
//   - init: from just before the process is started (fork/exec) to its
//     first GET …/invocation/next, i.e. the end of Lambda's init phase;
//   - first invoke: from handing it a signed Function URL request
//     (`/access help`, as Slack sends it) to its answer, checked to be a
//     200 carrying the help text.
//
// The process runs as the ingress (TOKKEN_ROLE=ingress) with a DynamoDB
// store and an SQS queue, as template.yaml deploys it, and reads its Slack
// credentials from Secrets Manager at init (TOKKEN_SECRETS_ARN) as it does
// there: that call goes to testkit/awsfake, served from this process on
// loopback. The ack of a slash command records the delivery in the store
// (so a redelivery runs once): that write goes to DynamoDB Local
// (testkit/ddblocal, started once, table created with dynamostore). Every
// other AWS endpoint points at a closed loopback port (a call there would
// fail and show as an error here).
// One extra run with GODEBUG=inittrace=1 lists the most expensive package
// initialisers. Output: Markdown on stdout, coldstart.json in -out.
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

	"github.com/tokken/tokken/bench/lambdart"
	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/dynamostore"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/ddblocal"
	"github.com/tokken/tokken/testkit/logbuf"
)

// Targets: init and bootstrap size.
const (
	targetInit  = 30 * time.Millisecond
	targetBytes = 20 << 20
)

// secret signs the Function URL request (any value: the process gets it).
const secret = "coldstart-bench-signing-secret"

type options struct {
	bootstrap, arm64, policies, out string
	runs, topInit                   int
}

func main() {
	var o options
	flag.StringVar(&o.bootstrap, "bootstrap", "", "Lambda build of tokken for this machine's architecture (required)")
	flag.StringVar(&o.arm64, "arm64", "", "the arm64 bootstrap `make bootstrap` builds, to report its size (optional)")
	flag.StringVar(&o.policies, "policies", "policies", "tokken policy directory")
	flag.StringVar(&o.out, "out", "bench/out", "directory for coldstart.json and the last run's log")
	flag.IntVar(&o.runs, "runs", 20, "cold starts measured")
	flag.IntVar(&o.topInit, "top", 10, "package initialisers listed")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

// Start is one measured cold start.
type Start struct {
	Init        time.Duration `json:"init_ns"`
	FirstInvoke time.Duration `json:"first_invoke_ns"`
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
	Date        time.Time     `json:"date"`
	Starts      []Start       `json:"starts"`
	InitP50     time.Duration `json:"init_p50_ns"`
	InitP90     time.Duration `json:"init_p90_ns"`
	InvokeP50   time.Duration `json:"first_invoke_p50_ns"`
	InvokeP90   time.Duration `json:"first_invoke_p90_ns"`
	LocalBytes  int64         `json:"bootstrap_bytes"`
	Arm64Bytes  int64         `json:"arm64_bootstrap_bytes,omitempty"`
	InitTotal   time.Duration `json:"package_init_total_ns"`
	InitPackage int           `json:"package_inits"`
	// MainAt is when the last package initialiser ended (main starts):
	// runtime start-up plus package init, in the inittrace run.
	MainAt   time.Duration `json:"main_at_ns"`
	TopInits []PackageInit `json:"top_package_inits"`
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.bootstrap == "" {
		return errors.New("-bootstrap is required")
	}
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	// The function runs in the bootstrap's directory, as on Lambda (its
	// task root): resolve the path before that.
	bootstrap, err := filepath.Abs(o.bootstrap)
	if err != nil {
		return err
	}
	o.bootstrap = bootstrap
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	policies, err := filepath.Abs(o.policies)
	if err != nil {
		return err
	}
	rep := Report{Date: time.Now().UTC()}
	if rep.LocalBytes, err = size(o.bootstrap); err != nil {
		return err
	}
	if o.arm64 != "" {
		if rep.Arm64Bytes, err = size(o.arm64); err != nil {
			return err
		}
	}

	tb := peer.NewTB()
	defer tb.Close()
	aws, stopAWS, err := startAWS(ctx, tb)
	if err != nil {
		return err
	}
	defer stopAWS()
	var inits, invokes []time.Duration
	for i := range o.runs {
		s, _, err := coldStart(ctx, o.bootstrap, policies, aws, nil, io.Discard)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		rep.Starts = append(rep.Starts, s)
		inits, invokes = append(inits, s.Init), append(invokes, s.FirstInvoke)
	}
	slices.Sort(inits)
	slices.Sort(invokes)
	rep.InitP50, rep.InitP90 = loadgen.Percentile(inits, 50), loadgen.Percentile(inits, 90)
	rep.InvokeP50, rep.InvokeP90 = loadgen.Percentile(invokes, 50), loadgen.Percentile(invokes, 90)

	logf, err := os.Create(filepath.Join(o.out, "coldstart-inittrace.log"))
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	_, trace, err := coldStart(ctx, o.bootstrap, policies, aws, []string{"GODEBUG=inittrace=1"}, logf)
	logf.Close()
	if err != nil {
		return fmt.Errorf("inittrace run: %w", err)
	}
	all := ParseInitTrace(trace)
	rep.InitPackage = len(all)
	for _, p := range all {
		rep.InitTotal += p.Clock
		rep.MainAt = max(rep.MainAt, p.At+p.Clock)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Clock > all[j].Clock })
	rep.TopInits = all[:min(o.topInit, len(all))]

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "coldstart.json"), append(data, '\n'), 0o644); err != nil {
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

// lambdaEnv is the environment of the function: what Lambda sets for a
// provided.al2023 function, and tokken's ingress configuration with its
// secrets in the fake Secrets Manager and every other AWS endpoint on a
// closed port.
func lambdaEnv(runtimeAPI, policies string, aws awsEnv) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME=tokken-bench",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"_HANDLER=bootstrap",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=" + awsfake.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + awsfake.SecretAccessKey,
		"AWS_SESSION_TOKEN=bench",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=http://127.0.0.1:9",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + aws.endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + aws.dynamodb,
		"TOKKEN_ROLE=ingress",
		"TOKKEN_STORE=dynamodb:" + table,
		"TOKKEN_QUEUE_URL=http://127.0.0.1:9/123456789012/tokken-jobs",
		"TOKKEN_POLICY_DIR=" + policies,
		"TOKKEN_SECRETS_ARN=" + aws.secretARN,
		"SLACK_API_URL=http://127.0.0.1:9/api/",
	}
}

// table is the DynamoDB table the function uses.
const table = "tokken-bench"

// awsEnv is where the function finds its secrets and its table.
type awsEnv struct {
	endpoint, secretARN string
	dynamodb            string
}

// startAWS serves the fake Secrets Manager holding the function's Slack
// credentials, as template.yaml's SlackSecret does, and DynamoDB Local
// with the table. The returned stop ends DynamoDB Local.
func startAWS(ctx context.Context, tb *peer.TB) (awsEnv, func(), error) {
	f := awsfake.New(tb)
	value, err := json.Marshal(map[string]string{"SLACK_SIGNING_SECRET": secret, "SLACK_BOT_TOKEN": "xoxb-bench-placeholder"})
	if err != nil {
		return awsEnv{}, nil, err
	}
	ddb, err := ddblocal.Start(ctx)
	if err != nil {
		return awsEnv{}, nil, fmt.Errorf("DynamoDB Local (./scripts/install-test-deps.sh installs it): %w", err)
	}
	store := dynamostore.New(ddb.Client(), table)
	if err := store.CreateTable(ctx); err != nil {
		ddb.Stop()
		return awsEnv{}, nil, fmt.Errorf("create table %s: %w", table, err)
	}
	// The emulator's JVM is slow on its first writes; warm it so the first
	// invokes measure tokken, not the JIT of DynamoDB Local.
	for i := range 200 {
		if _, err := store.Put(ctx, bot.Record{Kind: "bench-warmup", Key: strconv.Itoa(i), Data: []byte(`{}`)}); err != nil {
			ddb.Stop()
			return awsEnv{}, nil, fmt.Errorf("warm DynamoDB Local: %w", err)
		}
	}
	return awsEnv{endpoint: f.URL(), secretARN: f.SecretsManager().Put("tokken/slack", string(value)), dynamodb: ddb.Endpoint()}, ddb.Stop, nil
}

// coldStart runs the bootstrap once against a fresh fake runtime API and
// returns the timings and the process's output.
func coldStart(ctx context.Context, bootstrap, policies string, aws awsEnv, extraEnv []string, logw io.Writer) (Start, string, error) {
	rt := lambdart.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Start{}, "", fmt.Errorf("runtime API listener: %w", err)
	}
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var out logbuf.Buffer
	p, err := peer.Start(ctx, peer.Spec{
		Name: "tokken-lambda", Path: bootstrap, Dir: filepath.Dir(bootstrap),
		Env: append(lambdaEnv(ln.Addr().String(), policies, aws), extraEnv...),
		Log: io.MultiWriter(&out, logw),
	}, 0)
	if err != nil {
		return Start{}, "", err
	}
	defer func() { _ = p.Stop(0) }() // Lambda freezes or kills; no graceful exit to wait for

	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case <-rt.FirstPoll():
	case ie := <-rt.InitErrors():
		return Start{}, out.String(), fmt.Errorf("init error %s: %s", ie.ErrorType, ie.Body)
	case <-p.Done():
		return Start{}, out.String(), fmt.Errorf("exited before polling: %v\n%s", p.Err(), tail(out.String()))
	case <-timeout.C:
		return Start{}, out.String(), fmt.Errorf("no poll within 10s\n%s", tail(out.String()))
	case <-ctx.Done():
		return Start{}, out.String(), ctx.Err()
	}
	s := Start{Init: rt.FirstPollAt().Sub(p.Started)}

	event, err := functionURLEvent(time.Now())
	if err != nil {
		return s, out.String(), err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sent := time.Now()
	res, err := rt.Invoke(ictx, event, 3*time.Second)
	if err != nil {
		return s, out.String(), fmt.Errorf("first invoke: %w\n%s", err, tail(out.String()))
	}
	s.FirstInvoke = res.Done.Sub(sent)
	if err := checkAnswer(res); err != nil {
		return s, out.String(), fmt.Errorf("first invoke: %w\nfunction output:\n%s", err, tail(out.String()))
	}
	return s, out.String(), nil
}

// functionURLEvent is the Function URL event Lambda delivers when Slack
// POSTs `/access help` to the ingress: lower-case headers, the form body
// base64-encoded.
func functionURLEvent(now time.Time) ([]byte, error) {
	b, err := loadgen.NewBuilder(loadgen.Payload{Kind: loadgen.KindCommand, Command: "/access", Text: "help"}, []byte(secret))
	if err != nil {
		return nil, err
	}
	req, err := b.Request("https://bench.lambda-url.us-east-1.on.aws", 1, now)
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
		Version: "2.0", RawPath: "/slack/commands", Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID: "123456789012", RequestID: "bench-request", DomainName: "bench.lambda-url.us-east-1.on.aws",
			DomainPrefix: "bench", TimeEpoch: now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: http.MethodPost, Path: "/slack/commands", Protocol: "HTTP/1.1", SourceIP: "203.0.113.10", UserAgent: req.UserAgent(),
			},
		},
	}
	return json.Marshal(ev)
}

// checkAnswer requires a Function URL response 200 with the help text.
func checkAnswer(res lambdart.Result) error {
	if res.Error {
		return fmt.Errorf("function error %s: %s", res.ErrorType, res.Body)
	}
	var r events.LambdaFunctionURLResponse
	if err := json.Unmarshal(res.Body, &r); err != nil {
		return fmt.Errorf("not a Function URL response: %w: %s", err, res.Body)
	}
	body := r.Body
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return fmt.Errorf("response body: %w", err)
		}
		body = string(b)
	}
	if r.StatusCode != http.StatusOK || !strings.Contains(body, "time-boxed AWS access") {
		return fmt.Errorf("answer %d %q, want 200 with the /access help", r.StatusCode, body)
	}
	return nil
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
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(w, "Lambda cold-start proxy, %s, %d runs.\n\n", rep.Date.Format("2006-01-02 15:04 MST"), runs)
	fmt.Fprintln(w, "| measure | p50 | p90 | target |")
	fmt.Fprintln(w, "|---|--:|--:|---|")
	fmt.Fprintf(w, "| process start → first /next poll (init) | %s | %s | ≤ %s: %s |\n", ms(rep.InitP50), ms(rep.InitP90), ms(targetInit), verdict(rep.InitP90 <= targetInit))
	fmt.Fprintf(w, "| first invoke (signed `/access help` Function URL event) | %s | %s | |\n\n", ms(rep.InvokeP50), ms(rep.InvokeP90))
	fmt.Fprintf(w, "- bootstrap size: this machine's build %s", mib(rep.LocalBytes))
	if rep.Arm64Bytes > 0 {
		fmt.Fprintf(w, "; arm64 (`make bootstrap`) %s (target ≤ 20 MiB: %s)", mib(rep.Arm64Bytes), verdict(rep.Arm64Bytes <= targetBytes))
	}
	fmt.Fprintf(w, "\n- package init (GODEBUG=inittrace=1): %d initialisers, %s in total; main starts %s after the process (in that traced run); the most expensive:\n\n",
		rep.InitPackage, ms(rep.InitTotal), ms(rep.MainAt))
	fmt.Fprintln(w, "| package | clock | bytes | allocs |")
	fmt.Fprintln(w, "|---|--:|--:|--:|")
	for _, p := range rep.TopInits {
		fmt.Fprintf(w, "| %s | %s | %d | %d |\n", p.Package, ms(p.Clock), p.Bytes, p.Allocs)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
