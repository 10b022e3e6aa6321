// Command socketbench measures how fast and how cheaply `tokken serve`
// acknowledges Slack requests that arrive over Socket Mode.
//
// tokken runs as the real binary with SLACK_APP_TOKEN set, an embedded
// bbolt store in a fresh temporary directory, and Slack served from this
// process on loopback: bench/socketfake answers apps.connections.open and
// holds the WebSocket (hello, pings, envelopes, acks), and every other Web
// API call goes on to testkit/slackfake (behind a reverse proxy: both live
// under the one SLACK_API_URL tokken is given).
//
// The requests are bench/loadgen's: the slash command `/access help` and a
// click on an alert's Acknowledge button (action_id "alert.ack") for an
// alert tokken does not know, wrapped in Socket Mode envelopes as Slack
// sends them. The command must be acknowledged with tokken's help text in
// the ack payload; the click with an empty ack, after tokken has told the
// clicker with chat.postEphemeral that it no longer knows the alert —
// socketbench counts those ephemerals, so a mis-wired run is reported
// instead of measured. For each request it sends a warm-up, then a paced
// run (open loop at -rate; latency counted from when an envelope was due)
// and a saturating run (closed loop, -c in flight), reading tokken's CPU
// time from /proc around each. Latency is envelope written → ack read.
//
// With -http (the default) the same requests are also sent, signed, to
// the same tokken process over HTTP with bench/loadgen, so the two
// transports are compared on the same process, store and Slack fake.
//
// Output: a Markdown table on stdout, socket-results.json and tokken's log
// (socket-tokken.log) in -out.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/bench/socketfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// options are the command line.
type options struct {
	tokken, policies, out                string
	http                                 bool
	requests, paced, warmup, concurrency int
	rate                                 float64
	idle, maxRun, ackTimeout             time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.tokken, "tokken", "", "path of the tokken binary (required)")
	flag.StringVar(&o.policies, "policies", "policies", "tokken policy directory")
	flag.StringVar(&o.out, "out", "bench/out", "directory for socket-results.json and tokken's log")
	flag.BoolVar(&o.http, "http", true, "also send the same requests over HTTP to the same process, for comparison")
	flag.IntVar(&o.requests, "n", 4000, "measured envelopes of each saturating run")
	flag.IntVar(&o.paced, "paced", 2000, "measured envelopes of each paced run")
	flag.Float64Var(&o.rate, "rate", 200, "envelopes per second of the paced runs")
	flag.IntVar(&o.warmup, "warmup", 500, "warm-up envelopes before each request kind's first run")
	flag.IntVar(&o.concurrency, "c", 8, "envelopes in flight in the saturating runs (at most, in the paced ones)")
	flag.DurationVar(&o.idle, "idle", time.Second, "idle window over which tokken's background CPU is read")
	flag.DurationVar(&o.maxRun, "max", 60*time.Second, "wall-time bound of each run")
	flag.DurationVar(&o.ackTimeout, "ack-timeout", 10*time.Second, "how long an envelope may wait for its ack before it counts as an error")
	flag.Parse()
	if o.tokken == "" {
		fmt.Fprintln(os.Stderr, "socketbench: -tokken is required")
		os.Exit(2)
	}
	// tokken runs in its own directory: a relative path must not be
	// resolved from there.
	abs, err := filepath.Abs(o.tokken)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socketbench:", err)
		os.Exit(2)
	}
	o.tokken = abs

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "socketbench:", err)
		os.Exit(1)
	}
}

// Measurement is one run over one transport.
type Measurement struct {
	// Transport is "socket" (Socket Mode) or "http".
	Transport string `json:"transport"`
	// Mode is "paced" (open loop) or "saturated" (closed loop).
	Mode   string         `json:"mode"`
	Result loadgen.Result `json:"result"`
}

// Report is the whole run.
type Report struct {
	Date        time.Time `json:"date"`
	Concurrency int       `json:"concurrency"`
	Rate        float64   `json:"rate"`
	// IdleCPU is what tokken used while idle during Idle (pings included).
	IdleCPU      time.Duration `json:"idle_cpu_ns"`
	Idle         time.Duration `json:"idle_ns"`
	PeakRSSBytes int64         `json:"peak_rss_bytes"`
	Runs         []Measurement `json:"runs"`
	// Socket is what the Socket Mode fake counted over the whole run.
	Socket socketfake.Stats `json:"socket"`
	// Checks are problems found with tokken's behaviour (none when empty).
	Checks []string `json:"checks,omitempty"`
}

