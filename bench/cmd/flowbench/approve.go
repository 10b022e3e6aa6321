package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/testkit/slackfake"
)

// The approve scenario's workspace and account, as the e2e access and
// crash scenarios set them up: prod-readonly (one approval, approver
// channel C0PRODAPPR) in the fake production account, requesters and
// approvers in the sre group through its Slack user group.
const (
	approveProfile  = "prod-readonly"
	approverChannel = "C0PRODAPPR"
	auditChannel    = "C0AUDIT001"
	opsChannel      = "C0OPS00001"
	sreGroup        = "S0SREGRP01"
	oncallGroup     = "S0ONCALL01" // named by groups.yaml; empty here
	prodRoleARN     = "arn:aws:iam::111111111111:role/tokken-prod-readonly"
	workerKey       = "ASIAFAKEPRODWORKER01"
	workerARN       = "arn:aws:sts::111111111111:assumed-role/tokken-worker/tokken-worker"
	// droppedPolicy is left out of the copied policy set: it forbids
	// production requests outside working hours, and the benchmark runs on
	// the wall clock.
	droppedPolicy = "hours.cedar"
	// credentialsMark occurs in the credentials DM's blocks and nowhere
	// else.
	credentialsMark = "export AWS_SECRET_ACCESS_KEY="
)

// requestIDRE matches tokken's request ids.
var requestIDRE = regexp.MustCompile(`r-[0-9a-z]{12}`)

// ApproveRuns is what the approve scenario measured: one run per number
// of flows in flight, each against a fresh tokken and fresh fakes.
type ApproveRuns struct {
	Profile string    `json:"profile"`
	Warmup  int       `json:"warmup"`
	Runs    []FlowRun `json:"runs"`
}

// FlowRun is one run of flows with InFlight of them in flight.
type FlowRun struct {
	InFlight   int    `json:"in_flight"`
	Flows      int    `json:"flows"` // completed: credentials DM seen
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// Elapsed is the run's wall time; FlowsPerSec completed flows per
	// second of it.
	Elapsed     time.Duration `json:"elapsed_ns"`
	FlowsPerSec float64       `json:"flows_per_sec"`
	// ClickToDM: from sending the Approve click to slackfake recording the
	// credentials DM. Ack: the click's HTTP answer. Flow: from sending the
	// slash command to the credentials DM.
	ClickToDM Percentiles `json:"click_to_dm"`
	Ack       Percentiles `json:"ack"`
	Flow      Percentiles `json:"flow"`
	// ServerCPUPerFlow is tokken's CPU time over the run per completed
	// flow; HarnessCPU is this process's (fakes and clients) over the run.
	ServerCPUPerFlow time.Duration `json:"server_cpu_per_flow_ns"`
	HarnessCPU       time.Duration `json:"harness_cpu_ns"`
	PeakRSSBytes     int64         `json:"peak_rss_bytes"`
	// AssumeRoles is how many credentials STS issued in the run, warm-up
	// included; Delivered how many requests got a credentials DM.
	AssumeRoles int `json:"assume_roles"`
	Delivered   int `json:"delivered"`
	// Check lists problems with what tokken did (a grant issued twice, a
	// second credentials DM); empty when none.
	Check string `json:"check,omitempty"`
}

// flowSample is one completed flow.
type flowSample struct {
	id        string
	sent      time.Time // slash command sent
	click     time.Time // Approve click sent
	ack       time.Duration
	delivered time.Time // slackfake recorded the credentials DM
}

// approveBench runs flows against one tokken.
type approveBench struct {
	w        *world
	obs      *observer
	base     string
	client   *http.Client
	stepWait time.Duration
	seq      atomic.Int64
}

