package metrics

import (
	"context"
	"errors"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// auditMetric maps the audit actions that mark a countable step of an
// access request to the metric they increment. Every state transition is
// audited exactly once (access.Service records one event per history row),
// which makes the audit trail the one place to count from: no domain code
// needs to know about metrics.
func auditMetric(action string) (string, bool) {
	switch action {
	case access.ActRequested:
		return Requests, true
	case access.ActApproved:
		return Approvals, true
	case access.ActActive:
		return GrantsIssued, true
	case access.ActRevoked, access.ActExpired: // ended early, or at expiry; sessions terminated either way
		return Revocations, true
	case access.ActRevokeFailed:
		return RevokeFailures, true
	}
	return "", false
}

// Auditor wraps next so that each audit event also counts toward its metric
// on rec (requests, approvals, grants_issued, revocations, revoke_failures),
// then is recorded by next as before. The count is taken whether or not
// next succeeds: the transition happened either way. next must not be nil.
func Auditor(next bot.Auditor, rec *Recorder) bot.Auditor {
	return countingAuditor{next: next, rec: rec}
}

type countingAuditor struct {
	next bot.Auditor
	rec  *Recorder
}

// Record counts e and passes it on to the wrapped Auditor.
func (a countingAuditor) Record(ctx context.Context, e bot.AuditEvent) error {
	if name, ok := auditMetric(e.Action); ok {
		a.rec.Count(ctx, name, 1)
	}
	if a.next == nil {
		return errors.New("metrics: audit event not recorded: no auditor wrapped")
	}
	return a.next.Record(ctx, e)
}
