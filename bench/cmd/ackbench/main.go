// Command ackbench measures how fast and how cheaply Slack requests are
// acknowledged by tokken (`tokken serve`) and by a minimal @slack/bolt app
// (bench/bolt), with the same signed payloads on the same machine in one
// run: a regression guard for what a warm tokken costs per request.
//
// A third peer, slack-go (bench/cmd/slackgo), is the least a Go server
// built on slack-go does for the same requests (verify, parse, answer; the
// click's chat.postEphemeral): beside it, tokken's figures read as what
// tokken itself adds, and Bolt ÷ slack-go is the most any such server can
// be cheaper than Bolt.
//
// Each peer runs alone while it is measured. For each of two requests —
// the slash command `/access help` and a click on an alert's Acknowledge
// button (action_id "alert.ack") for an alert tokken does not know — it
// sends a warm-up, then a paced run (open loop at -rate, for latency
// percentiles) and a saturating run (closed loop with -c in flight, for
// CPU per request), reading the peer's CPU time from /proc around each.
//
// tokken runs as the real binary with an embedded bbolt store in a fresh
// temporary directory and a fake Slack Web API (testkit/slackfake) served
// from this process on loopback. Its answer to /access help does not
// touch Slack; the click does: tokken records the delivery, looks the
// alert up, and tells the clicker with chat.postEphemeral that it no
// longer knows it. The Bolt peer makes the same call after its ack, as
// Bolt apps do. ackbench checks that every click produced that ephemeral,
// so a mis-wired run (alerts disabled, the click unrouted) is reported
// instead of measured.
//
// Output: a Markdown table on stdout, results.json and one log per peer
// in -out.
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
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/testkit/slackfake"
)

// options are the command line.
type options struct {
	tokken, slackgo, boltDir, node       string
	policies, out                        string
	peers, kinds                         string
	requests, paced, warmup, concurrency int
	rate                                 float64
	idle, maxRun                         time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.tokken, "tokken", "", "path of the tokken binary (required for the tokken peer)")
	flag.StringVar(&o.slackgo, "slackgo", "", "path of bench/cmd/slackgo built (required for the slack-go peer)")
	flag.StringVar(&o.boltDir, "bolt", "bench/bolt", "directory of the Bolt app (app.js, node_modules installed)")
	flag.StringVar(&o.node, "node", "node", "node executable")
	flag.StringVar(&o.policies, "policies", "policies", "tokken policy directory")
	flag.StringVar(&o.out, "out", "bench/out", "directory for results.json and the peers' logs")
	flag.StringVar(&o.peers, "peers", "tokken,bolt", "peers to measure, comma-separated: tokken, slack-go, bolt")
	flag.StringVar(&o.kinds, "requests", "command,click", "requests to send, comma-separated: command (/access help), click (alert.ack)")
	flag.IntVar(&o.requests, "n", 4000, "measured requests of each saturating run")
	flag.IntVar(&o.paced, "paced", 2000, "measured requests of each paced run")
	flag.Float64Var(&o.rate, "rate", 200, "requests per second of the paced runs")
	flag.IntVar(&o.warmup, "warmup", 500, "warm-up requests before each peer's first run of a kind")
	flag.IntVar(&o.concurrency, "c", 8, "requests in flight in the saturating runs")
	flag.DurationVar(&o.idle, "idle", time.Second, "idle window over which each peer's background CPU is read")
	flag.DurationVar(&o.maxRun, "max", 60*time.Second, "wall-time bound of each run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Peers run in their own directories: a binary given by a relative
	// path must not be resolved from there.
	for _, p := range []*string{&o.tokken, &o.slackgo} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ackbench:", err)
			os.Exit(2)
		}
		*p = abs
	}
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ackbench:", err)
		os.Exit(1)
	}
}

// Measurement is one run against one peer.
type Measurement struct {
	Peer string `json:"peer"`
	// Mode is "paced" (open loop) or "saturated" (closed loop).
	Mode   string         `json:"mode"`
	Result loadgen.Result `json:"result"`
}

