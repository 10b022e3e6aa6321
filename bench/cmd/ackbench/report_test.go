package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
)

func TestWriteMarkdownRatiosAndVerdicts(t *testing.T) {
	run := func(peer string, kind loadgen.Kind, mode string, cpu, p99 time.Duration) Measurement {
		return Measurement{Peer: peer, Mode: mode, Result: loadgen.Result{Kind: kind, Requests: 100, CPUPerRequest: cpu, P50: p99 / 2, P90: p99, P99: p99, Max: p99}}
	}
	rep := Report{Concurrency: 8, Rate: 200, Peers: []PeerReport{
		{Peer: "floor", Runs: []Measurement{
			run("floor", loadgen.KindCommand, "saturated", 50*time.Microsecond, time.Millisecond),
			run("floor", loadgen.KindInteraction, "saturated", 50*time.Microsecond, time.Millisecond),
		}},
		{Peer: "floor-post", Runs: []Measurement{run("floor-post", loadgen.KindInteraction, "saturated", 200*time.Microsecond, time.Millisecond)}},
		{Peer: "tokken", Check: "3 clicks sent but 2 ephemerals", Runs: []Measurement{
			run("tokken", loadgen.KindCommand, "paced", 80*time.Microsecond, 6*time.Millisecond),
			run("tokken", loadgen.KindCommand, "saturated", 100*time.Microsecond, 2*time.Millisecond),
			run("tokken", loadgen.KindInteraction, "saturated", 250*time.Microsecond, 2*time.Millisecond),
		}},
		{Peer: "bolt", Runs: []Measurement{run("bolt", loadgen.KindCommand, "saturated", 400*time.Microsecond, 9*time.Millisecond)}},
	}}
	var b strings.Builder
	writeMarkdown(&b, rep)
	out := b.String()
	for _, want := range []string{
		"tokken/floor 2.00× (target ≤ 1.5×: **missed**)",
		"click alert.ack, CPU per ack: tokken 250 µs; floor 50 µs → tokken/floor 5.00× (target ≤ 1.5×: **missed**); floor-post (the floor plus the click's chat.postEphemeral) 200 µs → tokken/floor-post 1.25× (target ≤ 1.5×: met)\n",
		"Bolt/tokken 4.00× (target ≥ 3×: met)",
		"tokken p99 at 200 req/s: 6.00 ms (target ≤ 5.00 ms: **missed**)",
		"**check failed: 3 clicks sent but 2 ephemerals**",
		"| 1 | tokken | /access help | saturated | 100 | 0 | 1.00 ms | 2.00 ms | 2.00 ms | 2.00 ms | 0 | 100 µs |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestWriteMarkdownRounds: with several rounds, each ratio is read between
// the peers of one round, and the verdict is the median of the rounds'.
func TestWriteMarkdownRounds(t *testing.T) {
	sat := func(peer string, round int, kind loadgen.Kind, cpu time.Duration) PeerReport {
		return PeerReport{Peer: peer, Round: round, Runs: []Measurement{{Peer: peer, Mode: "saturated", Result: loadgen.Result{Kind: kind, Requests: 100, CPUPerRequest: cpu}}}}
	}
	paced := func(round int, p99 time.Duration) PeerReport {
		return PeerReport{Peer: "tokken", Round: round, Runs: []Measurement{{Peer: "tokken", Mode: "paced", Result: loadgen.Result{Kind: loadgen.KindCommand, Requests: 10, P99: p99}}}}
	}
	us := time.Microsecond
	// Round 2's floor is noisy-high: its ratio alone (1.00×) would pass;
	// the median of 1.60×, 1.00× and 1.55× does not.
	rep := Report{Concurrency: 8, Rate: 200, Rounds: 3, Peers: []PeerReport{
		sat("floor", 1, loadgen.KindCommand, 25*us), sat("tokken", 1, loadgen.KindCommand, 40*us), paced(1, 2*time.Millisecond),
		sat("floor", 2, loadgen.KindCommand, 40*us), sat("tokken", 2, loadgen.KindCommand, 40*us), paced(2, 7*time.Millisecond),
		sat("floor", 3, loadgen.KindCommand, 20*us), sat("tokken", 3, loadgen.KindCommand, 31*us), paced(3, 3*time.Millisecond),
		sat("bolt", 1, loadgen.KindCommand, 200*us), sat("bolt", 3, loadgen.KindCommand, 93*us), // no Bolt in round 2
	}}
	var b strings.Builder
	writeMarkdown(&b, rep)
	out := b.String()
	for _, want := range []string{
		"3 round(s)",
		"- /access help, CPU per ack (medians of 3 rounds): tokken 40 µs; floor 25 µs → tokken/floor 1.55× (rounds: 1.60×, 1.00×, 1.55×) (target ≤ 1.5×: **missed**); Bolt 146 µs → Bolt/tokken 4.00× (rounds: 5.00×, 3.00×) (target ≥ 3×: met)\n",
		"- /access help, tokken p99 at 200 req/s (median of 3 rounds): 3.00 ms (target ≤ 5.00 ms: met)",
		"- floor (round 2):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
