//go:build race

package alertui

// raceDetector is true when the race detector instruments the test.
const raceDetector = true
