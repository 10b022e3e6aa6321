package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
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
// 10 ms clock tick of /proc accounting): per round, and their median.
func writeMarkdown(w io.Writer, rep Report) {
	rounds := max(rep.Rounds, 1)
	fmt.Fprintf(w, "Ack benchmark, %s; saturating runs: closed loop, %d in flight; paced runs: open loop, %.0f req/s; %d round(s), every peer measured in each.\n\n",
		rep.Date.Format("2006-01-02 15:04 MST"), rep.Concurrency, rep.Rate, rounds)
	fmt.Fprintln(w, "| round | peer | request | mode | requests | errors | p50 | p90 | p99 | max | req/s | server CPU/req |")
	fmt.Fprintln(w, "|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, p := range rep.Peers {
		for _, m := range p.Runs {
			r := m.Result
			fmt.Fprintf(w, "| %d | %s | %s | %s | %d | %d | %s | %s | %s | %s | %.0f | %s |\n",
				max(p.Round, 1), p.Peer, loadgen.RequestName(r.Kind), m.Mode, r.Requests, r.Errors,
				loadgen.FormatDuration(r.P50), loadgen.FormatDuration(r.P90), loadgen.FormatDuration(r.P99), loadgen.FormatDuration(r.Max), r.RPS, loadgen.FormatDuration(r.CPUPerRequest))
		}
	}
	fmt.Fprintln(w)
	for _, p := range rep.Peers {
		fmt.Fprintf(w, "- %s", p.Peer)
		if rounds > 1 {
			fmt.Fprintf(w, " (round %d)", p.Round)
		}
		fmt.Fprintf(w, ": idle CPU %s over %s, peak RSS %.1f MiB", p.IdleCPU, p.Idle, float64(p.PeakRSSBytes)/(1<<20))
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
		ours := series(rep, rounds, "tokken", kind, "saturated")
		if ours.n == 0 {
			continue
		}
		fmt.Fprintf(w, "- %s, CPU per ack", loadgen.RequestName(kind))
		if rounds > 1 {
			fmt.Fprintf(w, " (medians of %d rounds)", rounds)
		}
		fmt.Fprintf(w, ": tokken %s", loadgen.FormatDuration(ours.median()))
		// compare prints tokken against another peer: the rounds' ratios of
		// tokken's CPU over the other's, at most target, when oursOver; of
		// the other's over tokken's, at least target, otherwise (Bolt).
		compare := func(label, name, ratioName string, oursOver bool, target float64) {
			other := series(rep, rounds, name, kind, "saturated")
			ratios := make([]float64, 0, rounds)
			for i := range rounds {
				a, b := ours.cpu[i], other.cpu[i]
				if !oursOver {
					a, b = b, a
				}
				if ours.ok[i] && other.ok[i] && b > 0 {
					ratios = append(ratios, ratio(a, b))
				}
			}
			if len(ratios) == 0 {
				return
			}
			r := medianFloat(slices.Clone(ratios))
			verdict := r <= target
			bound := "≤"
			if !oursOver {
				verdict, bound = r >= target, "≥"
			}
			fmt.Fprintf(w, "; %s %s → %s %.2f×", label, loadgen.FormatDuration(other.median()), ratioName, r)
			if len(ratios) > 1 {
				parts := make([]string, len(ratios))
				for i, x := range ratios {
					parts[i] = fmt.Sprintf("%.2f×", x)
				}
				fmt.Fprintf(w, " (rounds: %s)", strings.Join(parts, ", "))
			}
			fmt.Fprintf(w, " (target %s %s×: %s)", bound, strconv.FormatFloat(target, 'f', -1, 64), loadgen.Verdict(verdict))
		}
		compare("floor", "floor", "tokken/floor", true, targetOursOverFlor)
		if kind == loadgen.KindInteraction {
			compare("floor-post (the floor plus the click's chat.postEphemeral)", "floor-post", "tokken/floor-post", true, targetOursOverFlor)
		}
		compare("Bolt", "bolt", "Bolt/tokken", false, targetBoltOverOurs)
		fmt.Fprintln(w)
		if paced := series(rep, rounds, "tokken", kind, "paced"); paced.n > 0 {
			p99 := paced.medianP99()
			fmt.Fprintf(w, "- %s, tokken p99 at %.0f req/s", loadgen.RequestName(kind), rep.Rate)
			if paced.n > 1 {
				fmt.Fprintf(w, " (median of %d rounds)", paced.n)
			}
			fmt.Fprintf(w, ": %s (target ≤ %s: %s)\n", loadgen.FormatDuration(p99), loadgen.FormatDuration(targetP99), loadgen.Verdict(p99 <= targetP99))
		}
	}
}

// roundSeries is one peer's results of one kind and mode, by round.
type roundSeries struct {
	cpu, p99 []time.Duration
	ok       []bool
	n        int
}

func series(rep Report, rounds int, peerName string, kind loadgen.Kind, mode string) roundSeries {
	s := roundSeries{cpu: make([]time.Duration, rounds), p99: make([]time.Duration, rounds), ok: make([]bool, rounds)}
	for _, p := range rep.Peers {
		i := max(p.Round, 1) - 1
		if p.Peer != peerName || i >= rounds {
			continue
		}
		for _, m := range p.Runs {
			if m.Result.Kind == kind && m.Mode == mode {
				s.cpu[i], s.p99[i], s.ok[i] = m.Result.CPUPerRequest, m.Result.P99, true
				s.n++
			}
		}
	}
	return s
}

func (s roundSeries) median() time.Duration    { return medianOf(s.cpu, s.ok) }
func (s roundSeries) medianP99() time.Duration { return medianOf(s.p99, s.ok) }

func medianOf(ds []time.Duration, ok []bool) time.Duration {
	var fs []float64
	for i, d := range ds {
		if ok[i] {
			fs = append(fs, float64(d))
		}
	}
	if len(fs) == 0 {
		return 0
	}
	return time.Duration(medianFloat(fs))
}

// medianFloat is the median of xs (the mean of the middle two for an even
// count); xs is reordered.
func medianFloat(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
