package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/socketfake"
)

func TestWriteMarkdown(t *testing.T) {
	run := func(transport string, kind loadgen.Kind, mode string, cpu, p99 time.Duration) Measurement {
		return Measurement{Transport: transport, Mode: mode, Result: loadgen.Result{Kind: kind, Requests: 100, CPUPerRequest: cpu, P50: p99 / 2, P90: p99, P99: p99, Max: p99, RPS: 200}}
	}
	rep := Report{Concurrency: 8, Rate: 200, Runs: []Measurement{
		run("socket", loadgen.KindCommand, "paced", 300*time.Microsecond, 4*time.Millisecond),
		run("socket", loadgen.KindCommand, "saturated", 180*time.Microsecond, 7*time.Millisecond),
		run("http", loadgen.KindCommand, "saturated", 150*time.Microsecond, 2*time.Millisecond),
		run("socket", loadgen.KindInteraction, "paced", 900*time.Microsecond, 12*time.Millisecond),
		run("socket", loadgen.KindInteraction, "saturated", 500*time.Microsecond, 9*time.Millisecond),
	}, Socket: socketfake.Stats{Connections: 2, Sent: 400, Acks: 399, Pings: 3, Pongs: 3}}
	rep.Runs[4].Result.Errors, rep.Runs[4].Result.FirstError = 1, "no ack within 10s"
	rep.Checks = socketChecks(rep.Socket)
	var b strings.Builder
	writeMarkdown(&b, rep)
	out := b.String()
	for _, want := range []string{
		"| Socket Mode | /access help | saturated | 100 | 0 | 3.50 ms | 7.00 ms | 7.00 ms | 7.00 ms | 200 | 180 µs |",
		"- /access help, CPU per ack: Socket Mode 180 µs, HTTP 150 µs (Socket Mode/HTTP 1.20×); Socket Mode p99 at 200/s: 4.00 ms (target ≤ 5.00 ms: met)",
		"- click alert.ack, CPU per ack: Socket Mode 500 µs; Socket Mode p99 at 200/s: 12.00 ms (target ≤ 5.00 ms: **missed**)",
		"**check failed: tokken opened 2 Socket Mode connections, want 1",
		`Socket Mode click alert.ack saturated: 1 errors, first: "no ack within 10s"`,
		"2 connection(s), 400 envelopes sent, 399 acked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSocketChecks(t *testing.T) {
	tests := []struct {
		name string
		st   socketfake.Stats
		want []string
	}{
		{name: "one connection, clean", st: socketfake.Stats{Connections: 1, Sent: 10, Acks: 10}},
		{name: "reconnected", st: socketfake.Stats{Connections: 3}, want: []string{"opened 3 Socket Mode connections"}},
		{name: "never connected", st: socketfake.Stats{}, want: []string{"opened 0 Socket Mode connections"}},
		{name: "stray acks and frames", st: socketfake.Stats{Connections: 1, UnmatchedAcks: 2, BadFrames: 1},
			want: []string{"2 acks matched no envelope", "1 frames from tokken were not acks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := socketChecks(tt.st)
			if len(got) != len(tt.want) {
				t.Fatalf("checks %q, want %d", got, len(tt.want))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("check %q lacks %q", got[i], tt.want[i])
				}
			}
		})
	}
}
