// Package hotpath holds micro-benchmarks of what every Slack request into
// tokken costs before any feature runs: signature verification (the
// handlers/slacksig verifier), slash-command and interaction parsing
// (slack-go), and the whole in-process ack of `/access help` and of a
// button click through handlers/httpapi with a bbolt store (deliveries
// remembered in memory, as `tokken serve` does, and, for comparison,
// recorded in the store as a shared store requires), next to a handler
// that only verifies (the floor of bench/cmd/floor). They explain
// the end-to-end numbers of bench/cmd/ackbench: run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/hotpath/
//
// and add -cpuprofile to see what dominates. The package has no code of
// its own.
package hotpath
