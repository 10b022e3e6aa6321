package metrics

// Names of the metrics tokken emits. They are defined here and nowhere else,
// so dashboards, alarms in template.yaml and the operations docs can rely on
// one list. Counts are recorded with Recorder.Count, latencies with
// Recorder.Duration.
const (
	// Requests counts access requests created (`/access …` or the modal).
	Requests = "requests"
	// Approvals counts approval clicks that were accepted by policy.
	Approvals = "approvals"
	// GrantsIssued counts grants that became active (credentials or SSM
	// access handed out).
	GrantsIssued = "grants_issued"
	// Revocations counts grants ended and revoked (expiry, "I'm done",
	// revoke by an approver).
	Revocations = "revocations"
	// RevokeFailures counts revocations that failed after their retries:
	// access may still stand, so alarm on any non-zero value.
	RevokeFailures = "revoke_failures"
	// AlertsIn counts alerts received (Mackerel webhooks, CloudWatch alarms).
	AlertsIn = "alerts_in"
	// AlertsPosted counts alert messages posted or updated in Slack.
	AlertsPosted = "alerts_posted"
	// SlackRateLimitWaits counts waits imposed by Slack's HTTP 429 answers.
	SlackRateLimitWaits = "slack_rate_limit_waits"
	// AckLatency is the time from receiving a Slack request to answering it;
	// Slack gives up after 3 seconds.
	AckLatency = "ack_latency"
)

// Definition describes one metric tokken emits.
type Definition struct {
	Name string
	Unit Unit
	Help string
}

// Known returns the metrics tokken emits, in a fresh slice the caller may
// keep. Count and Duration accept other names too; this list is what the
// docs and alarms are written against.
func Known() []Definition {
	return []Definition{
		{Requests, UnitCount, "access requests created"},
		{Approvals, UnitCount, "approvals accepted by policy"},
		{GrantsIssued, UnitCount, "grants that became active"},
		{Revocations, UnitCount, "grants ended and revoked"},
		{RevokeFailures, UnitCount, "revocations that failed after retries (alarm on any)"},
		{AlertsIn, UnitCount, "alerts received from Mackerel and CloudWatch"},
		{AlertsPosted, UnitCount, "alert messages posted or updated in Slack"},
		{SlackRateLimitWaits, UnitCount, "waits imposed by Slack rate limits (HTTP 429)"},
		{AckLatency, UnitMilliseconds, "time to acknowledge a Slack request (limit 3 s)"},
	}
}
