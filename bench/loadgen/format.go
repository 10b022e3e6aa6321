package loadgen

import (
	"fmt"
	"time"
)

// FormatDuration formats a latency or CPU time for the benchmark tables:
// "412 µs", "1.50 ms", "2.00 s".
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// Verdict is how the reports mark a target: "met" or a bold "missed".
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// RequestName is the reports' name of a request kind.
func RequestName(k Kind) string {
	if k == KindInteraction {
		return "click alert.ack"
	}
	return "/access help"
}
