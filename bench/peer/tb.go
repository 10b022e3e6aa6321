package peer

import "testing"

// TB lets the testkit fakes (testkit/slackfake, testkit/awsfake), written
// for tests, run inside a long-lived benchmark program: their constructors
// use only Helper and Cleanup of testing.TB. The embedded interface is
// nil, so a testkit change that starts calling another method fails
// loudly instead of silently measuring something else. Call Close when
// the program's work is done; it runs the cleanups in reverse order.
type TB struct {
	testing.TB
	cleanups []func()
}

// NewTB returns a TB with no cleanups.
func NewTB() *TB { return &TB{} }

// Helper implements testing.TB; it does nothing.
func (*TB) Helper() {}

// Cleanup implements testing.TB: f runs at Close.
func (t *TB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

// Close runs the registered cleanups, last first.
func (t *TB) Close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}
