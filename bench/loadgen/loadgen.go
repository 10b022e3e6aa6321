// Package loadgen is tokken's load generator: it sends signed Slack
// requests (slash commands and button clicks, signed exactly as Slack signs
// them, with handlers/slacksig) to a server on loopback and reports
// latency percentiles, throughput, errors and — read from /proc — the
// server's CPU time per request. Other transports use the same loop by
// giving Config.Send.
//
// It runs closed loop (Concurrency workers, each sending its next request
// when the previous one is answered) or open loop (requests start at a
// fixed Rate whatever the answers; latency is measured from the moment a
// request was due, so a stalled server cannot hide its queueing). Every run
// is bounded by a request count and a duration and stops by itself.
//
// CPU per request is the headline number on a small machine: the
// generator shares the cores with the server, so requests/s says as much
// about the generator as about the server, while the server's own CPU
// time divided by the requests it answered does not.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SendFunc sends request number seq and returns when its answer arrived
// (the time the answer was read, which may be before SendFunc returns;
// the zero time means when it returned), or why the request failed. A
// failed request's latency runs to when SendFunc returned. It is called
// from up to Config.Concurrency goroutines at once.
//
// seq is 1, 2, … within one Run, warm-up included, and starts again at 1
// in the next Run: a transport whose server remembers request ids across
// runs must number them itself. An error that wraps ctx's error once the
// run's Duration is up means the request was cut off by the end of the
// run: it is not counted.
type SendFunc func(ctx context.Context, seq uint64) (answered time.Time, err error)

// Config is one run.
type Config struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// Secret is the Slack signing secret the server verifies with.
	Secret []byte
	// Payload is the request sent; with Send set only its Kind is used,
	// to name the requests in the Result.
	Payload Payload
	// Expect, when set, must occur in every response body or the request
	// counts as an error (it proves the server answered what was asked,
	// not, say, "unknown command").
	Expect string

	// Send, when set, sends each request instead of an HTTP POST to
	// BaseURL (BaseURL, Secret, Client and Expect are then unused), and
	// latency is measured to the time it reports the answer arrived.
	Send SendFunc
	// Target names what is measured, in Result.URL, when Send is set.
	Target string

	// Requests bounds the measured requests; Duration bounds the run's
	// wall time. At least one must be set; the run stops at the first
	// bound reached.
	Requests int
	Duration time.Duration
	// Warmup requests are sent first, with the same concurrency, and not
	// measured: connection set-up, lazy initialisation and JIT warm-up
	// (the Node peer) are not what is compared.
	Warmup int
	// Concurrency is the number of requests in flight at most (default 1).
	Concurrency int
	// Rate, when positive, makes the run open loop: a request is due every
	// 1/Rate seconds.
	Rate float64
	// PID is the server process whose CPU time is measured (0: not measured).
	PID int
	// Client sends the requests; nil uses a keep-alive client sized for
	// Concurrency.
	Client *http.Client
}