func runApprove(ctx context.Context, o options, logw io.Writer) (ApproveRuns, error) {
	res := ApproveRuns{Profile: approveProfile, Warmup: o.warmup}
	policies, err := os.MkdirTemp("", "tokken-flowbench-policies-")
	if err != nil {
		return res, fmt.Errorf("policy directory: %w", err)
	}
	defer os.RemoveAll(policies)
	if err := copyPolicies(o.policies, policies, droppedPolicy); err != nil {
		return res, err
	}
	for _, c := range o.inFlight {
		r, err := approveRun(ctx, o, policies, c, logw)
		if err != nil {
			return res, fmt.Errorf("%d in flight: %w", c, err)
		}
		fmt.Fprintf(os.Stderr, "flowbench: approve, %d in flight: %d flows (%d errors) in %s, click → DM p50 %s p99 %s, harness CPU %s\n",
			c, r.Flows, r.Errors, r.Elapsed.Round(time.Millisecond), loadgen.Round(r.ClickToDM.P50), loadgen.Round(r.ClickToDM.P99), r.HarnessCPU)
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

// approveRun starts fresh fakes and a fresh tokken (so every run's
// harness work, which grows with the calls the fakes recorded, starts
// from zero), warms up with o.warmup flows one at a time, then runs
// o.flows flows with inFlight in flight.
func approveRun(ctx context.Context, o options, policies string, inFlight int, logw io.Writer) (FlowRun, error) {
	w, err := newWorld()
	if err != nil {
		return FlowRun{}, err
	}
	defer w.Close()
	requesters, approvers := make([]string, inFlight), make([]string, inFlight)
	for i := range inFlight {
		requesters[i], approvers[i] = fmt.Sprintf("U0FLOWRQ%02d", i), fmt.Sprintf("U0FLOWAP%02d", i)
		w.slack.AddUser(slackfake.User{ID: requesters[i], Name: fmt.Sprintf("requester%02d", i), Email: fmt.Sprintf("requester%02d@example.com", i)})
		w.slack.AddUser(slackfake.User{ID: approvers[i], Name: fmt.Sprintf("approver%02d", i), Email: fmt.Sprintf("approver%02d@example.com", i)})
	}
	w.slack.AddUserGroup(sreGroup, append(append([]string(nil), requesters...), approvers...)...)
	w.slack.AddUserGroup(oncallGroup)
	for id, name := range map[string]string{approverChannel: "prod-approvals", auditChannel: "audit", opsChannel: "ops"} {
		w.slack.AddChannel(id, name)
	}
	w.aws.IAM().AddGrantableRole(prodRoleARN)
	w.aws.STS().AddCaller(workerKey, workerARN)
	if err := w.tb.Err(); err != nil {
		return FlowRun{}, fmt.Errorf("set up the fakes: %w", err)
	}
	env := w.env(policies,
		"TOKKEN_AUDIT_CHANNEL="+auditChannel, "TOKKEN_OPS_CHANNEL="+opsChannel,
		"TOKKEN_FEDERATION_URL="+w.aws.FederationURL(),
		"AWS_ACCESS_KEY_ID="+workerKey,
	)
	p, err := w.start(ctx, o.tokken, env, logw)
	if err != nil {
		return FlowRun{}, err
	}
	defer func() { _ = p.Stop(30 * time.Second) }()

	obs := newObserver(w.slack, approverChannel)
	go obs.run(w.tb.TB)
	defer obs.stop()
	b := &approveBench{w: w, obs: obs, base: "http://" + p.Addr, client: loadgen.NewClient(inFlight), stepWait: o.stepWait}
	defer b.client.CloseIdleConnections()

	if o.warmup > 0 {
		warm := b.run(ctx, p.PID, 1, o.warmup, o.flowMax, requesters, approvers)
		if warm.Errors > 0 {
			return FlowRun{}, fmt.Errorf("warm-up: %d of %d flows failed, first: %s", warm.Errors, o.warmup, warm.FirstError)
		}
	}
	r := b.run(ctx, p.PID, inFlight, o.flows, o.flowMax, requesters, approvers)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if r.PeakRSSBytes, err = p.PeakRSS(); err != nil {
		return r, err
	}
	r.AssumeRoles = len(w.aws.STS().AssumedRoles())
	var problems []string
	for id, n := range obs.credentialDMs() {
		r.Delivered++
		if n != 1 {
			problems = append(problems, fmt.Sprintf("%s got %d credentials DMs", id, n))
		}
	}
	if r.AssumeRoles != r.Delivered {
		problems = append(problems, fmt.Sprintf("STS issued %d credentials for %d delivered grants", r.AssumeRoles, r.Delivered))
	}
	r.Check = strings.Join(problems, "; ")
	return r, nil
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// run runs up to flows flows, inFlight at a time, starting none after
// bound; each flow's steps are bounded by stepWait.
func (b *approveBench) run(ctx context.Context, pid, inFlight, flows int, bound time.Duration, requesters, approvers []string) FlowRun {
	r := FlowRun{InFlight: inFlight}
	runCtx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var (
		mu      sync.Mutex
		samples []flowSample
		started atomic.Int64
		wg      sync.WaitGroup
	)
	cpu0, cpuErr := loadgen.ReadCPU(pid)
	self0, _ := loadgen.ReadCPU(os.Getpid())
	start := time.Now()
	for i := range inFlight {
		wg.Go(func() {
			for runCtx.Err() == nil && started.Add(1) <= int64(flows) {
				s, err := b.flow(ctx, requesters[i], approvers[i])
				mu.Lock()
				if err != nil {
					r.Errors++
					if r.FirstError == "" {
						r.FirstError = err.Error()
					}
				} else {
					samples = append(samples, s)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	cpu1, cpuErr1 := loadgen.ReadCPU(pid)
	self1, _ := loadgen.ReadCPU(os.Getpid())
	r.HarnessCPU = self1.Sub(self0).Total()

	r.Flows = len(samples)
	clickToDM := make([]time.Duration, 0, len(samples))
	acks := make([]time.Duration, 0, len(samples))
	whole := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		clickToDM = append(clickToDM, s.delivered.Sub(s.click))
		acks = append(acks, s.ack)
		whole = append(whole, s.delivered.Sub(s.sent))
	}
	r.ClickToDM, r.Ack, r.Flow = percentiles(clickToDM), percentiles(acks), percentiles(whole)
	if r.Elapsed > 0 {
		r.FlowsPerSec = float64(r.Flows) / r.Elapsed.Seconds()
	}
	if cpuErr == nil && cpuErr1 == nil && r.Flows > 0 {
		r.ServerCPUPerFlow = cpu1.Sub(cpu0).Total() / time.Duration(r.Flows)
	}
	return r
}

// flow files a request as requester (the reason names the flow), waits
// for its approver message, clicks Approve as approver and waits for the
// credentials DM.
func (b *approveBench) flow(ctx context.Context, requester, approver string) (flowSample, error) {
	n := b.seq.Add(1)
	tb := &failTB{TB: b.w.tb.TB}
	cmdReq, _ := b.w.slack.SlashCommand(tb, b.base+"/slack/commands", slack.SlashCommand{
		Command: "/access", Text: fmt.Sprintf("%s 1h %s %d", approveProfile, flowMark, n),
		UserID: requester, ChannelID: "C0RANDOM01",
	})
	if err := tb.Err(); err != nil {
		return flowSample{}, fmt.Errorf("build slash command: %w", err)
	}
	s := flowSample{sent: time.Now()}
	if status, body, err := b.do(ctx, cmdReq); err != nil {
		return s, fmt.Errorf("/access: %w", err)
	} else if status != http.StatusOK || !strings.Contains(body, "Checking your request") {
		return s, fmt.Errorf("/access: HTTP %d %q", status, truncate(body, 200))
	}
	msg, err := b.obs.wait(ctx, approverKey(n), b.stepWait)
	if err != nil {
		return s, fmt.Errorf("approver message of flow %d: %w", n, err)
	}
	s.id = msg.id

	click, _ := b.w.slack.Interaction(tb, b.base+"/slack/interactions", slack.InteractionCallback{
		Type: slack.InteractionTypeBlockActions, User: slack.User{ID: approver},
		Container:      slack.Container{Type: "message", ChannelID: msg.channel, MessageTs: msg.ts},
		ActionCallback: slack.ActionCallbacks{BlockActions: []*slack.BlockAction{{ActionID: accessui.ActionApprove, Value: s.id}}},
	})
	if err := tb.Err(); err != nil {
		return s, fmt.Errorf("build click: %w", err)
	}
	s.click = time.Now()
	status, body, err := b.do(ctx, click)
	s.ack = time.Since(s.click)
	if err != nil {
		return s, fmt.Errorf("approve %s: %w", s.id, err)
	}
	if status != http.StatusOK {
		return s, fmt.Errorf("approve %s: HTTP %d %q", s.id, status, truncate(body, 200))
	}
	dm, err := b.obs.wait(ctx, credentialsKey(s.id), b.stepWait)
	if err != nil {
		return s, fmt.Errorf("credentials DM of %s: %w", s.id, err)
	}
	s.delivered = dm.at
	return s, nil
}

func (b *approveBench) do(ctx context.Context, req *http.Request) (int, string, error) {
	resp, err := b.client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, string(body), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// slackEvent is a Slack call a flow waits for.
type slackEvent struct {
	id, channel, ts string    // request id, where the message is
	at              time.Time // when slackfake recorded it
}

// approverKey is the approver message of flow n; credentialsKey the
// credentials DM of request id.
func approverKey(n int64) string      { return "approver/" + strconv.FormatInt(n, 10) }
func credentialsKey(id string) string { return "credentials/" + id }

// flowMark starts the reason of every request; flowRE finds the flow
// number after it in the approver message.
const flowMark = "flowbench flow"

var flowRE = regexp.MustCompile(flowMark + ` (\d+)\b`)

// observer follows slackfake's chat.postMessage calls from one goroutine
// (one WaitFor, woken by every recorded call) and hands each flow the
// event it waits for: its approver message (by the flow number in the
// request's reason) and its credentials DM (by request id). One observer
// instead of a WaitFor per flow keeps the harness's own CPU, which shares
// the cores with tokken, small: each wake copies the posts recorded so
// far once (slackfake has no cheaper accessor), not once per waiting flow.
type observer struct {
	slack    *slackfake.Fake
	approver string
	stopped  atomic.Bool
	done     chan struct{}

	mu      sync.Mutex
	seen    map[string]slackEvent
	waiters map[string]chan slackEvent
	creds   map[string]int // credentials DMs per request id
}

func newObserver(f *slackfake.Fake, approverChannel string) *observer {
	return &observer{
		slack: f, approver: approverChannel, done: make(chan struct{}),
		seen: map[string]slackEvent{}, waiters: map[string]chan slackEvent{}, creds: map[string]int{},
	}
}

// run follows the calls until stop.
func (o *observer) run(tb *peer.TB) {
	defer close(o.done)
	posts := 0
	for !o.stopped.Load() {
		// A quiet minute ends WaitFor with a recorded (and ignored)
		// failure; the loop then waits again.
		o.slack.WaitFor(&failTB{TB: tb}, time.Minute, func(f *slackfake.Fake) bool {
			if o.stopped.Load() {
				return true
			}
			if calls := f.Calls("chat.postMessage"); len(calls) > posts {
				for _, c := range calls[posts:] {
					o.post(c)
				}
				posts = len(calls)
			}
			return false
		})
	}
}

// post classifies one chat.postMessage call.
func (o *observer) post(c slackfake.Call) {
	if !c.OK() {
		return
	}
	id := requestIDRE.FindString(c.Text)
	if id == "" {
		return
	}
	ev := slackEvent{id: id, channel: c.Channel, ts: c.TS, at: c.At}
	switch {
	case c.Channel == o.approver:
		// The reason is in the attachment's blocks.
		raw, err := json.Marshal(c.Attachments)
		if err != nil {
			return
		}
		if m := flowRE.FindSubmatch(raw); m != nil {
			if n, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil {
				o.publish(approverKey(n), ev)
			}
		}
	case strings.HasPrefix(c.Channel, "D") && strings.Contains(blockText(c.Blocks), credentialsMark):
		o.mu.Lock()
		o.creds[id]++
		o.mu.Unlock()
		o.publish(credentialsKey(id), ev)
	}
}

// blockText joins the text of a message's section blocks (the
// credentials DM's Text is only a notification summary).
func blockText(blocks slack.Blocks) string {
	var b strings.Builder
	for _, bl := range blocks.BlockSet {
		if s, ok := bl.(*slack.SectionBlock); ok && s.Text != nil {
			b.WriteString(s.Text.Text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// publish records the first event under key and wakes its waiter.
func (o *observer) publish(key string, ev slackEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, dup := o.seen[key]; dup {
		return
	}
	o.seen[key] = ev
	if ch, ok := o.waiters[key]; ok {
		ch <- ev // buffered: never blocks
		delete(o.waiters, key)
	}
}

// wait returns the event under key, waiting up to timeout for it.
func (o *observer) wait(ctx context.Context, key string, timeout time.Duration) (slackEvent, error) {
	return o.await(ctx, key, o.subscribe(key), timeout)
}

// subscribe returns the channel that receives the event under key: at
// once if it was already seen, else when it is published.
func (o *observer) subscribe(key string) chan slackEvent {
	ch := make(chan slackEvent, 1)
	o.mu.Lock()
	defer o.mu.Unlock()
	if ev, ok := o.seen[key]; ok {
		ch <- ev
		return ch
	}
	o.waiters[key] = ch
	return ch
}

// await receives from ch, subscribed to key, for up to timeout.
func (o *observer) await(ctx context.Context, key string, ch chan slackEvent, timeout time.Duration) (slackEvent, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev := <-ch:
		return ev, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.waiters, key)
	select {
	case ev := <-ch: // published while giving up
		return ev, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return slackEvent{}, err
	}
	return slackEvent{}, fmt.Errorf("not seen within %s", timeout)
}

// credentialDMs returns the number of credentials DMs per request id.
func (o *observer) credentialDMs() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.creds)
}

// stop ends run: it sets the flag, then makes a Slack call of its own so
// WaitFor re-evaluates its condition at once.
func (o *observer) stop() {
	o.stopped.Store(true)
	_, _ = o.slack.Client().AuthTest()
	<-o.done
}