// target is the process measured and how to reach it.
type target struct {
	fake  *socketfake.Server
	slack *slackfake.Fake
	// httpBase and secret reach the same process over HTTP ("" skips it).
	httpBase string
	secret   []byte
	pid      int // 0: CPU not read
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	work, err := os.MkdirTemp("", "tokken-socketbench-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer os.RemoveAll(work)
	secret, err := randomHex(16)
	if err != nil {
		return fmt.Errorf("signing secret: %w", err)
	}
	appSuffix, err := randomHex(8)
	if err != nil {
		return fmt.Errorf("app token: %w", err)
	}
	appToken := "xapp-1-" + loadgen.AppID + "-1-" + appSuffix

	tb := peer.NewTB()
	defer tb.Close()
	slack := slackfake.New(tb)
	slack.AddChannel(loadgen.ChannelID, "bench")
	slack.AddUser(slackfake.User{ID: loadgen.UserID, Name: "bench", Email: "bench@example.com", TZ: "Asia/Tokyo"})
	fake, base, stopFront, err := serveFront(appToken, slack)
	if err != nil {
		return err
	}
	defer stopFront()

	logf, err := os.Create(filepath.Join(o.out, "socket-tokken.log"))
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	spec, err := tokkenSpec(o, work, secret, appToken, base+"/api/", slack.Token())
	if err != nil {
		return err
	}
	spec.Log = logf
	p, err := peer.Start(ctx, spec, 30*time.Second)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logf.Name())
	}
	defer func() { _ = p.Stop(20 * time.Second) }()
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = fake.WaitFor(connectCtx, func(st socketfake.Stats) bool { return st.Open > 0 })
	cancel()
	if err != nil {
		return fmt.Errorf("tokken did not connect over Socket Mode: %w (log: %s)", err, logf.Name())
	}

	rep := Report{Date: time.Now().UTC(), Concurrency: o.concurrency, Rate: o.rate, Idle: o.idle}
	if rep.IdleCPU, err = idleCPU(ctx, p, o.idle); err != nil {
		return err
	}
	t := target{fake: fake, slack: slack, pid: p.PID}
	if o.http {
		t.httpBase, t.secret = "http://"+p.Addr, []byte(secret)
	}
	if rep.Runs, rep.Checks, err = measure(ctx, o, t); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logf.Name())
	}
	if rep.PeakRSSBytes, err = p.PeakRSS(); err != nil {
		return err
	}
	rep.Socket = fake.Stats()
	rep.Checks = append(rep.Checks, socketChecks(rep.Socket)...)

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "socket-results.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	writeMarkdown(stdout, rep)
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// serveFront serves Slack for tokken on one loopback address: the Socket
// Mode fake, with every other Web API call proxied to slack. It returns
// the fake, the base URL and a function that stops both.
func serveFront(appToken string, slack *slackfake.Fake) (*socketfake.Server, string, func(), error) {
	web, err := url.Parse(slack.URL())
	if err != nil {
		return nil, "", nil, fmt.Errorf("slack fake URL: %w", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(web)
	// Enough idle connections that the proxy does not re-dial under load.
	proxy.Transport = loadgen.NewClient(64).Transport
	fake, err := socketfake.New(appToken, socketfake.WithFallback(proxy))
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("listen for the Slack front: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		fake.Close() // hijacked WebSockets are not the http.Server's to close
		_ = srv.Close()
	}
	return fake, "http://" + ln.Addr().String(), stop, nil
}

// tokkenSpec is how tokken is started: like bench/cmd/ackbench's tokken
// peer, plus the app-level token that turns Socket Mode on.
func tokkenSpec(o options, work, secret, appToken, apiURL, botToken string) (peer.Spec, error) {
	return peer.TokkenServe(o.tokken, o.policies, work,
		"SLACK_SIGNING_SECRET="+secret,
		"SLACK_BOT_TOKEN="+botToken,
		"SLACK_APP_TOKEN="+appToken,
		"SLACK_API_URL="+apiURL,
		"TOKKEN_ALERT_CHANNEL="+loadgen.ChannelID,
	)
}

// idleCPU reads what p uses over d while nothing is sent.
func idleCPU(ctx context.Context, p *peer.Process, d time.Duration) (time.Duration, error) {
	before, err := loadgen.ReadCPU(p.PID)
	if err != nil {
		return 0, err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-p.Done():
		return 0, fmt.Errorf("tokken exited while idle: %v", p.Err())
	}
	after, err := loadgen.ReadCPU(p.PID)
	if err != nil {
		return 0, err
	}
	return after.Sub(before).Total(), nil
}

// payloads are the requests sent, as bench/cmd/ackbench sends them.
var payloads = []loadgen.Payload{
	{Kind: loadgen.KindCommand, Command: "/access", Text: "help"},
	{Kind: loadgen.KindInteraction, ActionID: "alert.ack", Value: "bench:no-such-alert"},
}

// measure runs every request kind over Socket Mode (and HTTP when
// t.httpBase is set), paced then saturated, and returns the runs and the
// problems found with tokken's answers beyond the acks themselves.
func measure(ctx context.Context, o options, t target) ([]Measurement, []string, error) {
	var (
		runs   []Measurement
		seq    atomic.Uint64 // numbers the envelopes of every run
		clicks int
	)
	ephemeralsBefore := len(t.slack.Ephemerals(loadgen.UserID))
	var client *http.Client
	if t.httpBase != "" {
		client = loadgen.NewClient(o.concurrency)
		defer client.CloseIdleConnections()
	}
	// runBoth runs base paced (after the warm-up) and then saturated.
	runBoth := func(transport string, base loadgen.Config) error {
		for i, mode := range []string{"paced", "saturated"} {
			cfg := base
			if i == 0 {
				cfg.Warmup, cfg.Requests, cfg.Rate = o.warmup, o.paced, o.rate
			} else {
				cfg.Requests = o.requests
			}
			res, err := loadgen.Run(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%s %s %s run: %w", transport, base.Payload.Kind, mode, err)
			}
			fmt.Fprintf(os.Stderr, "socketbench: %s %s: %s\n", transport, mode, res)
			runs = append(runs, Measurement{Transport: transport, Mode: mode, Result: res})
			if base.Payload.Kind == loadgen.KindInteraction {
				clicks += cfg.Warmup + res.Requests
			}
		}
		return nil
	}
	for _, pl := range payloads {
		envs, err := newEnvelopes(pl)
		if err != nil {
			return nil, nil, err
		}
		send := socketSender(t.fake, envs, expectations[pl.Kind], o.ackTimeout, &seq)
		if err := runBoth("socket", loadgen.Config{Payload: pl, Send: send, Target: "socket mode " + envs.typ,
			Duration: o.maxRun, Concurrency: o.concurrency, PID: t.pid}); err != nil {
			return nil, nil, err
		}
		if t.httpBase == "" {
			continue
		}
		if err := runBoth("http", loadgen.Config{BaseURL: t.httpBase, Secret: t.secret, Payload: pl, Expect: expectations[pl.Kind].Text,
			Duration: o.maxRun, PID: t.pid, Client: client, Concurrency: o.concurrency}); err != nil {
			return nil, nil, err
		}
	}
	var checks []string
	// tokken posts the ephemeral after the ack (router.AfterAck): the
	// last ones get as long as an ack would.
	posted := func(f *slackfake.Fake) int { return len(f.Ephemerals(loadgen.UserID)) - ephemeralsBefore }
	t.slack.Until(o.ackTimeout, func(f *slackfake.Fake) bool { return posted(f) >= clicks })
	if got := posted(t.slack); got != clicks {
		checks = append(checks, fmt.Sprintf("%d clicks sent but tokken posted %d ephemerals: the click did not take the alert path it is meant to measure", clicks, got))
	}
	return runs, checks, nil
}

// socketSender sends envelopes from envs over fake and checks each ack
// against want; an envelope unacknowledged after timeout is an error.
// Envelopes are numbered from next, not by loadgen's seq, which starts
// again at 1 in every run: runs against the same tokken share next, so
// none repeats a trigger id (tokken deduplicates them).
func socketSender(fake *socketfake.Server, envs *envelopes, want expectation, timeout time.Duration, next *atomic.Uint64) loadgen.SendFunc {
	return func(ctx context.Context, _ uint64) (time.Time, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ack, err := fake.Request(ctx, envs.Envelope(next.Add(1)))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				return time.Time{}, fmt.Errorf("no ack within %s: %w", timeout, err)
			}
			return time.Time{}, err
		}
		return ack.Received, want.check(ack)
	}
}

// socketChecks are the problems the Socket Mode fake's counts show: tokken
// is expected to hold one connection for the whole run and answer each
// envelope once.
func socketChecks(st socketfake.Stats) []string {
	var out []string
	if st.Connections != 1 {
		out = append(out, fmt.Sprintf("tokken opened %d Socket Mode connections, want 1 (it reconnected during the run)", st.Connections))
	}
	if st.UnmatchedAcks > 0 {
		out = append(out, fmt.Sprintf("%d acks matched no envelope awaiting one (duplicates, or later than -ack-timeout)", st.UnmatchedAcks))
	}
	if st.BadFrames > 0 {
		out = append(out, fmt.Sprintf("%d frames from tokken were not acks", st.BadFrames))
	}
	return out
}
