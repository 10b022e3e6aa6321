package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		outcomes []outcome
		elapsed  time.Duration
		cpu      time.Duration
		want     loadgen.Result
	}{
		{name: "nothing", want: loadgen.Result{}},
		{
			name: "ten, one failed",
			outcomes: []outcome{
				{latency: 5 * ms}, {latency: 1 * ms}, {latency: 2 * ms}, {latency: 3 * ms}, {latency: 4 * ms},
				{latency: 10 * ms, err: errors.New("no ack")}, {latency: 6 * ms}, {latency: 7 * ms}, {latency: 8 * ms}, {latency: 9 * ms},
			},
			elapsed: 2 * time.Second, cpu: 50 * ms,
			want: loadgen.Result{Requests: 10, Errors: 1, FirstError: "no ack", P50: 5 * ms, P90: 9 * ms, P99: 10 * ms, Max: 10 * ms,
				RPS: 5, CPUPerRequest: 5 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := loadgen.Result{Elapsed: tt.elapsed, ServerCPU: loadgen.CPUTime{User: tt.cpu}}
			summarize(&res, tt.outcomes)
			got := res
			got.Elapsed, got.ServerCPU = 0, loadgen.CPUTime{}
			if got != tt.want {
				t.Errorf("summarize = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRunLoadCountsAndBounds(t *testing.T) {
	tests := []struct {
		name         string
		cfg          loadConfig
		fail         func(seq uint64) bool
		wantRequests int
		wantErrors   int
		wantSent     int // warm-up included
	}{
		{name: "closed loop", cfg: loadConfig{Requests: 50, Warmup: 5, Concurrency: 4}, wantRequests: 50, wantSent: 55},
		{name: "open loop", cfg: loadConfig{Requests: 20, Rate: 1000, Concurrency: 2}, wantRequests: 20, wantSent: 20},
		{name: "errors counted", cfg: loadConfig{Requests: 30, Concurrency: 3}, fail: func(seq uint64) bool { return seq%3 == 0 },
			wantRequests: 30, wantErrors: 10, wantSent: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				seq  atomic.Uint64
				mu   sync.Mutex
				sent = map[uint64]bool{}
			)
			res, err := runLoad(context.Background(), tt.cfg, &seq, func(_ context.Context, s uint64) (time.Time, error) {
				mu.Lock()
				dup := sent[s]
				sent[s] = true
				mu.Unlock()
				if dup {
					t.Errorf("request %d sent twice", s)
				}
				if tt.fail != nil && tt.fail(s) {
					return time.Time{}, errors.New("wrong ack")
				}
				return time.Now(), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != tt.wantRequests || res.Errors != tt.wantErrors || len(sent) != tt.wantSent {
				t.Errorf("requests %d errors %d sent %d, want %d %d %d", res.Requests, res.Errors, len(sent), tt.wantRequests, tt.wantErrors, tt.wantSent)
			}
			if tt.wantErrors > 0 && res.FirstError != "wrong ack" {
				t.Errorf("first error %q", res.FirstError)
			}
		})
	}
}

// TestOpenLoopCountsQueueing: a server that answers one request at a
// time, 5 ms each, cannot keep up with 1,000/s; latency counted from when
// each request was due grows with the queue instead of staying at 5 ms.
func TestOpenLoopCountsQueueing(t *testing.T) {
	var seq atomic.Uint64
	var one sync.Mutex
	res, err := runLoad(context.Background(), loadConfig{Requests: 40, Rate: 1000, Concurrency: 1}, &seq, func(ctx context.Context, _ uint64) (time.Time, error) {
		one.Lock()
		defer one.Unlock()
		timer := time.NewTimer(5 * time.Millisecond) // the server's service time
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
		return time.Now(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The last request was due at 39 ms and answered after 40×5 ms.
	if res.Max < 150*time.Millisecond {
		t.Errorf("max latency %s: queueing behind a slow server was not counted", res.Max)
	}
}

func TestRunLoadDurationBound(t *testing.T) {
	var seq atomic.Uint64
	res, err := runLoad(context.Background(), loadConfig{Duration: 50 * time.Millisecond, Concurrency: 2}, &seq, func(ctx context.Context, _ uint64) (time.Time, error) {
		<-ctx.Done() // never answered
		return time.Time{}, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors != 0 {
		t.Errorf("requests cut off by the run's end were counted: %+v", res)
	}
}

func TestRunLoadRefusesUnboundedRuns(t *testing.T) {
	var seq atomic.Uint64
	send := func(context.Context, uint64) (time.Time, error) { return time.Now(), nil }
	for _, cfg := range []loadConfig{{}, {Requests: -1}, {Requests: 1, Rate: -1}} {
		if _, err := runLoad(context.Background(), cfg, &seq, send); err == nil || !strings.Contains(err.Error(), "bound") && !strings.Contains(err.Error(), "stop") {
			t.Errorf("runLoad(%+v) = %v, want a refusal", cfg, err)
		}
	}
}
