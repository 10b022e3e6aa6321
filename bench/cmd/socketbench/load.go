package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
)

// loadConfig is one run of envelopes. It mirrors loadgen.Config, whose
// loop is tied to HTTP: closed loop with Concurrency in flight, or open
// loop at Rate (latency counted from when an envelope was due, so a stall
// cannot hide its queue), bounded by Requests and Duration.
type loadConfig struct {
	Kind loadgen.Kind
	// Target names what is measured in the result (its URL field).
	Target   string
	Requests int
	Duration time.Duration
	// Warmup envelopes are sent first, closed loop, and not measured.
	Warmup      int
	Concurrency int
	Rate        float64
	// PID is the process whose CPU time is read from /proc (0: none).
	PID int
}

// sendFunc sends request number seq and returns when its answer arrived
// (the time the answer was read, not when the caller woke up), or why it
// failed.
type sendFunc func(ctx context.Context, seq uint64) (answered time.Time, err error)

// outcome is one request's measurement.
type outcome struct {
	latency time.Duration
	err     error
}

func (c *loadConfig) check() error {
	switch {
	case c.Requests <= 0 && c.Duration <= 0:
		return errors.New("set a request count or a duration (a run must stop by itself)")
	case c.Requests < 0 || c.Duration < 0 || c.Warmup < 0 || c.Rate < 0:
		return errors.New("negative bound")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	return nil
}

// runLoad sends the warm-up and then the measured requests with send, and
// returns what it measured in loadgen's Result. seq numbers continue from
// *seq, so runs against the same server never repeat a trigger id.
func runLoad(ctx context.Context, cfg loadConfig, seq *atomic.Uint64, send sendFunc) (loadgen.Result, error) {
	if err := cfg.check(); err != nil {
		return loadgen.Result{}, err
	}
	if cfg.Warmup > 0 {
		w := cfg
		w.Requests, w.Duration, w.Rate, w.PID = cfg.Warmup, 0, 0, 0
		if _, err := measureLoad(ctx, w, seq, send); err != nil {
			return loadgen.Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return measureLoad(ctx, cfg, seq, send)
}

func measureLoad(ctx context.Context, cfg loadConfig, seq *atomic.Uint64, send sendFunc) (loadgen.Result, error) {
	res := loadgen.Result{Kind: cfg.Kind, URL: cfg.Target, Concurrency: cfg.Concurrency, Rate: cfg.Rate}
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var before loadgen.CPUTime
	if cfg.PID > 0 {
		c, err := loadgen.ReadCPU(cfg.PID)
		if err != nil {
			return res, err
		}
		before = c
	}
	genBefore, err := loadgen.ReadCPU(os.Getpid())
	if err != nil {
		return res, err
	}

	due := make(chan time.Time, cfg.Concurrency)
	start := time.Now()
	go schedule(runCtx, cfg, start, due)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes []outcome
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
			outcomes = append(outcomes, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if cfg.PID > 0 {
		after, err := loadgen.ReadCPU(cfg.PID)
		if err != nil {
			return res, err
		}
		res.ServerCPU = after.Sub(before)
	}
	if genAfter, err := loadgen.ReadCPU(os.Getpid()); err == nil {
		res.GeneratorCPU = genAfter.Sub(genBefore)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("run interrupted: %w", err)
	}
	summarize(&res, outcomes)
	return res, nil
}

// schedule feeds due until the request count is reached or ctx ends, then
// closes it. Open loop (Rate > 0): each slot carries the time it was due;
// closed loop: the zero time (due when taken).
func schedule(ctx context.Context, cfg loadConfig, start time.Time, due chan<- time.Time) {
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

// summarize fills the counts, percentiles and rates of res from outcomes
// (res.Elapsed and res.ServerCPU set).
func summarize(res *loadgen.Result, outcomes []outcome) {
	res.Requests = len(outcomes)
	res.Errors, res.FirstError = 0, ""
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
	res.P50, res.P90, res.P99 = loadgen.Percentile(lat, 50), loadgen.Percentile(lat, 90), loadgen.Percentile(lat, 99)
	res.Max = 0
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	res.RPS = 0
	if res.Elapsed > 0 {
		res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	}
	res.CPUPerRequest = 0
	if res.Requests > 0 {
		res.CPUPerRequest = res.ServerCPU.Total() / time.Duration(res.Requests)
	}
}
