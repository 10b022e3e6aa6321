// Command flowbench measures the two end-to-end scenarios that
// the ack benchmark cannot show, against the real `tokken serve` binary
// (-tokken) with an embedded bbolt store in a fresh temporary directory and
// the in-repo fakes served from this process on loopback:
//
//   - approve: a signed `/access prod-readonly 1h …` slash command, the
//     approver message it produces, a signed click on Approve by an
//     allowed approver, and the credentials DM to the requester. The
//     latency measured is from the moment the click is sent to the moment
//     testkit/slackfake records the chat.postMessage that carries the
//     credentials (its Call.At), for runs with 1 and with several flows in
//     flight. AWS is testkit/awsfake (STS, IAM, federation, EC2, SSM); the
//     policies are the shipped set without hours.cedar, so the scenario
//     runs at any hour.
//   - storm: thousands of Mackerel webhooks (shapes from
//     handlers/alertui/testdata, distinct alert ids and hosts) sent open
//     loop with HTTP Basic auth while slackfake enforces one
//     chat.postMessage per second per channel. It reports webhook latency,
//     how long Slack took to list every alert, posts per second per
//     channel, 429s and top-level messages, and — after tokken is stopped —
//     counts the deliveries and alert records in the bolt file, so a lost
//     alert shows. -storm-channels spreads the alerts over up to four
//     channels by the environment word in their host names (routes.yaml
//     routes production, staging and development apart); by default they
//     all go to one channel, C0PRODALERTS.
//
// Every run is bounded by a count and a duration. Nothing leaves loopback.
// Output: Markdown on stdout, flowbench.json and tokken's logs in -out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// options are the command line.
type options struct {
	tokken, policies, testdata, out, scenarios string

	// approve
	flows, warmup int
	inFlight      []int
	flowMax       time.Duration
	stepWait      time.Duration

	// storm
	alerts        int
	stormFor      time.Duration
	drain         time.Duration
	stormChannels int
}

func main() {
	var o options
	var inFlight string
	flag.StringVar(&o.tokken, "tokken", "", "path of the tokken binary (required)")
	flag.StringVar(&o.policies, "policies", "policies", "the shipped policy directory")
	flag.StringVar(&o.testdata, "testdata", "handlers/alertui/testdata", "directory of the Mackerel payload fixtures")
	flag.StringVar(&o.out, "out", "bench/out", "directory for flowbench.json and tokken's logs")
	flag.StringVar(&o.scenarios, "scenarios", "approve,storm", "scenarios to run, comma-separated")
	flag.IntVar(&o.flows, "flows", 200, "approve: measured flows of each run")
	flag.IntVar(&o.warmup, "warmup", 5, "approve: unmeasured flows before the first run")
	flag.StringVar(&inFlight, "in-flight", "1,8", "approve: flows in flight of each run, comma-separated")
	flag.DurationVar(&o.flowMax, "flow-max", 40*time.Second, "approve: wall-time bound of each run (no flow starts after it)")
	flag.DurationVar(&o.stepWait, "step-wait", 20*time.Second, "approve: how long one step of a flow may take before the flow counts as failed")
	flag.IntVar(&o.alerts, "alerts", 5000, "storm: webhooks to send")
	flag.DurationVar(&o.stormFor, "storm-for", 60*time.Second, "storm: the webhooks are spread evenly over this time (open loop)")
	flag.DurationVar(&o.drain, "drain", 20*time.Second, "storm: how long after the last webhook Slack may take to list every alert")
	flag.IntVar(&o.stormChannels, "storm-channels", 1, "storm: channels the alerts are routed to, 1-4 (by the environment word in the host name)")
	flag.Parse()
	var err error
	if o.inFlight, err = parseInts(inFlight); err != nil {
		fmt.Fprintln(os.Stderr, "flowbench: -in-flight:", err)
		os.Exit(2)
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "flowbench:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flowbench:", err)
		os.Exit(1)
	}
}

// check validates the options and makes the paths absolute (tokken runs
// in its own directory).
func (o *options) check() error {
	switch {
	case o.tokken == "":
		return errors.New("-tokken is required")
	case o.flows <= 0 || o.warmup < 0 || o.alerts <= 0:
		return errors.New("-flows and -alerts must be positive, -warmup not negative")
	case o.flowMax <= 0 || o.stepWait <= 0 || o.stormFor <= 0 || o.drain <= 0:
		return errors.New("-flow-max, -step-wait, -storm-for and -drain must be positive")
	case o.stormChannels < 1 || o.stormChannels > len(stormEnvs):
		return fmt.Errorf("-storm-channels must be between 1 and %d", len(stormEnvs))
	}
	for _, p := range []*string{&o.tokken, &o.policies, &o.testdata, &o.out} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("path %s: %w", *p, err)
		}
		*p = abs
	}
	return nil
}