// Result is what a run measured.
type Result struct {
	Kind     Kind   `json:"kind"`
	URL      string `json:"url"`      // the HTTP endpoint, or Config.Target with Send
	Requests int    `json:"requests"` // measured requests sent
	Errors   int    `json:"errors"`   // transport errors, non-2xx, Expect missing, or Send failed
	// FirstError describes one error, for diagnosis.
	FirstError  string        `json:"first_error,omitempty"`
	Concurrency int           `json:"concurrency"`
	Rate        float64       `json:"rate,omitempty"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	// Latency percentiles of the measured requests, errors included.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// RPS is measured requests per second of wall time.
	RPS float64 `json:"rps"`
	// ServerCPU is the server's CPU time during the measured part (zero
	// when PID is 0); CPUPerRequest divides it by Requests.
	ServerCPU     CPUTime       `json:"server_cpu"`
	CPUPerRequest time.Duration `json:"cpu_per_request_ns"`
	// GeneratorCPU is this process's CPU time during the measured part:
	// what the generator took from the shared cores.
	GeneratorCPU CPUTime `json:"generator_cpu"`
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("%s %s: %d req in %s (%.0f req/s), %d errors, p50 %s p90 %s p99 %s max %s, server CPU %s (%s/req)",
		r.Kind, r.URL, r.Requests, r.Elapsed.Round(time.Millisecond), r.RPS, r.Errors,
		Round(r.P50), Round(r.P90), Round(r.P99), Round(r.Max), r.ServerCPU.Total(), Round(r.CPUPerRequest))
}

// Round rounds d to a precision that suits its size, for reports.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

func (c *Config) check() error {
	switch {
	case c.BaseURL == "" && c.Send == nil:
		return errors.New("loadgen: no base URL")
	case c.Requests <= 0 && c.Duration <= 0:
		return errors.New("loadgen: set a request count or a duration (a run must stop by itself)")
	case c.Requests < 0 || c.Duration < 0 || c.Warmup < 0 || c.Rate < 0:
		return errors.New("loadgen: negative bound")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Client == nil && c.Send == nil {
		c.Client = NewClient(c.Concurrency)
	}
	return nil
}

// target is what Result.URL names.
func (c *Config) target() string {
	if c.Send != nil {
		return c.Target
	}
	return strings.TrimSuffix(c.BaseURL, "/") + c.Payload.Kind.Path()
}

// NewClient is a keep-alive HTTP client for up to conns connections to
// one host, with a 10 s timeout per request.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// Run sends the warm-up and then the measured requests, and returns what
// it measured. It returns early, with an error, if ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	send := cfg.Send
	if send == nil {
		b, err := NewBuilder(cfg.Payload, cfg.Secret)
		if err != nil {
			return Result{}, err
		}
		send = httpSender(cfg, b)
	}
	var seq atomic.Uint64
	if cfg.Warmup > 0 {
		w := cfg
		w.Requests, w.Duration, w.Rate = cfg.Warmup, 0, 0
		if _, err := run(ctx, w, send, &seq); err != nil {
			return Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return run(ctx, cfg, send, &seq)
}

// outcome is one request's measurement.
type outcome struct {
	latency time.Duration
	err     error
}

// run sends cfg's requests with send, numbering them from seq, and
// measures them.
func run(ctx context.Context, cfg Config, send SendFunc, seq *atomic.Uint64) (Result, error) {
	res := Result{Kind: cfg.Payload.Kind, URL: cfg.target(), Concurrency: cfg.Concurrency, Rate: cfg.Rate}
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}

	var before CPUTime
	if cfg.PID > 0 {
		c, err := ReadCPU(cfg.PID)
		if err != nil {
			return res, err
		}
		before = c
	}
	genBefore, err := ReadCPU(os.Getpid())
	if err != nil {
		return res, err
	}

	// due hands out request slots: each carries the time it was due
	// (open loop) or the zero time (closed loop: due when taken).
	due := make(chan time.Time, cfg.Concurrency)
	start := time.Now()
	go schedule(runCtx, cfg, start, due)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []outcome
	)
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]outcome, 0, 1024)
			for at := range due {
				if at.IsZero() {
					at = time.Now()
				}
				answered, err := send(runCtx, seq.Add(1))
				if err != nil && runCtx.Err() != nil && errors.Is(err, runCtx.Err()) {
					break // the run's time is up: this request is not counted
				}
				if err != nil || answered.IsZero() {
					answered = time.Now()
				}
				local = append(local, outcome{latency: answered.Sub(at), err: err})
			}
			mu.Lock()
			results = append(results, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)

	if cfg.PID > 0 {
		after, err := ReadCPU(cfg.PID)
		if err != nil {
			return res, err
		}
		res.ServerCPU = after.Sub(before)
	}
	if genAfter, err := ReadCPU(os.Getpid()); err == nil {
		res.GeneratorCPU = genAfter.Sub(genBefore)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("loadgen: run interrupted: %w", err)
	}
	summarize(&res, results)
	return res, nil
}

// schedule feeds due until the request count is reached or ctx ends, then
// closes it.
func schedule(ctx context.Context, cfg Config, start time.Time, due chan<- time.Time) {
	defer close(due)
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; cfg.Requests <= 0 || i < cfg.Requests; i++ {
		var at time.Time
		if interval > 0 {
			at = start.Add(time.Duration(i) * interval)
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case due <- at:
		}
	}
}

// httpSender sends each request as b signs it to cfg.BaseURL. It reports
// the zero time: the answer has been read when it returns, so latency
// runs to then.
func httpSender(cfg Config, b *Builder) SendFunc {
	return func(ctx context.Context, seq uint64) (time.Time, error) {
		return time.Time{}, send(ctx, cfg, b, seq)
	}
}

// send makes one HTTP request and checks its answer.
func send(ctx context.Context, cfg Config, b *Builder, seq uint64) error {
	req, err := b.Request(cfg.BaseURL, seq, time.Now())
	if err != nil {
		return err
	}
	resp, err := cfg.Client.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, firstLine(body))
	}
	if cfg.Expect != "" && !strings.Contains(string(body), cfg.Expect) {
		return fmt.Errorf("answer lacks %q: %s", cfg.Expect, firstLine(body))
	}
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// summarize fills the counts and percentiles of res from outcomes.
func summarize(res *Result, outcomes []outcome) {
	res.Requests = len(outcomes)
	lat := make([]time.Duration, 0, len(outcomes))
	for _, o := range outcomes {
		lat = append(lat, o.latency)
		if o.err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = o.err.Error()
			}
		}
	}
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	if res.Elapsed > 0 {
		res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	}
	if res.Requests > 0 {
		res.CPUPerRequest = res.ServerCPU.Total() / time.Duration(res.Requests)
	}
}

// Percentile returns the p-th percentile (nearest rank) of sorted, or zero
// for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}
