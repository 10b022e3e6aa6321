package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
)

// Targets from issue 7.
const (
	targetP99          = 5 * time.Millisecond
	targetBoltOverOurs = 3.0 // Bolt's CPU per ack ÷ tokken's, at least
	targetOursOverFlor = 1.5 // tokken's CPU per ack ÷ the floor's, at most
)

// writeMarkdown prints the runs as a table, then the CPU ratios and the
// targets, computed from the saturating runs (the most requests per
// 10 ms clock tick of /proc accounting).
func writeMarkdown(w io.Writer, rep Report) {
	fmt.Fprintf(w, "Ack benchmark, %s; saturating runs: closed loop, %d in flight; paced runs: open loop, %.0f req/s.\n\n",
		rep.Date.Format("2006-01-02 15:04 MST"), rep.Concurrency, rep.Rate)
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
	fmt.Fprintln(w)
	for _, kind := range []loadgen.Kind{loadgen.KindCommand, loadgen.KindInteraction} {
		ours, okOurs := find(rep, "tokken", kind, "saturated")
		floor, okFloor := find(rep, "floor", kind, "saturated")
		bolt, okBolt := find(rep, "bolt", kind, "saturated")
		if !okOurs {
			continue
		}
		fmt.Fprintf(w, "- %s, CPU per ack: tokken %s", loadgen.RequestName(kind), loadgen.FormatDuration(ours.CPUPerRequest))
		if okFloor && floor.CPUPerRequest > 0 {
			ratio := ratio(ours.CPUPerRequest, floor.CPUPerRequest)
			fmt.Fprintf(w, "; floor %s → tokken/floor %.2f× (target ≤ %.1f×: %s)", loadgen.FormatDuration(floor.CPUPerRequest), ratio, targetOursOverFlor, loadgen.Verdict(ratio <= targetOursOverFlor))
		}
		if post, ok := find(rep, "floor-post", kind, "saturated"); ok && kind == loadgen.KindInteraction && post.CPUPerRequest > 0 {
			ratio := ratio(ours.CPUPerRequest, post.CPUPerRequest)
			fmt.Fprintf(w, "; floor-post (the floor plus the click's chat.postEphemeral) %s → tokken/floor-post %.2f× (target ≤ %.1f×: %s)", loadgen.FormatDuration(post.CPUPerRequest), ratio, targetOursOverFlor, loadgen.Verdict(ratio <= targetOursOverFlor))
		}
		if okBolt && ours.CPUPerRequest > 0 {
			ratio := ratio(bolt.CPUPerRequest, ours.CPUPerRequest)
			fmt.Fprintf(w, "; Bolt %s → Bolt/tokken %.2f× (target ≥ %.0f×: %s)", loadgen.FormatDuration(bolt.CPUPerRequest), ratio, targetBoltOverOurs, loadgen.Verdict(ratio >= targetBoltOverOurs))
		}
		fmt.Fprintln(w)
		if paced, ok := find(rep, "tokken", kind, "paced"); ok {
			fmt.Fprintf(w, "- %s, tokken p99 at %.0f req/s: %s (target ≤ %s: %s)\n", loadgen.RequestName(kind), rep.Rate, loadgen.FormatDuration(paced.P99), loadgen.FormatDuration(targetP99), loadgen.Verdict(paced.P99 <= targetP99))
		}
	}
}

func find(rep Report, peerName string, kind loadgen.Kind, mode string) (loadgen.Result, bool) {
	for _, p := range rep.Peers {
		if p.Peer != peerName {
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

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