// parseInts parses "1,8" into positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Report is the whole run, as written to flowbench.json.
type Report struct {
	Date    time.Time    `json:"date"`
	Approve *ApproveRuns `json:"approve,omitempty"`
	Storm   *StormResult `json:"storm,omitempty"`
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	rep := Report{Date: time.Now().UTC()}
	for _, name := range strings.Split(o.scenarios, ",") {
		name = strings.TrimSpace(name)
		logf, err := os.Create(filepath.Join(o.out, "flowbench-"+name+".log"))
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		switch name {
		case "approve":
			var r ApproveRuns
			r, err = runApprove(ctx, o, logf)
			rep.Approve = &r
		case "storm":
			var r StormResult
			r, err = runStorm(ctx, o, logf)
			rep.Storm = &r
		default:
			err = fmt.Errorf("unknown scenario %q (want approve or storm)", name)
		}
		logf.Close()
		if err != nil {
			return fmt.Errorf("%s: %w (tokken's log: %s)", name, err, logf.Name())
		}
		fmt.Fprintf(os.Stderr, "flowbench: %s done\n", name)
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "flowbench.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	writeMarkdown(stdout, rep)
	return nil
}

// world is one scenario's peers: the fakes served from this process and
// tokken's working directory. Close stops the fakes and removes the
// directory.
type world struct {
	tb    *failTB
	slack *slackfake.Fake
	aws   *awsfake.Fake
	dir   string
}

func newWorld(opts ...slackfake.Option) (*world, error) {
	dir, err := os.MkdirTemp("", "tokken-flowbench-")
	if err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	tb := &failTB{TB: peer.NewTB()}
	w := &world{tb: tb, slack: slackfake.New(tb, opts...), aws: awsfake.New(tb), dir: dir}
	if _, err := url.Parse(w.slack.URL()); err != nil {
		w.Close()
		return nil, fmt.Errorf("slackfake URL: %w", err)
	}
	return w, nil
}

// Close stops the fakes and removes tokken's directory.
func (w *world) Close() {
	w.tb.TB.Close()
	_ = os.RemoveAll(w.dir)
}

// storePath is the bolt file tokken serves from.
func (w *world) storePath() string { return filepath.Join(w.dir, "tokken.db") }

// env is tokken's whole environment: nothing inherited but PATH, Slack
// and AWS pointed at the fakes, the embedded store, info-level logs (as
// ackbench runs it), then extra (later entries win).
func (w *world) env(policies string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir,
		"SLACK_SIGNING_SECRET=" + w.slack.SigningSecret(),
		"SLACK_BOT_TOKEN=" + w.slack.Token(),
		"SLACK_API_URL=" + w.slack.APIURL(),
		"TOKKEN_STORE=bolt:" + w.storePath(),
		"TOKKEN_ADDR=127.0.0.1:0",
		"TOKKEN_LOG_LEVEL=info",
		"TOKKEN_POLICY_DIR=" + policies,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for k, v := range w.aws.Env() {
		env = append(env, k+"="+v)
	}
	return append(env, extra...)
}

// start runs `tokken serve` in the world's directory and waits for its
// "tokken serving" line.
func (w *world) start(ctx context.Context, bin string, env []string, logw io.Writer) (*peer.Process, error) {
	return peer.Start(ctx, peer.Spec{
		Name: "tokken", Path: bin, Args: []string{"serve"}, Env: env, Dir: w.dir,
		Ready: peer.TokkenServing, Log: logw,
	}, 60*time.Second)
}

// failTB is the testing.TB the testkit helpers (slackfake's WaitFor,
// SlashCommand, Interaction; awsfake's setters) are given in this
// program: where a test would end, it records the failure and returns, so
// the caller turns it into an error. peer.TB supplies Helper and Cleanup.
type failTB struct {
	*peer.TB
	mu  sync.Mutex
	msg string
}

func (t *failTB) fail(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.msg == "" {
		t.msg = msg
	}
}

// Fatalf records the failure.
func (t *failTB) Fatalf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }

// Errorf records the failure.
func (t *failTB) Errorf(format string, args ...any) { t.fail(fmt.Sprintf(format, args...)) }

// Fatal records the failure.
func (t *failTB) Fatal(args ...any) { t.fail(fmt.Sprint(args...)) }

// Err is the first failure recorded, or nil.
func (t *failTB) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.msg == "" {
		return nil
	}
	return errors.New(t.msg)
}
