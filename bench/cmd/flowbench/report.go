package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
)

// The figures users are promised: click → DM, and Slack's posting limit.
const (
	targetClickToDMP99 = 2 * time.Second
	targetPostsPerSec  = 1
)

// Percentiles summarises a set of durations.
type Percentiles struct {
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// percentiles computes nearest-rank percentiles of ds (not modified).
func percentiles(ds []time.Duration) Percentiles {
	s := slices.Clone(ds)
	slices.Sort(s)
	p := Percentiles{P50: loadgen.Percentile(s, 50), P90: loadgen.Percentile(s, 90), P99: loadgen.Percentile(s, 99)}
	if len(s) > 0 {
		p.Max = s[len(s)-1]
	}
	return p
}

// copyPolicies copies the regular files of src into dst, except those
// named in drop.
func copyPolicies(src, dst string, drop ...string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("copy policies: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || slices.Contains(drop, e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("copy policies: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return fmt.Errorf("copy policies: %w", err)
		}
	}
	return nil
}

// writeMarkdown prints the report as Markdown tables with a verdict on
// each promised figure.
func writeMarkdown(w io.Writer, rep Report) {
	if a := rep.Approve; a != nil {
		writeApprove(w, rep.Date, *a)
	}
	if s := rep.Storm; s != nil {
		if rep.Approve != nil {
			fmt.Fprintln(w)
		}
		writeStorm(w, rep.Date, *s)
	}
}

func writeApprove(w io.Writer, date time.Time, a ApproveRuns) {
	fmt.Fprintf(w, "Approve click → credentials DM, %s: `/access %s 1h …` signed as Slack signs it, approver message, signed Approve click by an allowed approver, credentials DM; each run against a fresh `tokken serve` and fresh fakes, after %d warm-up flows. Latency from sending the click to slackfake recording the DM.\n\n",
		date.Format("2006-01-02 15:04 UTC"), a.Profile, a.Warmup)
	fmt.Fprintln(w, "| in flight | flows | errors | click → DM p50 | p90 | p99 | max | click ack p99 | command → DM p50 | command → DM p99 | flows/s | server CPU/flow |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range a.Runs {
		fmt.Fprintf(w, "| %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %.1f | %s |\n",
			r.InFlight, r.Flows, r.Errors, dur(r.ClickToDM.P50), dur(r.ClickToDM.P90), dur(r.ClickToDM.P99), dur(r.ClickToDM.Max),
			dur(r.Ack.P99), dur(r.Flow.P50), dur(r.Flow.P99), r.FlowsPerSec, dur(r.ServerCPUPerFlow))
	}
	fmt.Fprintln(w)
	for _, r := range a.Runs {
		fmt.Fprintf(w, "- %d in flight: click → DM p99 %s (target ≤ %s: %s)", r.InFlight, dur(r.ClickToDM.P99), dur(targetClickToDMP99),
			loadgen.Verdict(r.Flows > 0 && r.Errors == 0 && r.ClickToDM.P99 <= targetClickToDMP99))
		if r.FirstError != "" {
			fmt.Fprintf(w, "; first error: %s", r.FirstError)
		}
		check := r.Check
		if check == "" {
			check = "each issued once and DMed once"
		}
		fmt.Fprintf(w, "; %d AssumeRole calls for %d grants delivered (warm-up included): %s; harness CPU %s; tokken peak RSS %.1f MiB\n",
			r.AssumeRoles, r.Delivered, check, dur(r.HarnessCPU), float64(r.PeakRSSBytes)/(1<<20))
	}
}

func writeStorm(w io.Writer, date time.Time, s StormResult) {
	fmt.Fprintf(w, "Alert storm, %s: %d Mackerel webhooks (Basic auth) open loop over %s (%.1f/s), slackfake limiting chat.postMessage to %d per second per channel.\n\n",
		date.Format("2006-01-02 15:04 UTC"), s.Alerts, s.Over, s.Rate, targetPostsPerSec)
	fmt.Fprintln(w, "| webhooks | accepted (202) | errors | p50 | p90 | p99 | max | server CPU/webhook | listed in Slack | drained after last answer |")
	fmt.Fprintln(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	drain := dur(s.DrainTime)
	if !s.Drained {
		drain = "not within " + drain
	}
	fmt.Fprintf(w, "| %d | %d | %d | %s | %s | %s | %s | %s | %d | %s |\n\n",
		s.Alerts, s.Accepted, s.Errors, dur(s.Latency.P50), dur(s.Latency.P90), dur(s.Latency.P99), dur(s.Latency.Max),
		dur(s.ServerCPUPerAlert), s.Listed, drain)
	fmt.Fprintln(w, "| channel | alerts listed | top-level messages | posts | 429s | max posts in 1 s | max attempts in 1 s | updates |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	maxRate, limited, top := 0, 0, 0
	for _, c := range s.Channels {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", c.Channel, c.Listed, c.TopLevel, c.Posts, c.Limited, c.MaxPerSecond, c.MaxAttemptedPerSecond, c.Updates)
		maxRate, limited, top = max(maxRate, c.MaxPerSecond), limited+c.Limited, top+c.TopLevel
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- nothing lost: %d of %d webhooks stored as deliveries before their 202: %s\n",
		s.Deliveries, s.Alerts, loadgen.Verdict(s.Accepted == s.Alerts && s.Deliveries >= s.Alerts))
	fmt.Fprintf(w, "- processed by shutdown: %d alert records of %d (%d placed: an own message or a storm thread, nothing pending on the record; %d with their own message); left in the store for the next start: %d queued jobs, %d storm thread lines not yet posted; %d dead letters",
		s.Records, s.Alerts, s.Placed, s.Own, s.PendingJobs, s.Lines, s.DeadLetters)
	if len(s.Missing) > 0 {
		fmt.Fprintf(w, "; without a record (first %d): %s", len(s.Missing), strings.Join(s.Missing, ", "))
	}
	fmt.Fprintln(w)
	drained := "all listed"
	if !s.Drained {
		drained = "**not all listed**"
	}
	fmt.Fprintf(w, "- shown in Slack within %s of the last answer: %d of %d alerts (%s)\n", dur(s.DrainTime), s.Listed, s.Alerts, drained)
	fmt.Fprintf(w, "- posts ≤ %d/s/channel: max %d accepted in any 1-s window, %d answered 429: %s\n",
		targetPostsPerSec, maxRate, limited, loadgen.Verdict(maxRate <= targetPostsPerSec))
	fmt.Fprintf(w, "- %d top-level messages in all for %d alerts; webhook p99 %s", top, s.Alerts, dur(s.Latency.P99))
	if s.FirstError != "" {
		fmt.Fprintf(w, "; first error: %s", s.FirstError)
	}
	fmt.Fprintf(w, "; tokken peak RSS %.1f MiB\n", float64(s.PeakRSSBytes)/(1<<20))
}

// dur formats d for a table: rounded to its size, "–" for zero.
func dur(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return loadgen.FormatDuration(loadgen.Round(d))
}
