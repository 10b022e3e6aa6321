package main

import (
	"fmt"
	"io"

	"github.com/tokken/tokken/bench/loadgen"
)

// minBoltOverTokken is the regression guard: Bolt's CPU per request ÷
// tokken's, at least.
const minBoltOverTokken = 3.0

// writeMarkdown prints the runs as a table, then per request tokken's
// paced p99 and the CPU ratio read from the saturating runs (the most
// requests per 10 ms clock tick of /proc accounting).
func writeMarkdown(w io.Writer, rep Report) {
	fmt.Fprintf(w, "Saturating runs: closed loop, %d in flight; paced runs: open loop, %.0f req/s.\n\n", rep.Concurrency, rep.Rate)
	fmt.Fprintln(w, "| peer | request | mode | requests | errors | p50 | p90 | p99 | max | req/s | server CPU/req |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, p := range rep.Peers {
		for _, m := range p.Runs {
			r := m.Result
			fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %s | %s | %.0f | %s |\n",
				p.Peer, loadgen.RequestName(r.Kind), m.Mode, r.Requests, r.Errors,
				loadgen.FormatDuration(r.P50), loadgen.FormatDuration(r.P90), loadgen.FormatDuration(r.P99), loadgen.FormatDuration(r.Max), r.RPS, loadgen.FormatDuration(r.CPUPerRequest))
		}
	}
	fmt.Fprintln(w)
	for _, p := range rep.Peers {
		fmt.Fprintf(w, "- %s: idle CPU %s over %s, peak RSS %.1f MiB", p.Peer, p.IdleCPU, p.Idle, float64(p.PeakRSSBytes)/(1<<20))
		if p.Check != "" {
			fmt.Fprintf(w, "; **check failed: %s**", p.Check)
		}
		for _, m := range p.Runs {
			if m.Result.Errors > 0 {
				fmt.Fprintf(w, "; %s %s errors, first: %q", loadgen.RequestName(m.Result.Kind), m.Mode, m.Result.FirstError)
			}
		}
		fmt.Fprintln(w)
	}
	for _, kind := range []loadgen.Kind{loadgen.KindCommand, loadgen.KindInteraction} {
		ours, ok := find(rep, "tokken", kind, "saturated")
		if !ok {
			continue
		}
		fmt.Fprintf(w, "- %s, CPU per request: tokken %s", loadgen.RequestName(kind), loadgen.FormatDuration(ours.CPUPerRequest))
		if bolt, ok := find(rep, "bolt", kind, "saturated"); ok && ours.CPUPerRequest > 0 {
			r := float64(bolt.CPUPerRequest) / float64(ours.CPUPerRequest)
			fmt.Fprintf(w, ", Bolt %s: Bolt/tokken %.2f× (guard ≥ %.0f×: %s)", loadgen.FormatDuration(bolt.CPUPerRequest), r, minBoltOverTokken, loadgen.Verdict(r >= minBoltOverTokken))
		}
		fmt.Fprintln(w)
		if floor, ok := find(rep, "slack-go", kind, "saturated"); ok && floor.CPUPerRequest > 0 {
			fmt.Fprintf(w, "- %s, CPU per request of the slack-go floor: %s", loadgen.RequestName(kind), loadgen.FormatDuration(floor.CPUPerRequest))
			if bolt, ok := find(rep, "bolt", kind, "saturated"); ok {
				fmt.Fprintf(w, ": Bolt/slack-go %.2f×", float64(bolt.CPUPerRequest)/float64(floor.CPUPerRequest))
			}
			fmt.Fprintln(w)
		}
		for _, peer := range []string{"tokken", "slack-go", "bolt"} {
			if paced, ok := find(rep, peer, kind, "paced"); ok {
				fmt.Fprintf(w, "- %s, %s p99 at %.0f req/s: %s\n", loadgen.RequestName(kind), peer, rep.Rate, loadgen.FormatDuration(paced.P99))
			}
		}
	}
}

// find returns peer's result for kind and mode.
func find(rep Report, peer string, kind loadgen.Kind, mode string) (loadgen.Result, bool) {
	for _, p := range rep.Peers {
		if p.Peer != peer {
			continue
		}
		for _, m := range p.Runs {
			if m.Result.Kind == kind && m.Mode == mode {
				return m.Result, true
			}
		}
	}
	return loadgen.Result{}, false
}