// PeerReport is what was measured of one peer.
type PeerReport struct {
	Peer string `json:"peer"`
	// IdleCPU is the CPU the peer used while idle during Idle.
	IdleCPU      time.Duration `json:"idle_cpu_ns"`
	Idle         time.Duration `json:"idle_ns"`
	PeakRSSBytes int64         `json:"peak_rss_bytes"`
	Runs         []Measurement `json:"runs"`
	// Check is a problem found with the peer's answers ("" when none).
	Check string `json:"check,omitempty"`
}

// Report is the whole run.
type Report struct {
	Date        time.Time    `json:"date"`
	Concurrency int          `json:"concurrency"`
	Rate        float64      `json:"rate"`
	Peers       []PeerReport `json:"peers"`
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	work, err := os.MkdirTemp("", "tokken-ackbench-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer os.RemoveAll(work)
	secretBytes := make([]byte, 16)
	if _, err := rand.Read(secretBytes); err != nil {
		return fmt.Errorf("signing secret: %w", err)
	}
	secret := hex.EncodeToString(secretBytes)

	tb := peer.NewTB()
	defer tb.Close()
	slack := slackfake.New(tb)
	slack.AddChannel(loadgen.ChannelID, "bench")
	slack.AddUser(slackfake.User{ID: loadgen.UserID, Name: "bench", Email: "bench@example.com", TZ: "Asia/Tokyo"})

	rep := Report{Date: time.Now().UTC(), Concurrency: o.concurrency, Rate: o.rate}
	for _, name := range strings.Split(o.peers, ",") {
		spec, expect, err := peerSpec(strings.TrimSpace(name), o, secret, work, slack)
		if err != nil {
			return err
		}
		logf, err := os.Create(filepath.Join(o.out, spec.Name+".log"))
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		spec.Log = logf
		pr, err := measurePeer(ctx, o, spec, expect, secret, slack)
		logf.Close()
		if err != nil {
			return fmt.Errorf("%s: %w (log: %s)", spec.Name, err, logf.Name())
		}
		fmt.Fprintf(os.Stderr, "ackbench: %s done\n", spec.Name)
		rep.Peers = append(rep.Peers, pr)
	}

	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	writeMarkdown(stdout, rep)
	return nil
}

// expectations are the substrings each kind of answer must contain.
type expectations map[loadgen.Kind]string

// peerSpec returns how to start a peer and what its answers must contain.
func peerSpec(name string, o options, secret, work string, slack *slackfake.Fake) (peer.Spec, expectations, error) {
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "SLACK_SIGNING_SECRET=" + secret}
	switch name {
	case "bolt":
		dir, err := filepath.Abs(o.boltDir)
		if err != nil {
			return peer.Spec{}, nil, err
		}
		return peer.Spec{Name: name, Path: o.node, Args: []string{"app.js"}, Dir: dir,
				Env: append(base, "NODE_ENV=production", "SLACK_BOT_TOKEN="+slack.Token(), "SLACK_API_URL="+slack.APIURL()), Ready: peer.Listening},
			expectations{loadgen.KindCommand: "time-boxed AWS access"}, nil
	case "slack-go":
		if o.slackgo == "" {
			return peer.Spec{}, nil, errors.New("slack-go: -slackgo is required")
		}
		return peer.Spec{Name: name, Path: o.slackgo, Dir: work,
				Env: append(base, "SLACK_BOT_TOKEN="+slack.Token(), "SLACK_API_URL="+slack.APIURL()), Ready: peer.Listening},
			expectations{loadgen.KindCommand: "time-boxed AWS access"}, nil
	case "tokken":
		if o.tokken == "" {
			return peer.Spec{}, nil, errors.New("tokken: -tokken is required")
		}
		spec, err := peer.TokkenServe(o.tokken, o.policies, work,
			"SLACK_SIGNING_SECRET="+secret,
			"SLACK_BOT_TOKEN="+slack.Token(),
			"SLACK_API_URL="+slack.APIURL(),
			"TOKKEN_ALERT_CHANNEL="+loadgen.ChannelID,
		)
		return spec, expectations{loadgen.KindCommand: "time-boxed AWS access"}, err
	}
	return peer.Spec{}, nil, fmt.Errorf("unknown peer %q (want tokken, slack-go or bolt)", name)
}

