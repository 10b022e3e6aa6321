package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/infra/metrics"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestOneAuditTrail: the app's one auditor stores every event (access and
// domain alike) where `tokken audit` reads it, posts it to
// TOKKEN_AUDIT_CHANNEL, and counts access transitions into the metrics
// exactly once.
func TestOneAuditTrail(t *testing.T) {
	withAWS(t)
	fake := slackfake.New(t)
	fake.AddChannel("C0AUDIT001", "audit")
	a, _, metricsOut := testApp(t, fake, map[string]string{"TOKKEN_AUDIT_CHANNEL": "C0AUDIT001"})
	ctx := context.Background()
	at := time.Now().Add(-time.Minute)
	for _, e := range []bot.AuditEvent{
		{At: at, Actor: "U0SRE00001", Action: access.ActRequested, Subject: "r-7k3q9x0m2c4d", Profile: "prod-ssm"},
		{At: at.Add(time.Second), Actor: "U0WIN00001", Action: "domain.requested", Subject: "d-1"},
	} {
		if err := a.audit.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	events, err := auditlog.Read(ctx, a.store, auditlog.Query{Since: at.Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Subject != "r-7k3q9x0m2c4d" || events[1].Subject != "d-1" {
		t.Errorf("stored trail: %+v", events)
	}
	posted := fake.Messages("C0AUDIT001")
	if len(posted) != 2 || !strings.Contains(posted[1].Text, "domain.requested") {
		t.Errorf("audit channel: %+v", posted)
	}
	if err := a.metrics.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := emfSum(t, metricsOut.String(), metrics.Requests); got != 1 {
		t.Errorf("requests = %v, want 1 (the auditor is wrapped once)\n%s", got, metricsOut.String())
	}
}
