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
		{Peer: "tokken", Check: "3 clicks sent but 2 ephemerals", Runs: []Measurement{
			run("tokken", loadgen.KindCommand, "paced", 80*time.Microsecond, 6*time.Millisecond),
			run("tokken", loadgen.KindCommand, "saturated", 100*time.Microsecond, 2*time.Millisecond),
			run("tokken", loadgen.KindInteraction, "saturated", 250*time.Microsecond, 2*time.Millisecond),
		}},
		{Peer: "bolt", Runs: []Measurement{
			run("bolt", loadgen.KindCommand, "saturated", 400*time.Microsecond, 9*time.Millisecond),
			run("bolt", loadgen.KindInteraction, "saturated", 500*time.Microsecond, 9*time.Millisecond),
		}},
	}}
	var b strings.Builder
	writeMarkdown(&b, rep)
	out := b.String()
	for _, want := range []string{
		"- /access help, CPU per request: tokken 100 µs, Bolt 400 µs: Bolt/tokken 4.00× (guard ≥ 3×: met)\n",
		"- click alert.ack, CPU per request: tokken 250 µs, Bolt 500 µs: Bolt/tokken 2.00× (guard ≥ 3×: **missed**)\n",
		"- /access help, tokken p99 at 200 req/s: 6.00 ms\n",
		"**check failed: 3 clicks sent but 2 ephemerals**",
		"| tokken | /access help | saturated | 100 | 0 | 1.00 ms | 2.00 ms | 2.00 ms | 2.00 ms | 0 | 100 µs |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