// selected reports whether the -requests list names kind.
func selected(list string, kind loadgen.Kind) bool {
	name := "command"
	if kind == loadgen.KindInteraction {
		name = "click"
	}
	for _, k := range strings.Split(list, ",") {
		if strings.TrimSpace(k) == name {
			return true
		}
	}
	return false
}

// payloads are the requests every peer is sent.
var payloads = []loadgen.Payload{
	{Kind: loadgen.KindCommand, Command: "/access", Text: "help"},
	{Kind: loadgen.KindInteraction, ActionID: "alert.ack", Value: "bench:no-such-alert"},
}

func measurePeer(ctx context.Context, o options, spec peer.Spec, expect expectations, secret string, slack *slackfake.Fake) (PeerReport, error) {
	p, err := peer.Start(ctx, spec, 30*time.Second)
	if err != nil {
		return PeerReport{}, err
	}
	defer func() { _ = p.Stop(20 * time.Second) }()
	pr := PeerReport{Peer: spec.Name, Idle: o.idle}

	before, err := loadgen.ReadCPU(p.PID)
	if err != nil {
		return pr, err
	}
	idle := time.NewTimer(o.idle)
	select {
	case <-idle.C:
	case <-ctx.Done():
		idle.Stop()
		return pr, ctx.Err()
	case <-p.Done():
		idle.Stop()
		return pr, fmt.Errorf("exited while idle: %v", p.Err())
	}
	after, err := loadgen.ReadCPU(p.PID)
	if err != nil {
		return pr, err
	}
	pr.IdleCPU = after.Sub(before).Total()

	client := loadgen.NewClient(o.concurrency)
	defer client.CloseIdleConnections()
	base := "http://" + p.Addr
	ephemeralsBefore := len(slack.Ephemerals(loadgen.UserID))
	clicks := 0
	for _, pl := range payloads {
		if !selected(o.kinds, pl.Kind) {
			continue
		}
		for i, mode := range []string{"paced", "saturated"} {
			cfg := loadgen.Config{
				BaseURL: base, Secret: []byte(secret), Payload: pl, Expect: expect[pl.Kind],
				Duration: o.maxRun, PID: p.PID, Client: client, Concurrency: o.concurrency,
			}
			if i == 0 {
				cfg.Warmup = o.warmup
				cfg.Requests, cfg.Rate = o.paced, o.rate
			} else {
				cfg.Requests = o.requests
			}
			res, err := loadgen.Run(ctx, cfg)
			if err != nil {
				return pr, fmt.Errorf("%s %s run: %w", pl.Kind, mode, err)
			}
			fmt.Fprintf(os.Stderr, "ackbench: %s %s: %s\n", spec.Name, mode, res)
			pr.Runs = append(pr.Runs, Measurement{Peer: spec.Name, Mode: mode, Result: res})
			if pl.Kind == loadgen.KindInteraction {
				clicks += cfg.Warmup + res.Requests
			}
		}
	}
	// Bolt posts after its ack: wait (bounded) for the last posts.
	posted := func(f *slackfake.Fake) int { return len(f.Ephemerals(loadgen.UserID)) - ephemeralsBefore }
	slack.Until(10*time.Second, func(f *slackfake.Fake) bool { return posted(f) >= clicks })
	if got := posted(slack); got != clicks {
		pr.Check = fmt.Sprintf("%d clicks sent but %s posted %d ephemerals: the click did not do the work it is meant to measure", clicks, spec.Name, got)
	}
	if pr.PeakRSSBytes, err = p.PeakRSS(); err != nil {
		return pr, err
	}
	return pr, nil
}
