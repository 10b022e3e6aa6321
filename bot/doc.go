// Package bot holds what tokken is: the lifecycle of access requests, grants,
// domain operations and alerts, and the ports (interfaces) those lifecycles
// need from the outside world. It imports no SDK: Slack, AWS and storage live
// behind the interfaces declared here and are implemented under infra/ and
// handlers/. `go doc ./bot` should read like the product's glossary.
//
// The runtime model is the same on a laptop and on AWS Lambda:
//
//   - Ingress (handlers/) verifies and acknowledges inbound traffic within
//     Slack's three seconds, records what must not be lost, and hands slow
//     work to a [Queue] as a [Job].
//   - The worker runs jobs through a [JobMux]. Jobs are retried, so every job
//     handler is idempotent.
//   - [Timers] turn a point in time into a job (grant expiry, progress checks).
//   - All state lives in a [Store] as versioned [Record]s; every state change
//     is a conditional write, so concurrent clicks and retries cannot both win.
package bot
