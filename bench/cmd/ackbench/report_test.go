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
		"| tokken | /access help | saturated | 100 | 0 | 1.00 ms | 2.00 ms | 2.00 ms | 2.00 ms | 0 | 100 µs |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
