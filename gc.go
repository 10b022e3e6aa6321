package main

import (
	"math"
	"runtime/debug"
	"strconv"
)

// gcPercent is tokken's GOGC unless the environment sets one. tokken's
// live heap is small (a few MiB: policies, caches, the delivery memory),
// so Go's default of 100 collects every few MiB of request garbage, and
// under load the collector took about a tenth of the CPU per Slack ack
// (BENCHMARKS.md). 400 lets the heap grow to five times the live heap
// between collections: tens of MiB, well inside the smallest Lambda size
// tokken is deployed with, and the memory limit below bounds it on Lambda.
const gcPercent = 400

// gcSettings returns the GC percentage and soft memory limit (bytes;
// math.MaxInt64 for none) tokken runs with, given its environment: GOGC
// and GOMEMLIMIT, when set, are left to the Go runtime (ok false for that
// setting). On Lambda, the limit is three quarters of the function's
// memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MiB), so the larger GOGC never
// risks the function's memory: near the limit the collector runs as often
// as needed.
func gcSettings(getenv func(string) string) (percent int, setPercent bool, limit int64, setLimit bool) {
	if getenv("GOGC") == "" {
		percent, setPercent = gcPercent, true
	}
	if getenv("GOMEMLIMIT") == "" {
		if mib, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64); err == nil && mib > 0 && mib < math.MaxInt64>>22 {
			limit, setLimit = mib<<20/4*3, true
		}
	}
	return percent, setPercent, limit, setLimit
}

// tuneGC applies gcSettings to the process. Only main calls it: the
// settings are process-wide.
func tuneGC(getenv func(string) string) {
	percent, setPercent, limit, setLimit := gcSettings(getenv)
	if setPercent {
		debug.SetGCPercent(percent)
	}
	if setLimit {
		debug.SetMemoryLimit(limit)
	}
}
