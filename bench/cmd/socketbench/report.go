package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
)

// targetP99 is issue 7's ack latency target, read at the paced rate.
const targetP99 = 5 * time.Millisecond

// writeMarkdown prints the runs as a table, then what the Socket Mode fake
// counted, the checks, and per request the CPU per ack of both transports
// (from the saturating runs: the most envelopes per 10 ms /proc tick) and
// the paced p99 against the target.
func writeMarkdown(w io.Writer, rep Report) {
	fmt.Fprintf(w, "Socket Mode ack benchmark, %s: `tokken serve` with SLACK_APP_TOKEN, one Socket Mode connection to bench/socketfake on loopback; saturating runs: closed loop, %d in flight; paced runs: open loop, %.0f/s.\n\n",
		rep.Date.Format("2006-01-02 15:04 MST"), rep.Concurrency, rep.Rate)
	fmt.Fprintln(w, "| transport | request | mode | requests | errors | p50 | p90 | p99 | max | req/s | server CPU/req |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, m := range rep.Runs {
		r := m.Result
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %s | %s | %.0f | %s |\n",
			transportName(m.Transport), loadgen.RequestName(r.Kind), m.Mode, r.Requests, r.Errors,
			loadgen.FormatDuration(r.P50), loadgen.FormatDuration(r.P90), loadgen.FormatDuration(r.P99), loadgen.FormatDuration(r.Max), r.RPS, loadgen.FormatDuration(r.CPUPerRequest))
	}
	fmt.Fprintln(w)
	st := rep.Socket
	fmt.Fprintf(w, "- tokken: idle CPU %s over %s (Socket Mode pings included), peak RSS %.1f MiB\n", rep.IdleCPU, rep.Idle, float64(rep.PeakRSSBytes)/(1<<20))
	fmt.Fprintf(w, "- Socket Mode: %d connection(s), %d envelopes sent, %d acked, %d unmatched acks, %d bad frames, %d/%d pings answered\n",
		st.Connections, st.Sent, st.Acks, st.UnmatchedAcks, st.BadFrames, st.Pongs, st.Pings)
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "- **check failed: %s**\n", c)
	}
	for _, m := range rep.Runs {
		if m.Result.Errors > 0 {
			fmt.Fprintf(w, "- %s %s %s: %d errors, first: %q\n", transportName(m.Transport), loadgen.RequestName(m.Result.Kind), m.Mode, m.Result.Errors, m.Result.FirstError)
		}
	}
	for _, kind := range []loadgen.Kind{loadgen.KindCommand, loadgen.KindInteraction} {
		sock, ok := find(rep, "socket", kind, "saturated")
		if !ok {
			continue
		}
		fmt.Fprintf(w, "- %s, CPU per ack: Socket Mode %s", loadgen.RequestName(kind), loadgen.FormatDuration(sock.CPUPerRequest))
		if h, ok := find(rep, "http", kind, "saturated"); ok && h.CPUPerRequest > 0 {
			fmt.Fprintf(w, ", HTTP %s (Socket Mode/HTTP %.2f×)", loadgen.FormatDuration(h.CPUPerRequest), float64(sock.CPUPerRequest)/float64(h.CPUPerRequest))
		}
		if paced, ok := find(rep, "socket", kind, "paced"); ok {
			fmt.Fprintf(w, "; Socket Mode p99 at %.0f/s: %s (target ≤ %s: %s)", rep.Rate, loadgen.FormatDuration(paced.P99), loadgen.FormatDuration(targetP99), loadgen.Verdict(paced.P99 <= targetP99))
		}
		fmt.Fprintln(w)
	}
}

func find(rep Report, transport string, kind loadgen.Kind, mode string) (loadgen.Result, bool) {
	for _, m := range rep.Runs {
		if m.Transport == transport && m.Result.Kind == kind && m.Mode == mode {
			return m.Result, true
		}
	}
	return loadgen.Result{}, false
}

func transportName(t string) string {
	if t == "socket" {
		return "Socket Mode"
	}
	return "HTTP"
}
